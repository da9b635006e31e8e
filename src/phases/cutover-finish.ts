import { repointAws, type RepointResult } from '../aws/repoint.js';
import { dmsClients } from '../aws/dms.js';
import { parseServerUrl } from '../config/url.js';
import { completeActions, isDecided, undoActions, type CutoverRecord } from '../core/cutover-steps.js';
import { failure, gateRefused } from '../core/errors.js';
import { sleep } from '../core/wait.js';
import type { Journal, StreamRecord } from '../journal/journal.js';
import { applyFence, WindowFence, type FenceState } from '../pg/fence.js';
import type { Endpoint } from '../pg/connect.js';
import type { QualifiedName } from '../core/ident.js';
import { drainToBarrier } from '../pg/heartbeat.js';
import { PgBouncer, poolerLine, repointConfig } from '../pg/pgbouncer.js';
import { setSubscriptionEnabled } from '../pg/replication.js';
import { syncSequences, type SequenceSync } from '../pg/sequences.js';
import { syncLargeObjects } from '../pg/large-objects.js';
import { describeLargeObjectChanges, type LargeObjectChanges } from '../core/large-objects.js';
import { endLeaseHolder, releaseCutoverLease, takeCutoverLease } from '../pg/lease.js';
import { dmsTasksOf, requestStop, settleStopped, type DmsTaskState } from './cdc-dms.js';
import type { PhaseContext, Sessions } from './context.js';
import { startReverse } from './reverse.js';

/**
 * Ending a cut-over window, whichever way it goes and whoever ends it: the cut-over itself, the
 * watchdog it leaves behind (`pgshift cutover --recover`, run when the cut-over's process is gone),
 * or a plain re-run of `pgshift cutover`. The rules that decide are in core/cutover-steps.ts; this
 * is the I/O. Every step is idempotent, so a completion or an undo that is itself interrupted is
 * simply done again.
 */
export type Record = CutoverRecord<FenceState, DmsTaskState>;

export interface Completion {
  sequences: SequenceSync[];
  /** Large objects carried after the seal (nothing replicates them). */
  largeObjects?: LargeObjectChanges & { bytes: number };
  seal: FenceState;
  repointed: RepointResult[];
  reverse: { publication: string; slot: string; subscription: string } | null;
  pooler?: { previous: string; next: string };
}

/** Journal the record as the cut-over phase's detail (kept with the planned steps). */
export async function saveRecord(journal: Journal, record: Record, extra: object = {}): Promise<void> {
  await journal.setPhaseDetail('cutover', 'running', { ...extra, ...record });
}

/**
 * Journal an intent before its action is sent, once per action: whoever ends the window later
 * (this run, the watchdog, a re-run) reads from it that the action may have happened.
 */
export async function journalIntent<A extends string>(record: { attempted: A[] }, action: A, save: () => Promise<void>): Promise<void> {
  if (record.attempted.includes(action)) return;
  record.attempted.push(action);
  await save();
}

/** Run a step of a completion again until it goes through: after the decision there is no going back. */
export async function persist<T>(ctx: PhaseContext, what: string, work: () => Promise<T>, attempts = 6): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (err) {
      if (i >= attempts) throw err;
      ctx.log.warn(`cut-over: ${what} failed (${(err as Error).message}); trying again`);
      await sleep(500 * i);
    }
  }
}

/**
 * Undo a window that was not decided: RESUME the pooler if PAUSE may have been sent. The forward
 * stream was never stopped and reverse replication never started before the decision, and the
 * window fence ended with its session (the caller releases it when it still holds it).
 */
export async function undoWindow(ctx: PhaseContext, journal: Journal, record: Record, reason: string, by: string): Promise<void> {
  for (const action of undoActions(record)) {
    if (action === 'resume-pooler') await resumePooler(ctx);
  }
  record.stage = 'undone';
  await journal.finishPhase('cutover', 'undone', { ...record, reason, undoneBy: by });
  ctx.log.warn(`cut-over undone (${by}): the source takes writes again${record.attempted.includes('pause-pooler') ? ' and PgBouncer is resumed' : ''}`);
}

/**
 * The window's fence, on the side whose writes the window stops (the source for a cut-over, the
 * target for a rollback): PgBouncer PAUSE first when the plan fences there, then one session's
 * EXCLUSIVE locks on the tables. Each is journaled as an intent (`intend`) before it is sent.
 */
export async function fenceWindow(ctx: PhaseContext, ep: Endpoint, tables: QualifiedName[], intend: (action: 'pause-pooler' | 'lock-tables') => Promise<void>, signal: AbortSignal): Promise<WindowFence> {
  const settings = ctx.plan.cutover;
  if (settings.fence === 'pgbouncer') {
    await intend('pause-pooler');
    const bouncer = await PgBouncer.connect(settings.pgbouncer!.adminUrl);
    try {
      await bouncer.pause(settings.pgbouncer!.database, signal);
    } finally {
      await bouncer.close();
    }
  }
  await intend('lock-tables');
  return WindowFence.acquire(ep, tables, { lockTimeoutMs: settings.lockTimeoutSeconds * 1000, attempts: settings.lockAttempts, guardMs: settings.guardSeconds * 1000, signal });
}

export async function resumePooler(ctx: PhaseContext): Promise<void> {
  const pb = ctx.plan.cutover.pgbouncer;
  if (!pb) return;
  await persist(ctx, 'PgBouncer RESUME', async () => {
    const bouncer = await PgBouncer.connect(pb.adminUrl);
    try {
      await bouncer.resume(pb.database);
    } finally {
      await bouncer.close();
    }
  });
}

/**
 * Complete a decided cut-over. The source is sealed first (while the window fence, when it is
 * still ours, holds): from then on no session of the application can write there. If the fence
 * did not hold without a break until the seal (the cut-over's process died after the decision and
 * the server let the fence go), writes may have reached the source meanwhile, so the stream is
 * drained to a new barrier and the sequences are carried again before it stops. Then the forward
 * stream stops, reverse replication starts (rollback), the pooler is repointed and resumed, and AWS
 * points at the target.
 */
export async function completeWindow(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, o: { fence?: WindowFence; by: string }): Promise<Completion> {
  const settings = ctx.plan.cutover;
  const target = parseServerUrl(ctx.plan.target.url);
  const steps = completeActions({ pooler: settings.fence === 'pgbouncer', poolerConfig: Boolean(settings.pgbouncer?.configFile), aws: Object.keys(settings.repoint).length > 0 });
  const out: Completion = { sequences: [], seal: record.seal!, repointed: [], reverse: null };
  for (const step of steps) {
    await journalIntent(record, step, () => saveRecord(journal, record));
    switch (step) {
      case 'seal-source':
        await sealSource(ctx, s, journal, streams, record, o.fence, out);
        break;
      case 'stop-forward':
        await stopForward(ctx, s, journal, streams, record, out);
        break;
      case 'repoint-pooler':
        out.pooler = await repointPooler(ctx, journal, record, target);
        break;
      case 'resume-pooler':
        await resumePooler(ctx);
        break;
      case 'repoint-aws':
        out.repointed = await persist(ctx, 'repointing through AWS', () => repointAws(settings.repoint, target));
        break;
      default:
        break;
    }
  }
  for (const st of streams) await journal.setStreamState(st.group, 'cut-over');
  record.stage = 'done';
  if (ctx.plan.cdc.engine === 'dms' && record.dmsStopping?.length) await settleStopped(ctx, record.dmsStopping, dmsClients(ctx.plan.cdc.dms.region));
  ctx.log.info(`cut-over completed (${o.by}): the source is sealed, the application writes to ${target.host}:${target.port}/${target.database}`);
  return out;
}

/**
 * Seal the source, let the window fence go, and carry what no stream carries: the sequences
 * (again) and the large objects. A fence that did not hold until the seal means a new barrier first.
 */
async function sealSource(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, fence: WindowFence | undefined, out: Completion): Promise<void> {
  const settings = ctx.plan.cutover;
  out.seal = await persist(ctx, 'sealing the source', () => applyFence(s.source, record.seal!));
  record.seal = out.seal;
  const held = fence ? await fence.requireHeld().then(() => true, () => false) : false;
  await fence?.release();
  if (!held) {
    ctx.log.warn('cut-over: the window fence did not hold until the seal; draining the stream again and carrying the sequences again');
    await persist(ctx, 'the barrier after the seal', () => drainToBarrier(s.source, s.target, streams, settings.timeoutSeconds * 1000));
  }
  // Sequences: set inside the window already; again here (never backwards) in case the fence broke.
  out.sequences = await persist(ctx, 'carrying the sequences', () => syncSequences(s.source, s.target, BigInt(settings.sequenceMargin), undefined, { neverBackwards: true }));
  // Large objects: no table lock fences them, the seal does; carried once it holds.
  out.largeObjects = await persist(ctx, 'carrying the large objects', () => syncLargeObjects(s.source, s.target, ctx.plan.fullLoad.ownership === 'keep'));
  if (out.largeObjects.copy.length + out.largeObjects.remove.length) {
    const text = `large objects carried after the seal: ${describeLargeObjectChanges(out.largeObjects)} (${out.largeObjects.bytes} bytes copied)`;
    ctx.log.info(text);
    await journal.event('cutover', 'info', text);
  }
}

/** Stop the forward stream (DMS tasks asked to stop, or the subscriptions disabled), then start reverse replication (rollback). */
async function stopForward(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, out: Completion): Promise<void> {
  if (ctx.plan.cdc.engine === 'dms') {
    const tasks = record.dmsStopping?.length ? record.dmsStopping : await dmsTasksOf(journal);
    record.dmsStopping = tasks;
    await saveRecord(journal, record);
    const stop = await requestStop(ctx, tasks);
    if (stop.error) throw stop.error;
  } else {
    for (const st of streams) await persist(ctx, `stopping ${st.subscription}`, () => setSubscriptionEnabled(s.target, st.subscription, false));
  }
  if (ctx.plan.cutover.rollback) out.reverse = await persist(ctx, 'starting reverse replication', () => startReverse(ctx, s));
}

/** Point the pooler's database at the target (its earlier line journaled first, for a way back) and RELOAD. */
async function repointPooler(ctx: PhaseContext, journal: Journal, record: Record, target: ReturnType<typeof parseServerUrl>): Promise<NonNullable<Completion['pooler']>> {
  const pb = ctx.plan.cutover.pgbouncer!;
  record.pooler ??= { previous: poolerLine(pb.configFile!, pb.database), next: '' };
  const pooler = { previous: record.pooler.previous, next: repointConfig(pb.configFile!, pb.database, target).next };
  record.pooler = pooler;
  await saveRecord(journal, record);
  await persist(ctx, 'PgBouncer RELOAD', async () => {
    const bouncer = await PgBouncer.connect(pb.adminUrl);
    try {
      await bouncer.reload();
    } finally {
      await bouncer.close();
    }
  });
  return pooler;
}

export interface Recovery {
  outcome: 'undone' | 'completed';
  /** Where the earlier cut-over was when its process went away. */
  stage: string;
  completion?: Completion;
}

/** The window record of a cut-over or rollback the journal still says is running (the caller holds the lease: its process is gone). */
export async function interruptedRecord<R extends { stage: string; attempted: string[] }>(journal: Journal, phase: 'cutover' | 'rollback'): Promise<R | undefined> {
  const row = await journal.phaseState(phase);
  if (!row || row.state !== 'running') return undefined;
  const record = row.detail as R | null;
  return record?.stage && Array.isArray(record.attempted) ? record : undefined;
}

/**
 * A cut-over whose process is gone (its journal row says running, its session does not exist):
 * undone when it was not decided, completed when it was. Returns undefined when there is none.
 * The caller holds the cut-over lease, so no live process is in the middle of it.
 */
export async function recoverInterrupted(ctx: PhaseContext, s: Sessions, journal: Journal, by: string): Promise<Recovery | undefined> {
  const record = await interruptedRecord<Record>(journal, 'cutover');
  if (!record) return undefined;
  const stage = record.stage;
  const streams = await journal.streams();
  if (isDecided(record)) {
    await journal.event('cutover', 'warn', `an interrupted cut-over (decided) is completed by ${by}`);
    const completion = await completeWindow(ctx, s, journal, streams, record, { by });
    // The same record as a cut-over that completed itself: rollback reads the seal and the pooler's line from it.
    await journal.finishPhase('cutover', 'done', { ...record, completedBy: by, sequences: completion.sequences.length, fence: completion.seal, pgbouncer: completion.pooler, repointed: completion.repointed, reverse: completion.reverse });
    return { outcome: 'completed', stage, completion };
  }
  await undoWindow(ctx, journal, record, `the process running it went away during the ${stage} stage`, by);
  return { outcome: 'undone', stage };
}

/**
 * Take the cut-over lease (one process at a time) and end any cut-over left by a dead process.
 * `waitMs`: how long to wait for the lease (the watchdog waits for the dead process's session to
 * close; an operator's run refuses at once when another cut-over is live).
 */
export async function takeOverCutover(ctx: PhaseContext, s: Sessions, journal: Journal, o: { waitMs: number; by: string; ownerIsDead?: boolean }): Promise<Recovery | undefined> {
  return takeOverWindow(ctx, s, 'cutover', o, () => recoverInterrupted(ctx, s, journal, o.by));
}

/**
 * The lease of a window — the cut-over's or the rollback's, one at a time for a migration — then
 * `recover`, which ends a window a dead process left. The watchdog's run (`ownerIsDead`) ends the
 * dead process's journal session if it still holds the lease.
 */
export async function takeOverWindow<R>(ctx: PhaseContext, s: Sessions, command: 'cutover' | 'rollback', o: { waitMs: number; ownerIsDead?: boolean }, recover: () => Promise<R>): Promise<R> {
  let leased = await takeCutoverLease(s.target, ctx.plan.name, o.ownerIsDead ? Math.min(o.waitMs, 5_000) : o.waitMs);
  if (!leased && o.ownerIsDead && (await endLeaseHolder(s.target, ctx.plan.name)) > 0) {
    ctx.log.warn(`ended the lingering session of the dead ${command} process that still held the cut-over lease`);
    leased = await takeCutoverLease(s.target, ctx.plan.name, o.waitMs);
  }
  if (!leased) {
    throw gateRefused(`${command}.running`, `another pgshift cutover or rollback of ${ctx.plan.name} is running right now`, `wait for it (pgshift status shows it), or stop that process: its watchdog then finishes or undoes it`);
  }
  try {
    return await recover();
  } catch (err) {
    const what = command === 'cutover' ? 'cut-over' : 'rollback';
    throw failure(`${command}.recovery`, `ending the interrupted ${what} failed: ${(err as Error).message}`, `fix the cause, then run pgshift ${command} again: it finishes or undoes it`, err);
  }
}

export { releaseCutoverLease };
