import { endpointText, repointAws } from '../aws/repoint.js';
import { requireCutoverSettings } from '../config/phase-settings.js';
import { parseServerUrl } from '../config/url.js';
import { isDecided, rollbackCompleteActions, undoActions, type RollbackRecord } from '../core/cutover-steps.js';
import { failure, gateRefused } from '../core/errors.js';
import { uninterruptible } from '../core/interrupt.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import { applyFence, describeLocked, liftFence, planSeal, WindowFence, type FenceState } from '../pg/fence.js';
import { drainToBarrier } from '../pg/heartbeat.js';
import { PgBouncer, requirePoolerEntry, restoreConfigLine } from '../pg/pgbouncer.js';
import { setSubscriptionEnabled, subscriptionState } from '../pg/replication.js';
import { syncSequences, type SequenceSync } from '../pg/sequences.js';
import { openSessions, resolveGroups, type PhaseContext, type Sessions } from './context.js';
import { budgetedStep, budgets, stepTimer, type StepTiming } from './cutover.js';
import { fenceWindow, interruptedRecord, journalIntent, persist, releaseCutoverLease, resumePooler, takeOverWindow } from './cutover-finish.js';
import { reverseNames } from './reverse.js';
import { startWatchdog, type RecoveryCommand } from './watchdog.js';

/**
 * Rollback: the cut-over run backwards, after a cut-over with cutover.rollback on, and as safe
 * against pgshift's death as the cut-over itself (the same write-ahead record, rules in
 * core/cutover-steps.ts):
 *
 *   gate       a completed cut-over, the reverse subscription streaming on the source
 *   fence      PgBouncer PAUSE (clients queue), then the window fence on the target: EXCLUSIVE
 *              locks on every migrated table, held by one pgshift session the server ends if
 *              pgshift dies
 *   barrier    a heartbeat written on the target after the fence is applied on the source
 *   sequences  every sequence set on the source from the target (+ margin), never backwards
 *   decision   the fence proven held without a break; "decided" journaled
 *   switch     the target sealed (roles or database read-only, their sessions ended), the reverse
 *              stream stopped, the source's seal from the cut-over lifted, PgBouncer pointed back
 *              and resumed, AWS pointed at the source; the fence let go
 *
 * If pgshift dies before the decision, the application's writes wait (on the locks, or queued in
 * PgBouncer) and go on — on the target — when the server ends the fence with pgshift's session
 * and the watchdog RESUMEs PgBouncer; after the decision, the watchdog completes the switch. A
 * re-run of `pgshift rollback` first finishes or undoes a rollback whose process is gone.
 */
export interface RollbackResult {
  windowMs: number | null;
  steps: StepTiming[];
  sequences: SequenceSync[];
  endpoint: string;
  /** An earlier rollback whose process had gone, and what this run did with it. */
  recovered?: { outcome: 'undone' | 'completed'; stage: string };
}

export interface RollbackOptions {
  /** Only end a rollback whose process is gone (the watchdog's run); start none. */
  recover?: boolean;
  /** How the watchdog runs the recovery if this process dies inside the window; none: no watchdog. */
  recoveryCommand?: RecoveryCommand;
}

type Record = RollbackRecord<FenceState>;

export async function runRollback(ctx: PhaseContext, options: RollbackOptions = {}): Promise<RollbackResult> {
  const { plan, log } = ctx;
  requireCutoverSettings(plan, 'rollback');
  const s = await openSessions(ctx);
  const endpoint = endpointText(parseServerUrl(plan.source.url));
  try {
    const journal = await Journal.find(s.target, plan.name);
    if (!journal) throw gateRefused('rollback.not-cut-over', 'there is no completed cut-over to roll back', 'pgshift rollback follows pgshift cutover');
    // A rollback whose process is gone is finished or undone first; --recover is the watchdog's run.
    const earlier = await takeOverWindow(ctx, s, 'rollback', { waitMs: options.recover ? 60_000 : 0, ownerIsDead: options.recover }, () =>
      recoverInterruptedRollback(ctx, s, journal, options.recover ? 'recovery' : 'this run'),
    );
    if (earlier) log.warn(`an earlier rollback was interrupted at the ${earlier.stage} stage: ${earlier.outcome === 'completed' ? 'it was decided, and is now completed' : 'it was not decided, and is now undone'}`);
    if (options.recover || earlier?.outcome === 'completed') {
      return { windowMs: null, steps: [], sequences: [], endpoint: earlier?.outcome === 'completed' ? endpoint : endpointText(parseServerUrl(plan.target.url)), ...(earlier ? { recovered: earlier } : {}) };
    }
    const { streams, record } = await rollbackGate(ctx, s, journal);
    const steps: StepTiming[] = [];
    const result = await rollbackWindow(ctx, s, journal, streams, record, steps, options);
    return { ...result, endpoint, ...(earlier ? { recovered: earlier } : {}) };
  } finally {
    await releaseCutoverLease(s.target, plan.name);
    await s.close();
  }
}

/** What a rollback needs, refused (exit 3) with nothing changed: a completed cut-over and the reverse stream running. The record it starts from. */
async function rollbackGate(ctx: PhaseContext, s: Sessions, journal: Journal): Promise<{ streams: StreamRecord[]; record: Record }> {
  const settings = ctx.plan.cutover;
  const cut = await journal.phaseState('cutover');
  if (cut?.state !== 'done') throw gateRefused('rollback.not-cut-over', 'there is no completed cut-over to roll back', 'pgshift rollback follows pgshift cutover');
  if ((await journal.phaseState('rollback'))?.state === 'done') {
    throw gateRefused('rollback.done', `migration ${ctx.plan.name} was rolled back already: the application writes to the source`, 'nothing to do; pgshift teardown removes what is left of the migration');
  }
  const names = reverseNames(ctx.plan.name);
  const rev = await subscriptionState(s.source, names.subscription);
  if (!rev.exists || !rev.workerRunning) throw gateRefused('rollback.no-reverse', `reverse subscription ${names.subscription} is not streaming on the source`, 'rollback needs cutover.rollback: true at the cut-over');
  // The cut-over's seal of the source and the pooler's line before it (a cut-over completed by its
  // watchdog before this version journaled them as seal and pooler).
  const detail = cut.detail as { fence?: FenceState; seal?: FenceState; pgbouncer?: { previous: string }; pooler?: { previous: string } };
  const poolerPrevious = detail.pgbouncer?.previous ?? detail.pooler?.previous;
  // Restoring the pooler's line comes after the decision, when a refusal would come too late.
  if (poolerPrevious && settings.pgbouncer?.configFile) requirePoolerEntry(settings.pgbouncer.configFile, settings.pgbouncer.database, poolerPrevious);
  const hardFence = settings.fence === 'pgbouncer' ? settings.pgbouncer!.hardFence : settings.fence;
  const record: Record = {
    stage: 'window',
    attempted: [],
    seal: await planSeal(s.target, hardFence, settings.roles),
    sourceSeal: detail.fence ?? detail.seal,
    ...(poolerPrevious ? { poolerPrevious } : {}),
    windowStartedAt: new Date().toISOString(),
  };
  return { streams: await journal.streams(), record };
}

async function saveRecord(journal: Journal, record: Record): Promise<void> {
  await journal.setPhaseDetail('rollback', 'running', record);
}

/** The window, from the first PAUSE to the end of the switch: undone before the decision, completed after it. */
async function rollbackWindow(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, steps: StepTiming[], options: RollbackOptions): Promise<Omit<RollbackResult, 'endpoint'>> {
  const { plan, log } = ctx;
  await journal.startPhase('rollback', record);
  const watchdog = options.recoveryCommand ? startWatchdog(options.recoveryCommand, plan.name, log, 'rollback') : undefined;
  const started = Date.now();
  let fence: WindowFence | undefined;
  let sequences: SequenceSync[] = [];
  try {
    try {
      const decided = await untilRollbackDecision(ctx, s, journal, streams, record, steps);
      fence = decided.fence;
      sequences = decided.sequences;
    } catch (err) {
      await uninterruptible(() => undoRollback(ctx, journal, record, (err as Error).message, 'this run')).catch((e) => log.error(`undoing the rollback failed: ${(e as Error).message}; run pgshift rollback again to finish the undo`));
      throw failure('rollback.undone', `rollback undone: ${(err as Error).message}`, 'the target takes writes again; fix the cause and run pgshift rollback again', err);
    }
    // Decided: the switch runs to its end, whatever signal arrives.
    const timed = stepTimer(steps);
    try {
      await timed('switch', () => uninterruptible(() => completeRollback(ctx, s, journal, streams, record, { fence, by: 'this run' })));
    } catch (err) {
      throw failure('rollback.incomplete', `the rollback was decided but could not complete: ${(err as Error).message}`, 'the target is sealed or about to be; fix the cause and run pgshift rollback again: it completes the switch', err);
    }
    const windowMs = Date.now() - started;
    await journal.finishPhase('rollback', 'done', { ...record, completedBy: 'this run', windowMs, steps, targetFence: record.seal });
    log.info(`rolled back in ${windowMs} ms: the application writes to the source again; the target is sealed`);
    return { windowMs, steps, sequences };
  } finally {
    watchdog?.stand();
  }
}

/** The steps before the decision, in their order, each under its budget; a failure leaves the fence for the caller to let go. */
async function untilRollbackDecision(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, steps: StepTiming[]): Promise<{ fence: WindowFence; sequences: SequenceSync[] }> {
  const settings = ctx.plan.cutover;
  const b = budgets(ctx);
  const step = budgetedStep(ctx, s, steps, 'rollback');
  const intend = (action: Record['attempted'][number]) => journalIntent(record, action, () => saveRecord(journal, record));
  const tables = (await resolveGroups(ctx, s.target, s.targetVersion)).flatMap((g) => g.tables);
  let fence: WindowFence | undefined;
  try {
    await step('fence', b.fence, async (signal) => {
      fence = await fenceWindow(ctx, ctx.target, tables, intend, signal);
    });
    ctx.log.info(`rollback fence: writes stopped on the target (${describeLocked(tables)} locked by session ${fence!.pid}${settings.fence === 'pgbouncer' ? '; PgBouncer paused' : ''})`);
    // The reverse stream carries the target's writes to the source: a barrier written on the target.
    await step('barrier', b.barrier, (signal) => drainToBarrier(s.target, s.source, streams, b.barrier, signal, 'the source'));
    const sequences = await step('sequences', b.sequences, () => syncSequences(s.target, s.source, BigInt(settings.sequenceMargin), undefined, { neverBackwards: true }));
    await fence!.requireHeld();
    record.stage = 'decided';
    await saveRecord(journal, record);
    return { fence: fence!, sequences };
  } catch (err) {
    await fence?.release();
    throw err;
  }
}

/** Undo a rollback that was not decided: RESUME the pooler if PAUSE may have been sent; the window fence ended with its session. */
async function undoRollback(ctx: PhaseContext, journal: Journal, record: Record, reason: string, by: string): Promise<void> {
  for (const action of undoActions(record)) {
    if (action === 'resume-pooler') await resumePooler(ctx);
  }
  record.stage = 'undone';
  await journal.finishPhase('rollback', 'undone', { ...record, reason, undoneBy: by });
  ctx.log.warn(`rollback undone (${by}): the target takes writes again${record.attempted.includes('pause-pooler') ? ' and PgBouncer is resumed' : ''}`);
}

/**
 * Complete a decided rollback, each step idempotent: seal the target first (while the window fence,
 * when still ours, holds) — if the fence broke before the seal, drain the reverse stream to a new
 * barrier and carry the sequences again — then stop the reverse stream, lift the source's seal,
 * point PgBouncer back and resume it, and point AWS at the source.
 */
async function completeRollback(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, o: { fence?: WindowFence; by: string }): Promise<void> {
  const settings = ctx.plan.cutover;
  const source = parseServerUrl(ctx.plan.source.url);
  const names = reverseNames(ctx.plan.name);
  const actions = rollbackCompleteActions({ pooler: settings.fence === 'pgbouncer', poolerConfig: Boolean(settings.pgbouncer?.configFile && record.poolerPrevious), aws: Object.keys(settings.repoint).length > 0 });
  for (const action of actions) {
    await journalIntent(record, action, () => saveRecord(journal, record));
    switch (action) {
      case 'seal-target':
        await sealTarget(ctx, s, journal, streams, record, o.fence);
        break;
      case 'stop-reverse':
        await persist(ctx, `stopping ${names.subscription}`, () => setSubscriptionEnabled(s.source, names.subscription, false));
        break;
      case 'unseal-source':
        if (record.sourceSeal) await persist(ctx, 'lifting the source seal', () => liftFence(s.source, record.sourceSeal!));
        break;
      case 'restore-pooler':
        await restorePooler(ctx, record.poolerPrevious!);
        break;
      case 'resume-pooler':
        await resumePooler(ctx);
        break;
      case 'repoint-aws':
        await persist(ctx, 'repointing through AWS', () => repointAws(settings.repoint, source));
        break;
      default:
        break;
    }
  }
  for (const st of streams) await journal.setStreamState(st.group, 'rolled-back');
  record.stage = 'done';
  ctx.log.info(`rollback completed (${o.by}): the target is sealed, the application writes to ${source.host}:${source.port}/${source.database}`);
}

/**
 * Seal the target (while the window fence, when still ours, holds) and let the fence go. A fence
 * that broke before the seal means the target may have taken writes since the barrier: the reverse
 * stream is drained to a new barrier and the sequences are carried again.
 */
async function sealTarget(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[], record: Record, fence: WindowFence | undefined): Promise<void> {
  const settings = ctx.plan.cutover;
  record.seal = await persist(ctx, 'sealing the target', () => applyFence(s.target, record.seal!));
  await saveRecord(journal, record);
  const held = fence ? await fence.requireHeld().then(() => true, () => false) : false;
  await fence?.release();
  if (held) return;
  ctx.log.warn('rollback: the window fence did not hold until the seal; draining the reverse stream again and carrying the sequences again');
  await persist(ctx, 'the barrier after the seal', () => drainToBarrier(s.target, s.source, streams, settings.timeoutSeconds * 1000, undefined, 'the source'));
  await persist(ctx, 'carrying the sequences', () => syncSequences(s.target, s.source, BigInt(settings.sequenceMargin), undefined, { neverBackwards: true }));
}

/** Point the pooler's database back to its line before the cut-over, and RELOAD. */
async function restorePooler(ctx: PhaseContext, previous: string): Promise<void> {
  const pb = ctx.plan.cutover.pgbouncer!;
  await persist(ctx, 'PgBouncer RELOAD', async () => {
    restoreConfigLine(pb.configFile!, pb.database, previous);
    const bouncer = await PgBouncer.connect(pb.adminUrl);
    try {
      await bouncer.reload();
    } finally {
      await bouncer.close();
    }
  });
}

/** A rollback whose process is gone: undone when it was not decided, completed when it was. */
async function recoverInterruptedRollback(ctx: PhaseContext, s: Sessions, journal: Journal, by: string): Promise<{ outcome: 'undone' | 'completed'; stage: string } | undefined> {
  const record = await interruptedRecord<Record>(journal, 'rollback');
  if (!record) return undefined;
  const stage = record.stage;
  if (isDecided(record)) {
    await journal.event('rollback', 'warn', `an interrupted rollback (decided) is completed by ${by}`);
    await completeRollback(ctx, s, journal, await journal.streams(), record, { by });
    await journal.finishPhase('rollback', 'done', { ...record, completedBy: by, targetFence: record.seal });
    return { outcome: 'completed', stage };
  }
  await undoRollback(ctx, journal, record, `the process running it went away during the ${stage} stage`, by);
  return { outcome: 'undone', stage };
}
