import { formatBytes } from './size.js';

/**
 * A native stream's health from what was measured on both servers: its slot on the source, its
 * subscription on the target, the heartbeat lag, the apply errors the target recorded, and the
 * problems of DDL it carries. Each problem names what is wrong and, where there is one, the way out.
 *
 *   journal state paused                          paused
 *   journal state not streaming (stopped, loaded) stopped
 *   any problem                                   failing
 *   no heartbeat applied within the wait          lagging
 *   otherwise                                     streaming
 */
export type StreamHealth = 'streaming' | 'lagging' | 'paused' | 'stopped' | 'failing';

export interface StreamMeasures {
  /** The stream's state in the journal. */
  state: string;
  slot: { name: string; exists: boolean; walStatus: string | null; lagBytes: number | null; safeWalBytes: number | null; keepLimitBytes: number | null };
  subscription: { name: string; exists: boolean; workerRunning: boolean };
  /** Seconds until a fresh heartbeat was applied (null: none within the wait). */
  lagSeconds: number | null;
  /** How long status waited for the heartbeat, in ms. */
  waitMs: number;
  /** Apply errors the target recorded for the subscription (15+; null before). */
  applyErrors: number | null;
  /** Problems of the DDL this stream carries (pg/ddl.ts). */
  ddlProblems: string[];
}

export interface StreamThresholds {
  maxLagBytes: number;
  maxLagSeconds: number;
  /** A slot whose safe WAL is at or under this share of max_slot_wal_keep_size is about to be invalidated. */
  minSafeWalFraction: number;
}

export function streamHealth(m: StreamMeasures, thresholds: StreamThresholds): { health: StreamHealth; problems: string[] } {
  const { slot, subscription: sub } = m;
  const streaming = m.state === 'streaming';
  const problems: string[] = [];
  if (!slot.exists) problems.push(`slot ${slot.name} is missing on the source`);
  if (slot.walStatus === 'lost') problems.push(`slot ${slot.name} has lost required WAL: the stream cannot continue`);
  if (slot.walStatus === 'unreserved') problems.push(`slot ${slot.name} is about to lose WAL (wal_status unreserved)`);
  if (streaming && sub.exists && !sub.workerRunning) problems.push(`subscription ${sub.name} has no running apply worker (see the target's log)`);
  if (streaming && !sub.exists) problems.push(`subscription ${sub.name} is missing on the target`);
  if (m.applyErrors) {
    problems.push(
      `${m.applyErrors} apply error(s) recorded for ${sub.name}: the target log names the table. A schema change on the source (a new column, a new table) stops apply until the target has it: apply the same DDL on the target; then pgshift cdc acknowledge`,
    );
  }
  if (slot.safeWalBytes !== null && slot.keepLimitBytes !== null && slot.safeWalBytes <= slot.keepLimitBytes * thresholds.minSafeWalFraction) {
    problems.push(`slot ${slot.name} can fall only ${formatBytes(Math.max(0, slot.safeWalBytes))} further behind before max_slot_wal_keep_size (${formatBytes(slot.keepLimitBytes)}) invalidates it`);
  }
  problems.push(...m.ddlProblems);
  if (slot.lagBytes !== null && slot.lagBytes > thresholds.maxLagBytes && streaming) problems.push(`lag ${formatBytes(slot.lagBytes)} is above cdc.maxLagBytes ${formatBytes(thresholds.maxLagBytes)}`);
  if (m.lagSeconds !== null && m.lagSeconds > thresholds.maxLagSeconds) problems.push(`lag ${m.lagSeconds.toFixed(1)} s is above cdc.maxLagSeconds ${thresholds.maxLagSeconds}`);
  return { health: healthOf(m, problems), problems };
}

function healthOf(m: StreamMeasures, problems: string[]): StreamHealth {
  if (m.state === 'paused') return 'paused';
  if (m.state !== 'streaming') return 'stopped';
  if (problems.length > 0) return 'failing';
  if (m.lagSeconds === null || m.lagSeconds * 1000 >= m.waitMs) return 'lagging';
  return 'streaming';
}
