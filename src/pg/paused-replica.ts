import type pg from 'pg';
import { failure, gateRefused } from '../core/errors.js';
import { formatLsn, parseLsn } from '../core/lsn.js';
import { answerWithin, pollUntil, sleep } from '../core/wait.js';
import type { Logger } from '../core/log.js';
import { formatBytes } from '../config/size.js';
import { connect, type Endpoint } from './connect.js';

/**
 * The paused-replica snapshot (the reference story's method). The slots exist on the primary
 * first; then replay is paused on a physical replica, and the replica's replay position L is the
 * snapshot: the copy reads the replica, whose data stays exactly at L while paused, and CDC starts
 * at L. L must be at or past every slot's confirmed_flush_lsn — a start older than that would be
 * moved forward silently and changes lost — so the pause is retried until it is.
 *
 * Replay is resumed at the end and on every failure path, signals included; while paused, the WAL
 * piling up on the replica and retained by the primary's slots is watched: a warning, then a stop
 * (resume, fail) before a disk fills.
 */
export interface PauseLimits {
  warnBytes: number;
  stopBytes: number;
}

export class PausedReplica {
  private monitor?: NodeJS.Timeout;
  private stopReason?: string;
  private resumed = false;
  /**
   * Whether replay may be resumed now. Workflow matrix jobs share the paused replica: the job
   * that ends while another job still reads from it leaves it paused for that job to resume.
   */
  shouldResume: () => Promise<boolean> = async () => true;
  private readonly onSignal = () => {
    void this.release().finally(() => process.exit(130));
  };

  private constructor(
    private readonly replica: pg.Client,
    readonly lsn: string,
    private readonly log: Logger,
  ) {}

  static async pause(replicaEp: Endpoint, primary: pg.Client, slots: string[], limits: PauseLimits, log: Logger, signal?: AbortSignal, timeoutMs = 60_000): Promise<PausedReplica> {
    const replica = await connect(replicaEp, { applicationName: 'pgshift replica' });
    const inRecovery = (await replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r;
    if (!inRecovery) {
      await replica.end();
      throw gateRefused('replica.not-standby', `source.replicaUrl ${replicaEp.label} is not a standby (pg_is_in_recovery() is false)`, 'point source.replicaUrl at a physical replica of the source');
    }
    const needed = await slotsConfirmedUpTo(primary, slots);
    const floor = needed ? parseLsn(needed) : 0n;
    const deadline = Date.now() + timeoutMs;
    // From the first pause request on, a signal resumes replay before the process ends.
    const onEarlySignal = () => {
      void replica.query('SELECT pg_wal_replay_resume()').finally(() => process.exit(130));
    };
    process.once('SIGINT', onEarlySignal);
    process.once('SIGTERM', onEarlySignal);
    try {
      for (;;) {
        await replica.query('SELECT pg_wal_replay_pause()');
        await waitPaused(replica, deadline, signal);
        const r = await replica.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
        const lsn = r.rows[0].lsn;
        if (parseLsn(lsn) >= floor) {
          const paused = await PausedReplica.held(replica, lsn, primary, slots, limits, log);
          log.info(`replica ${replicaEp.label} paused at ${lsn} (every slot confirmed at or before ${formatLsn(floor)})`);
          return paused;
        }
        // The replica has not replayed up to the slots yet: let it catch up and pause again.
        await replica.query('SELECT pg_wal_replay_resume()');
        if (Date.now() > deadline) {
          await replica.end();
          throw failure('replica.behind', `replica ${replicaEp.label} did not replay past the slots' position ${formatLsn(floor)} within ${timeoutMs / 1000} s`, 'check the replica is streaming from the source');
        }
        await sleep(200, signal);
      }
    } catch (err) {
      await replica.query('SELECT pg_wal_replay_resume()').catch(() => {});
      await replica.end().catch(() => {});
      throw err;
    } finally {
      process.removeListener('SIGINT', onEarlySignal);
      process.removeListener('SIGTERM', onEarlySignal);
    }
  }

  /**
   * Continue from a replica an earlier run paused (after a crash, or another matrix job): it must
   * still be paused exactly at `lsn`, and `lsn` must still be at or past every slot's position.
   * Returns undefined when it is not, with the reason, so the caller can offer the options.
   */
  static async adopt(replicaEp: Endpoint, primary: pg.Client, slots: string[], limits: PauseLimits, log: Logger, lsn: string): Promise<PausedReplica | string> {
    const replica = await connect(replicaEp, { applicationName: 'pgshift replica' });
    const r = await replica.query<{ recovery: boolean; paused: boolean; lsn: string | null }>(
      'SELECT pg_is_in_recovery() AS recovery, pg_is_in_recovery() AND pg_is_wal_replay_paused() AS paused, pg_last_wal_replay_lsn()::text AS lsn',
    );
    const floor = await slotsConfirmedUpTo(primary, slots);
    const row = r.rows[0];
    let reason: string | undefined;
    if (!row.paused || row.lsn === null || parseLsn(row.lsn) !== parseLsn(lsn)) reason = `the replica is ${row.paused ? `paused at ${row.lsn}` : 'replaying'}, not paused at ${lsn}`;
    else if (floor && parseLsn(floor) > parseLsn(lsn)) reason = `a slot was created after the replica paused at ${lsn}`;
    if (reason) {
      await replica.end().catch(() => {});
      return reason;
    }
    log.info(`replica ${replicaEp.label} still paused at ${lsn}: continuing from it`);
    return PausedReplica.held(replica, lsn, primary, slots, limits, log);
  }

  private static async held(replica: pg.Client, lsn: string, primary: pg.Client, slots: string[], limits: PauseLimits, log: Logger): Promise<PausedReplica> {
    const paused = new PausedReplica(replica, lsn, log);
    process.once('SIGINT', paused.onSignal);
    process.once('SIGTERM', paused.onSignal);
    await paused.watch(primary, slots, limits);
    return paused;
  }

  /**
   * Inside a copy transaction on the replica, after its snapshot is taken: replay is monotonic, so
   * reading exactly L now proves the snapshot shows L. Anything else (someone resumed replay)
   * stops the copy instead of mixing two points in time.
   */
  async requireAt(c: pg.Client): Promise<void> {
    const r = await c.query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
    if (r.rows[0].lsn === null || parseLsn(r.rows[0].lsn) !== parseLsn(this.lsn)) {
      throw failure('replica.moved', `the replica replayed past ${this.lsn} (now at ${r.rows[0].lsn}) while the load was reading it`, 'leave replay paused during the load; run pgshift full-load --restart for this group');
    }
  }

  /**
   * Resume replay unless another job still needs it paused (see shouldResume). True when replay
   * was resumed by this call.
   */
  async release(): Promise<boolean> {
    if (this.resumed) return false;
    let resume = true;
    try {
      // Bounded: on a signal the process must end promptly; unsure means resume.
      resume = await answerWithin(this.shouldResume(), 3000, true);
    } catch {
      // Cannot tell: resuming protects the disks; a job still reading will stop on requireAt.
    }
    if (resume) {
      await this.resume();
      return true;
    }
    this.log.info(`replica left paused at ${this.lsn}: another job is still loading from it`);
    await this.detach();
    return false;
  }

  /** Let go of the replica without resuming it (it was paused for another job). */
  async detach(): Promise<void> {
    this.stopWatching();
    await this.replica.end().catch(() => {});
  }

  /** No more samples, no more signal handlers; this object will not resume replay again. */
  private stopWatching(): void {
    this.resumed = true;
    clearInterval(this.monitor);
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
  }

  /** Called between tables: a limit crossed stops the load here (the caller resumes replay). */
  check(): void {
    if (this.stopReason) throw failure('replica.limit', this.stopReason, 'raise fullLoad.pausedReplica.stopBytes if the disks allow, or load fewer groups at a time');
  }

  private async watch(primary: pg.Client, slots: string[], limits: PauseLimits) {
    let warned = false;
    const sample = async () => {
      try {
        const onReplica = await this.replica.query<{ b: string }>('SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::text AS b');
        const bySlots = await primary.query<{ b: string }>('SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0)::text AS b FROM pg_replication_slots WHERE slot_name = ANY($1)', [slots]);
        const pending = Number(onReplica.rows[0].b);
        const retained = Number(bySlots.rows[0].b);
        const worst = Math.max(pending, retained);
        if (worst >= limits.stopBytes) this.stopReason = `paused replica: ${formatBytes(pending)} of WAL waiting on the replica, ${formatBytes(retained)} retained by the slots on the source — over fullLoad.pausedReplica.stopBytes ${formatBytes(limits.stopBytes)}`;
        else if (worst >= limits.warnBytes && !warned) {
          warned = true;
          this.log.warn(`paused replica: ${formatBytes(pending)} of WAL waiting on the replica, ${formatBytes(retained)} retained on the source (warning at ${formatBytes(limits.warnBytes)}, stop at ${formatBytes(limits.stopBytes)})`);
        }
      } catch {
        /* the next sample will tell */
      }
    };
    await sample();
    this.monitor = setInterval(sample, 1000);
    this.monitor.unref();
  }

  async resume(): Promise<void> {
    if (this.resumed) return;
    this.stopWatching();
    try {
      await this.replica.query('SELECT pg_wal_replay_resume()');
      this.log.info('replica replay resumed');
    } catch (err) {
      this.log.error(`could not resume replay on the replica: ${(err as Error).message} — run SELECT pg_wal_replay_resume() there now`);
    } finally {
      await this.replica.end().catch(() => {});
    }
  }
}

async function waitPaused(replica: pg.Client, deadline: number, signal?: AbortSignal): Promise<void> {
  const hasState = (await replica.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'pg_get_wal_replay_pause_state'")).rows[0].n > 0;
  let last = '';
  const paused = await pollUntil(
    async () => {
      if (hasState) return (await replica.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s')).rows[0].s === 'paused' || undefined;
      // Before 14, pg_is_wal_replay_paused() is true as soon as a pause is requested; the startup
      // process checks the request before each record, so once the replay position holds still
      // it is paused there (or idle, and will pause before the next record arrives).
      const lsn = (await replica.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn')).rows[0].lsn;
      const still = lsn === last;
      last = lsn;
      return still || undefined;
    },
    { everyMs: hasState ? 20 : 50, timeoutMs: Math.max(0, deadline - Date.now()), signal },
  );
  if (paused) return;
  throw failure('replica.pause', 'the replica did not pause within the time limit', 'check the replica is replaying');
}

/**
 * The highest confirmed_flush_lsn of these slots (null when none has one): the point the replica
 * must have replayed to. ORDER BY … LIMIT 1, not max(): pg_lsn has no max aggregate before 13.
 */
async function slotsConfirmedUpTo(primary: pg.Client, slots: string[]): Promise<string | null> {
  const r = await primary.query<{ lsn: string }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ANY($1) AND confirmed_flush_lsn IS NOT NULL ORDER BY confirmed_flush_lsn DESC LIMIT 1',
    [slots],
  );
  return r.rows[0]?.lsn ?? null;
}
