import type pg from 'pg';
import { failure } from '../core/errors.js';
import { sleep } from '../core/wait.js';
import { beatApplied, type Beat } from './heartbeat.js';

/**
 * Whether the apply workers of native subscriptions are applying. A reader that waits for a
 * heartbeat (verify) asks this while it waits, so a stream that an apply error stopped is reported
 * at once, with the cause, instead of being waited for.
 *
 * An apply error ends the worker; the launcher starts it again after wal_retrieve_retry_interval
 * (5 s by default), it meets the same change and ends again. So: a worker absent on two samples a
 * second apart, an error count that grew (pg_stat_subscription_stats, PostgreSQL 15+), a disabled
 * subscription (cdc pause, or disable_on_error) or a missing one all mean the stream stands still.
 */
interface Sample {
  exists: boolean;
  enabled: boolean;
  pid: number | null;
  errors: number | null;
}

export interface WatchedStream {
  stream: string;
  subscription: string;
}

const SAMPLE_EVERY_MS = 1000;

export class ApplyWatch {
  private baseline = new Map<string, Sample>();
  private absentSince = new Map<string, number>();
  private sampledAt = 0;
  private pending?: Promise<string | null>;
  private found: string | null = null;

  private constructor(
    private readonly c: pg.Client,
    private readonly targetVersion: number,
    private readonly watched: WatchedStream[],
    /** Turns a problem into the error thrown (verify adds what the catalogs and the DDL log say). */
    private readonly explain: (problem: string, stream: string) => Promise<Error>,
    /** Ends every wait of the watch at once (Ctrl-C, a cancelled workflow, a budget). */
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * Start watching, and fail at once when a stream already stands still: a second sample a second
   * later settles whether an absent worker is restarting or gone.
   */
  static async start(c: pg.Client, targetVersion: number, watched: WatchedStream[], explain: (problem: string, stream: string) => Promise<Error>, signal?: AbortSignal): Promise<ApplyWatch> {
    const w = new ApplyWatch(c, targetVersion, watched, explain, signal);
    w.baseline = await w.sample();
    w.sampledAt = Date.now();
    for (const [sub, s] of w.baseline) if (s.pid === null) w.absentSince.set(sub, w.sampledAt);
    if (w.absentSince.size > 0) {
      await sleep(SAMPLE_EVERY_MS, signal);
      w.sampledAt = 0;
    }
    await w.assertApplying();
    return w;
  }

  /** Throws (the explained problem) when a stream stands still; samples at most once a second. */
  async assertApplying(): Promise<void> {
    const problem = await this.check();
    if (problem) {
      const stream = this.watched.find((x) => problem.includes(x.subscription))?.stream ?? this.watched[0].stream;
      throw await this.explain(problem, stream);
    }
  }

  /**
   * Wait until the target applied `beat`, checking the apply workers while waiting. Throws when a
   * stream stands still, or when a running stream has not applied it within `timeoutMs`.
   */
  async waitApplied(target: pg.Client, table: string, stream: string, beat: Beat, timeoutMs: number): Promise<void> {
    let pollMs = 20;
    for (;;) {
      if (await beatApplied(target, table, stream, beat)) return;
      await this.assertApplying();
      if (Date.now() - beat.writtenAt > timeoutMs) {
        throw failure(
          'verify.lag',
          `group ${stream}: a heartbeat written ${Math.round(timeoutMs / 1000)} s ago is not applied on the target, although its apply worker runs`,
          'the stream lags more than cdc.maxLagSeconds: verify again once pgshift cdc status shows it caught up',
        );
      }
      await sleep(pollMs, this.signal);
      pollMs = Math.min(200, pollMs * 2);
    }
  }

  private check(): Promise<string | null> {
    if (this.found || Date.now() - this.sampledAt < SAMPLE_EVERY_MS) return Promise.resolve(this.found);
    this.pending ??= this.evaluate().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async evaluate(): Promise<string | null> {
    const now = await this.sample();
    this.sampledAt = Date.now();
    for (const { subscription } of this.watched) {
      const s = now.get(subscription)!;
      const base = this.baseline.get(subscription);
      if (!s.exists) return (this.found = `subscription ${subscription} is missing on the target`);
      if (!s.enabled) return (this.found = `subscription ${subscription} is disabled (pgshift cdc pause or stop, or disable_on_error after an apply error)`);
      if (s.errors !== null && base?.errors != null && s.errors > base.errors) {
        return (this.found = `the apply worker of subscription ${subscription} failed ${s.errors - base.errors} time(s) since verify started (${s.errors} apply error(s) recorded)`);
      }
      if (s.pid !== null) {
        this.absentSince.delete(subscription);
      } else {
        const since = this.absentSince.get(subscription) ?? this.sampledAt;
        this.absentSince.set(subscription, since);
        if (this.sampledAt - since >= SAMPLE_EVERY_MS) {
          return (this.found = `subscription ${subscription} has no running apply worker${s.errors ? ` (${s.errors} apply error(s) recorded)` : ''}: it stops at a change it cannot apply`);
        }
      }
    }
    return null;
  }

  private async sample(): Promise<Map<string, Sample>> {
    const subs = this.watched.map((w) => w.subscription);
    const stats = this.targetVersion >= 150000;
    const r = await this.c.query<{ subname: string; enabled: boolean; pid: number | null; errors: string | null }>(
      `SELECT s.subname, s.subenabled AS enabled,
              (SELECT st.pid FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.relid IS NULL LIMIT 1) AS pid,
              ${stats ? '(SELECT (x.apply_error_count + x.sync_error_count)::text FROM pg_stat_subscription_stats x WHERE x.subid = s.oid)' : 'NULL'} AS errors
         FROM pg_subscription s
        WHERE s.subname = ANY ($1) AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [subs],
    );
    const out = new Map<string, Sample>(subs.map((sub) => [sub, { exists: false, enabled: false, pid: null, errors: null }]));
    for (const row of r.rows) out.set(row.subname, { exists: true, enabled: row.enabled, pid: row.pid, errors: row.errors === null ? null : Number(row.errors) });
    return out;
  }
}
