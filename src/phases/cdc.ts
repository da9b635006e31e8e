import { gateRefused, inputError } from '../core/errors.js';
import { pollUntil, sleep } from '../core/wait.js';
import { heartbeatTable } from '../core/names.js';
import { streamHealth } from '../core/stream-health.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import { majorOf } from '../pg/connect.js';
import { measureLags, waitForMarker, writeBeat } from '../pg/heartbeat.js';
import { createSubscription, resetSubscriptionErrors, setSubscriptionEnabled, slotState, subscriptionErrorCount, subscriptionState, tableSyncStates, type SlotState, type SubscriptionState } from '../pg/replication.js';
import { ddlReport, ensureDdlCapture, joinNewTables, prepareDdlApply, type DdlEntry, type DdlReport } from '../pg/ddl.js';
import { openSessions, type PhaseContext, type Sessions } from './context.js';
import { preflightSubscription, requireReplicationRoute, subscriptionConninfo } from './preflight.js';
import { acknowledgeDmsExceptions, dmsStatus, resumeDmsCdc, startDmsCdc, stopDmsCdc, type DmsStatus } from './cdc-dms.js';

/**
 * CDC with PostgreSQL native logical replication: one subscription per group on the target,
 * bound to the slot the full load created (so it starts exactly at the snapshot's LSN), plus the
 * status that says whether it can be trusted.
 */

export type CdcHealth = 'streaming' | 'lagging' | 'paused' | 'stopped' | 'failing';

export interface GroupStatus {
  group: string;
  subscription: string;
  slot: string;
  health: CdcHealth;
  sourceLsn: string;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  walStatus: string | null;
  retainedBytes: number | null;
  lagBytes: number | null;
  /** Seconds for a heartbeat written now on the source to be applied on the target. */
  lagSeconds: number | null;
  receivedLsn: string | null;
  /** Last position the target reported as applied (flushed) back to the source. */
  appliedLsn: string | null;
  safeWalBytes: number | null;
  tables: Record<string, number>;
  applyErrors: number | null;
  /** DDL recorded on the source since the stream started, with what became of it (cdc.ddl). */
  ddl: DdlEntry[];
  problems: string[];
}

export interface CdcStatus {
  engine: 'native';
  healthy: boolean;
  groups: GroupStatus[];
  /** DDL following: mode, tables joining a stream, and those refreshed into their subscription by this status. */
  ddl: { mode: DdlReport['mode']; joins: DdlReport['joins']; refreshed: string[] };
}

async function requireStreams(s: Sessions, ctx: PhaseContext, states: string[]): Promise<{ journal: Journal; streams: StreamRecord[] }> {
  const journal = await Journal.find(s.target, ctx.plan.name);
  if (!journal) {
    throw gateRefused('cdc.no-journal', `target ${ctx.target.label} has no pgshift journal for migration ${ctx.plan.name}`, 'run pgshift full-load first');
  }
  const streams = await journal.streams();
  const wrong = streams.find((r) => !states.includes(r.state));
  if (streams.length === 0 || wrong) {
    throw gateRefused(
      'cdc.not-ready',
      wrong ? `group ${wrong.group} is ${wrong.state}, not ${states.join(' or ')}` : 'no group has been loaded',
      wrong ? nextStep(wrong.state) : 'run pgshift full-load first',
    );
  }
  return { journal, streams };
}

/** The command that moves a group on from the state a cdc command cannot act on. */
function nextStep(state: string): string {
  switch (state) {
    case 'preparing':
    case 'loading':
      return 'finish pgshift full-load for every group first (pgshift status shows where it stands)';
    case 'loaded':
      return 'run pgshift cdc start first';
    case 'cut-over':
      return 'the migration has cut over and nothing streams forward any more; pgshift teardown removes what is left';
    default:
      return 'pgshift status shows where each group stands';
  }
}

/** The status of either engine; `engine` tells which. */
export type AnyCdcStatus = CdcStatus | DmsStatus;

const onDms = (ctx: PhaseContext) => ctx.plan.cdc.engine === 'dms';

/** `cdc start`: subscriptions (native) or DMS CDC-only tasks (dms), from each group's snapshot LSN. */
export async function startCdc(ctx: PhaseContext): Promise<AnyCdcStatus> {
  return onDms(ctx) ? startDmsCdc(ctx) : startNativeCdc(ctx);
}

/** `cdc pause` / `cdc resume`. DMS has no pause: its tasks stop, and resume with resume-processing. */
export async function setCdcPaused(ctx: PhaseContext, paused: boolean): Promise<AnyCdcStatus> {
  if (onDms(ctx)) return paused ? stopDmsCdc(ctx, 'paused') : resumeDmsCdc(ctx);
  return setNativePaused(ctx, paused);
}

/** `cdc stop`: stop applying changes; slots (and subscriptions or tasks) stay until teardown. */
export async function stopCdc(ctx: PhaseContext): Promise<AnyCdcStatus> {
  return onDms(ctx) ? stopDmsCdc(ctx, 'stopped') : stopNativeCdc(ctx);
}

/**
 * `cdc acknowledge`: the apply errors recorded so far were resolved by an operator. Native: each
 * streaming subscription's error counters start again from zero; DMS: the apply exceptions up to
 * the newest are marked acknowledged in the journal (DMS's own table is left as it is). Status and
 * the cut-over gate then show only what comes after. Returns what was acknowledged, per stream.
 */
export async function acknowledgeCdcErrors(ctx: PhaseContext): Promise<Array<{ stream: string; errors: number }>> {
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    if (!journal) throw gateRefused('cdc.not-started', `no pgshift journal for ${ctx.plan.name} on the target: nothing to acknowledge`, 'run pgshift full-load and pgshift cdc start first');
    if (onDms(ctx)) return [{ stream: 'dms', errors: await acknowledgeDmsExceptions(ctx, journal, s) }];
    const out: Array<{ stream: string; errors: number }> = [];
    for (const st of (await journal.streams()).filter((r) => r.state !== 'pending')) {
      const errors = (await subscriptionErrorCount(s.target, st.subscription)) ?? 0;
      if (errors === 0) continue;
      await resetSubscriptionErrors(s.target, st.subscription);
      await journal.event('cdc', 'info', `${errors} apply error(s) of ${st.subscription} acknowledged`);
      ctx.log.info(`cdc: ${errors} apply error(s) of ${st.subscription} acknowledged`);
      out.push({ stream: st.group, errors });
    }
    return out;
  } finally {
    await s.close();
  }
}

export async function cdcStatus(ctx: PhaseContext, waitMs = 5_000): Promise<AnyCdcStatus> {
  return onDms(ctx) ? dmsStatus(ctx, undefined, new Date(), waitMs) : nativeCdcStatus(ctx, waitMs);
}

/**
 * `cdc status --watch`: a status every `everyMs` until one is failing — returned at once, so a
 * scheduled workflow fails and alerts while the problem is fresh — or until `forMs` has passed
 * (then the last status). Each status goes to `onStatus` (the CLI prints it).
 */
export async function watchCdc(ctx: PhaseContext, o: { everyMs: number; forMs: number; waitMs: number; onStatus?: (r: AnyCdcStatus) => void }): Promise<AnyCdcStatus> {
  const until = Date.now() + o.forMs;
  for (;;) {
    const r = await cdcStatus(ctx, o.waitMs);
    o.onStatus?.(r);
    if (!r.healthy || Date.now() + o.everyMs > until) return r;
    await sleep(o.everyMs, ctx.signal);
  }
}

/** Every problem of a status, named by its group, task, instance or slot (annotations, logs). */
export function statusProblems(r: AnyCdcStatus): Array<{ where: string; problem: string }> {
  if (r.engine === 'native') return r.groups.flatMap((g) => g.problems.map((problem) => ({ where: g.group, problem })));
  return [
    ...r.tasks.flatMap((t) => t.problems.map((problem) => ({ where: t.identifier, problem }))),
    ...r.instance.problems.map((problem) => ({ where: r.instance.identifier, problem })),
    ...r.slots.flatMap((x) => (x.problem ? [{ where: x.slot, problem: x.problem }] : [])),
    ...r.applyExceptions.filter((e) => e.truncation).map((e) => ({ where: e.table, problem: `LOB truncated at ${e.at}: ${e.error}` })),
    ...r.ddlProblems.map((problem) => ({ where: 'DDL', problem })),
  ];
}

/** The largest lag of a status, in bytes (slot retention behind the source) and seconds. */
export function statusLag(r: AnyCdcStatus): { bytes: number; seconds: number } {
  if (r.engine === 'native') return { bytes: Math.max(0, ...r.groups.map((g) => g.lagBytes ?? 0)), seconds: Math.max(0, ...r.groups.map((g) => g.lagSeconds ?? 0)) };
  return {
    bytes: Math.max(0, ...r.slots.map((x) => x.retainedBytes ?? 0)),
    seconds: Math.max(0, ...r.tasks.map((t) => Math.max((t.latencySourceSeconds ?? 0) + (t.latencyTargetSeconds ?? 0), t.heartbeatLagSeconds ?? 0))),
  };
}

/** A native-only operation refused on DMS with the command that does the job there. */
export function requireNativeEngine(ctx: PhaseContext, what: string, instead: string): void {
  if (onDms(ctx)) throw inputError('cdc.engine', `${what} is not available with cdc.engine dms`, instead);
}

export async function startNativeCdc(ctx: PhaseContext): Promise<CdcStatus> {
  const s = await openSessions(ctx);
  try {
    // A paused or stopped group is enabled again: its slot kept every change since.
    const { journal, streams } = await requireStreams(s, ctx, ['loaded', 'streaming', 'paused', 'stopped']);
    await preflightSubscription(ctx, s);
    await requireReplicationRoute(ctx);
    await journal.startPhase('cdc');
    await ensureDdlCapture(ctx.plan, ctx.log, ctx.source.label, s.source, streams);
    await prepareDdlApply(s.target, ctx.plan, streams);
    const conninfo = subscriptionConninfo(ctx);
    // Streaming of in-progress transactions needs protocol 2 on both sides (PostgreSQL 14+).
    const streaming = majorOf(s.sourceVersion) >= 14 && majorOf(s.targetVersion) >= 14;
    for (const st of streams) {
      await createSubscription(s.target, {
        name: st.subscription,
        conninfo,
        publication: st.publication,
        slot: st.slot,
        streaming,
        startLsn: st.snapshotMode === 'paused-replica' && st.snapshotLsn ? st.snapshotLsn : undefined,
      }, ctx.log);
      await journal.setStreamState(st.group, 'streaming');
      ctx.log.info(`group ${st.group}: subscription ${st.subscription} streaming from slot ${st.slot} (from ${st.snapshotLsn})`);
    }
    // The launcher starts apply workers asynchronously; report only once they run (or say why not).
    for (const st of streams) await waitForWorker(s, st.subscription, 30_000, ctx.signal);
    await journal.event('cdc', 'info', `started ${streams.length} subscription(s)`);
    return await collectStatus(ctx, s, await journal.streams(), 10_000);
  } finally {
    await s.close();
  }
}

export async function setNativePaused(ctx: PhaseContext, paused: boolean): Promise<CdcStatus> {
  const s = await openSessions(ctx);
  try {
    // Resume also takes a stopped group (its slot kept the changes); pause leaves a stopped one be.
    const { journal, streams } = await requireStreams(s, ctx, ['streaming', 'paused', 'stopped']);
    for (const st of streams) {
      if (paused && st.state === 'stopped') continue;
      await setSubscriptionEnabled(s.target, st.subscription, !paused);
      await journal.setStreamState(st.group, paused ? 'paused' : 'streaming');
    }
    await journal.event('cdc', 'info', paused ? 'paused' : 'resumed');
    return await collectStatus(ctx, s, await journal.streams(), paused ? 0 : 5_000);
  } finally {
    await s.close();
  }
}

/** Stop applying changes (the subscriptions stay, disabled: cdc resume or start enables them again, teardown drops them). */
async function stopNativeCdc(ctx: PhaseContext): Promise<CdcStatus> {
  const s = await openSessions(ctx);
  try {
    const { journal, streams } = await requireStreams(s, ctx, ['streaming', 'paused', 'stopped']);
    for (const st of streams) {
      await setSubscriptionEnabled(s.target, st.subscription, false);
      await journal.setStreamState(st.group, 'stopped');
    }
    await journal.event('cdc', 'info', 'stopped');
    return await collectStatus(ctx, s, await journal.streams(), 0);
  } finally {
    await s.close();
  }
}

export async function nativeCdcStatus(ctx: PhaseContext, waitMs = 5_000): Promise<CdcStatus> {
  const s = await openSessions(ctx);
  try {
    const { streams } = await requireStreams(s, ctx, ['loaded', 'streaming', 'paused', 'stopped', 'cut-over']);
    return await collectStatus(ctx, s, streams, waitMs);
  } finally {
    await s.close();
  }
}

/**
 * Status per group. Lag in seconds is measured, not inferred: a heartbeat is written on the source
 * and we wait (up to waitMs) for it to be applied. When it does not arrive in time, the age of the
 * last applied heartbeat is a lower bound of the lag.
 */
export async function collectStatus(ctx: PhaseContext, s: Sessions, streams: StreamRecord[], waitMs: number): Promise<CdcStatus> {
  const groups: GroupStatus[] = [];
  const lags = await measureLags(s.source, s.target, streams.filter((st) => st.state === 'streaming').map((st) => st.group), waitMs);
  // Tables that joined a stream on the source join its subscription now (their rows are copied).
  const refreshed = await joinNewTables(ctx.plan, s, streams);
  for (const r of refreshed) ctx.log.info(`table ${r} joined its subscription on the target: its rows are being copied`);
  const ddl = await ddlReport(ctx.plan, s, streams);
  // Problems of a DDL that no one stream carries go to the first group.
  const ddlOf = (group: string, first: boolean) => (x: { stream: string | null }) => x.stream === group || (first && (x.stream === null || !streams.some((st) => st.group === x.stream)));
  for (const [i, st] of streams.entries()) {
    const slot: SlotState = await slotState(s.source, st.slot, s.sourceVersion);
    const sub: SubscriptionState = await subscriptionState(s.target, st.subscription);
    const lagSeconds = lags.get(st.group) ?? null;
    const applyErrors = majorOf(s.targetVersion) >= 15 ? await subscriptionErrorCount(s.target, st.subscription) : null;
    const ddlProblems = ddl.problems.filter(ddlOf(st.group, i === 0)).map((p) => p.problem);
    const { health, problems } = streamHealth({ state: st.state, slot: { ...slot, name: st.slot }, subscription: { ...sub, name: st.subscription }, lagSeconds, waitMs, applyErrors, ddlProblems }, ctx.plan.cdc);
    const tables = await tableSyncStates(s.target, st.subscription);
    groups.push({
      group: st.group,
      subscription: st.subscription,
      slot: st.slot,
      health,
      sourceLsn: slot.currentLsn,
      confirmedFlushLsn: slot.confirmedFlushLsn,
      restartLsn: slot.restartLsn,
      walStatus: slot.walStatus,
      retainedBytes: slot.retainedBytes,
      lagBytes: slot.lagBytes,
      lagSeconds,
      receivedLsn: sub.receivedLsn,
      appliedLsn: sub.latestEndLsn,
      safeWalBytes: slot.safeWalBytes,
      tables,
      applyErrors,
      ddl: ddl.entries.filter(ddlOf(st.group, i === 0)),
      problems,
    });
  }
  return { engine: 'native', healthy: groups.every((g) => g.health !== 'failing'), groups, ddl: { mode: ddl.mode, joins: ddl.joins, refreshed } };
}

async function waitForWorker(s: Sessions, subscription: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const running = await pollUntil(async () => ((await subscriptionState(s.target, subscription)).workerRunning ? true : undefined), { everyMs: 100, timeoutMs, signal });
  return running ?? false;
}


/** Wait until every group has applied a heartbeat written now (used by the demo and tests). */
export async function waitForCatchUp(ctx: PhaseContext, timeoutMs: number): Promise<number> {
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    const streams = journal ? await journal.streams() : [];
    const started = Date.now();
    for (const st of streams) {
      const hb = heartbeatTable(st.group);
      const beat = await writeBeat(s.source, hb, st.group);
      const waited = await waitForMarker(s.target, hb, st.group, beat, timeoutMs);
      if (waited === null) throw gateRefused('cdc.catch-up', `group ${st.group} did not catch up within ${timeoutMs / 1000} s`, 'check pgshift cdc status and the target server log');
    }
    return Date.now() - started;
  } finally {
    await s.close();
  }
}
