import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { failure } from '../core/errors.js';
import { quoteIdent } from '../core/ident.js';
import { heartbeatTable } from '../core/names.js';
import { CONTROL } from '../journal/journal.js';
import { pollUntil } from '../core/wait.js';

/**
 * Each group's heartbeat table is published with the group, so a row written on the source
 * travels the same stream as the group's changes and is applied in commit order. That gives two
 * things no position arithmetic can: lag in seconds that stays correct when the source is idle,
 * and the cut-over barrier — once a marker written after the fence is visible on the target,
 * every commit before it has been applied.
 */
export interface Beat {
  marker: string;
  /** The row's beat counter after our update: several writers (verify workers) may beat at once,
   *  so "applied" means the target's counter reached ours, not that it shows our marker. */
  seq: bigint;
  writtenAt: number;
}

export async function writeBeat(source: pg.Client, table: string, group: string, marker = randomUUID()): Promise<Beat> {
  // Commit with a WAL flush whatever the server's synchronous_commit: walsenders send only flushed
  // WAL, so an unflushed beat (and every commit before it) would wait for the WAL writer.
  await source.query('BEGIN');
  let r;
  try {
    await source.query('SET LOCAL synchronous_commit = on');
    r = await source.query<{ seq: string }>(
      `UPDATE ${CONTROL}.${quoteIdent(table)} SET beat_at = clock_timestamp(), marker = $2, seq = seq + 1 WHERE group_name = $1 RETURNING seq::text`,
      [group, marker],
    );
    await source.query('COMMIT');
  } catch (err) {
    await source.query('ROLLBACK').catch(() => {});
    throw err;
  }
  if (!r.rows[0]) throw failure('heartbeat.missing', `heartbeat row for group ${group} is missing on the source`, 'run pgshift cdc start again: it recreates it');
  return { marker, seq: BigInt(r.rows[0].seq), writtenAt: Date.now() };
}

export async function beatApplied(target: pg.Client, table: string, group: string, beat: Beat): Promise<boolean> {
  const r = await target.query<{ seq: string }>(`SELECT seq::text FROM ${CONTROL}.${quoteIdent(table)} WHERE group_name = $1`, [group]);
  return r.rows[0] !== undefined && BigInt(r.rows[0].seq) >= beat.seq;
}

/** Wait until the marker is applied on the target; returns the milliseconds waited, or null on timeout. */
export async function waitForMarker(target: pg.Client, table: string, group: string, beat: Beat, timeoutMs: number, pollMs = 20, signal?: AbortSignal): Promise<number | null> {
  const waited = await pollUntil(async () => ((await beatApplied(target, table, group, beat)) ? Date.now() - beat.writtenAt : undefined), {
    everyMs: pollMs,
    timeoutMs: Math.max(0, beat.writtenAt + timeoutMs - Date.now()),
    signal,
  });
  return waited ?? null;
}

/** Age of the last applied heartbeat on the target, in seconds, measured by the target's clock. */
export async function appliedBeatAge(target: pg.Client, table: string, group: string): Promise<number | null> {
  const r = await target.query<{ age: string | null }>(
    `SELECT extract(epoch FROM clock_timestamp() - beat_at)::text AS age FROM ${CONTROL}.${quoteIdent(table)} WHERE group_name = $1`,
    [group],
  );
  return r.rows[0]?.age == null ? null : Number(r.rows[0].age);
}

/**
 * Lag in seconds per stream, measured end to end: a beat written now on each stream, then waited
 * for on the target (one deadline for all, so a stream that does not apply costs waitMs once); a
 * beat that does not arrive in time gives the age of the last applied one, a lower bound.
 * Streams without an applied beat yet are absent from the result.
 */
export async function measureLags(source: pg.Client, target: pg.Client, streams: string[], waitMs: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (waitMs <= 0) return out;
  const beats = new Map<string, Beat>();
  for (const st of new Set(streams)) beats.set(st, await writeBeat(source, heartbeatTable(st), st));
  const deadline = Date.now() + waitMs;
  for (const [st, beat] of beats) {
    const waited = await waitForMarker(target, heartbeatTable(st), st, beat, Math.max(0, deadline - Date.now()));
    const age = waited !== null ? waited / 1000 : await appliedBeatAge(target, heartbeatTable(st), st);
    if (age !== null) out.set(st, age);
  }
  return out;
}

/**
 * The barrier: a heartbeat written on `source` now, on every stream, applied on `target`. Once it
 * is, every commit on the source before it has been applied (each stream applies in commit order).
 * Throws when a stream does not get there within timeoutMs.
 */
export async function drainToBarrier(source: pg.Client, target: pg.Client, streams: Array<{ group: string }>, timeoutMs: number, signal?: AbortSignal, receiver = 'the target'): Promise<Map<string, number>> {
  const beats = [];
  for (const st of streams) beats.push({ st, beat: await writeBeat(source, heartbeatTable(st.group), st.group) });
  const waited = new Map<string, number>();
  for (const { st, beat } of beats) {
    const ms = await waitForMarker(target, heartbeatTable(st.group), st.group, beat, timeoutMs, 5, signal);
    if (ms === null) {
      throw failure('cutover.barrier', `group ${st.group}: the barrier marker did not reach ${receiver} within ${timeoutMs / 1000} s`, 'check pgshift cdc status; raise cutover.timeoutSeconds if the stream is healthy but slow');
    }
    waited.set(st.group, ms);
  }
  return waited;
}
