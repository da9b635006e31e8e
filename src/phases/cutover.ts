import { endpointText, type RepointResult } from '../aws/repoint.js';
import { requireCutoverSettings } from '../config/phase-settings.js';
import { formatBytes } from '../config/size.js';
import { parseServerUrl } from '../config/url.js';
import type { CutoverRecord } from '../core/cutover-steps.js';
import { failure, gateRefused, isPgshiftError } from '../core/errors.js';
import { uninterruptible } from '../core/interrupt.js';
import { sleep } from '../core/wait.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import { dmsClients } from '../aws/dms.js';
import { analyzeDatabase, currentRole, invalidIndexes, listSequences, listTables, type TableInfo } from '../pg/catalog.js';
import { copyUnloggedTables } from '../pg/unlogged.js';
import { displayName } from '../core/ident.js';
import { madeAfterLoadFix, undecidedFix } from '../core/unlogged.js';
import { cancelOnAbort } from '../pg/cancel.js';
import { majorOf } from '../pg/connect.js';
import { refuseUncarriedDdl } from '../pg/ddl.js';
import { checkFenceable, describeLocked, lockCapacity, planSeal, WindowFence, type FenceState } from '../pg/fence.js';
import { drainToBarrier } from '../pg/heartbeat.js';
import { slotState, subscriptionErrorCount, subscriptionState } from '../pg/replication.js';
import { requirePoolerEntry } from '../pg/pgbouncer.js';
import { diffSchemas, schemaDiffOptions } from '../pg/schema-diff.js';
import { consumed, prebumpSequences, readSequence, syncSequences, type SequenceSync } from '../pg/sequences.js';
import { statusProblems } from './cdc.js';
import { dmsStatusOn, type DmsTaskState } from './cdc-dms.js';
import { openSessions, resolveGroups, unloggedOf, type PhaseContext, type Sessions } from './context.js';
import { completeWindow, fenceWindow, journalIntent, releaseCutoverLease, saveRecord, takeOverCutover, undoWindow, type Recovery } from './cutover-finish.js';
import { prepareReverse, reverseNames } from './reverse.js';
import { runVerify } from './verify.js';
import { startWatchdog, type RecoveryCommand } from './watchdog.js';

export { reverseNames };

/**
 * Cut-over, as a short sequence of guarded steps (pg_easy_replicate's shape, stricter):
 *
 *   gate         every group streaming, lag under the threshold on consecutive polls, a recent
 *                verify that passed, no apply errors, every DDL carried, valid indexes, no schema
 *                drift, every sequence, the seal possible — or refuse (exit 3) with nothing changed
 *   prepare      before the window: ANALYZE, optional sequence pre-bump, reverse publication
 *   fence        PgBouncer PAUSE (clients queue), then the window fence: EXCLUSIVE locks on every
 *                migrated table held by one pgshift session (src/pg/fence.ts)
 *   barrier      a heartbeat written after the fence is applied on the target
 *   sequences    every sequence set from the source (+ margin), never backwards
 *   final check  verify --mode quick, exact because writes are stopped
 *   decision     the fence is proven held without a break; "decided" is journaled
 *   switch       the source sealed (roles or database read-only, their sessions ended), the
 *                forward stream stopped, reverse replication started (rollback), PgBouncer
 *                repointed and resumed, SSM / Secrets Manager / Route 53 updated; the fence let go
 *
 * What the application sees if pgshift dies, at any instant (see README, "If pgshift dies during
 * the cut-over"): before the decision, its writes wait (on the locks, or queued in PgBouncer) and
 * go on — on the source — when the server ends the fence with pgshift's session (at once; within
 * cutover.guardSeconds if the machine is lost) and the watchdog RESUMEs PgBouncer; after the
 * decision, the watchdog completes the switch. Every step before the decision has a budget that
 * cancels the step's statements when it runs out; SIGINT/SIGTERM do the same. A re-run of
 * `pgshift cutover` first finishes or undoes a cut-over whose process is gone, and says which.
 */
export interface StepTiming {
  step: string;
  ms: number;
  budgetMs?: number;
}

export interface CutoverResult {
  dryRun: boolean;
  windowMs: number | null;
  steps: StepTiming[];
  sequences: SequenceSync[];
  fence: { strategy: string; roles: string[]; terminated: number } | null;
  endpoint: string;
  plannedSteps: string[];
  finalCheck: string;
  repointed: RepointResult[];
  reverse: { publication: string; slot: string; subscription: string } | null;
  /** An earlier cut-over whose process had gone, and what this run did with it. */
  recovered?: { outcome: Recovery['outcome']; stage: string };
}

export interface CutoverOptions {
  dryRun?: boolean;
  /** Only end a cut-over whose process is gone (the watchdog's run); start none. */
  recover?: boolean;
  /** How the watchdog runs the recovery if this process dies inside the window; none: no watchdog. */
  recoveryCommand?: RecoveryCommand;
}

const GATE_POLLS = 3;

/** Run a step and record how long it took. */
export function stepTimer(steps: StepTiming[]) {
  return async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const r = await fn();
    steps.push({ step, ms: Date.now() - t });
    return r;
  };
}

/** What to do next about a group that is not streaming, by its state. */
const NEXT_STEP: Record<string, string> = {
  loaded: 'run pgshift cdc start',
  paused: 'run pgshift cdc resume',
  stopped: 'run pgshift cdc resume (the slots kept every change)',
  'cut-over': 'this migration is already cut over (pgshift rollback moves back)',
  'rolled-back': 'this migration was rolled back to the source',
};

/** Budgets of the steps before the decision, in ms. */
export function budgets(ctx: PhaseContext) {
  const settings = ctx.plan.cutover;
  return {
    fence: settings.lockTimeoutSeconds * 1000 * settings.lockAttempts + 1000 * settings.lockAttempts + (settings.fence === 'pgbouncer' ? 30_000 : 0),
    barrier: settings.timeoutSeconds * 1000,
    sequences: settings.sequenceSeconds * 1000,
    unlogged: settings.unloggedSeconds * 1000,
    finalCheck: settings.finalCheckSeconds * 1000,
  };
}

export async function runCutover(ctx: PhaseContext, options: CutoverOptions = {}): Promise<CutoverResult> {
  const { plan, log } = ctx;
  requireCutoverSettings(plan, 'cutover');
  const settings = plan.cutover;
  const target = parseServerUrl(plan.target.url);
  const s = await openSessions(ctx);
  let journal: Journal | undefined;
  try {
    journal = await Journal.find(s.target, plan.name);
    if (!journal) throw gateRefused('cutover.no-journal', `target ${ctx.target.label} has no pgshift journal for ${plan.name}`, 'run full-load and cdc start first');
    // An earlier cut-over whose process is gone is finished or undone before anything else.
    // --recover is what the watchdog runs once this command's process died: the owner is dead.
    const earlier = await takeOverCutover(ctx, s, journal, { waitMs: options.recover ? 60_000 : 0, by: options.recover ? 'recovery' : 'this run', ownerIsDead: options.recover });
    if (earlier) log.warn(`an earlier cut-over was interrupted at the ${earlier.stage} stage: ${earlier.outcome === 'completed' ? 'it was decided, and is now completed' : 'it was not decided, and is now undone'}`);
    if (options.recover || earlier?.outcome === 'completed') {
      return recoveryResult(ctx, earlier, target);
    }
    const streams = await journal.streams();
    const steps: StepTiming[] = [];
    const timed = stepTimer(steps);
    await timed('gate', () => gate(ctx, s, journal!, streams));
    const hardFence = settings.fence === 'pgbouncer' ? settings.pgbouncer!.hardFence : settings.fence;
    const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
    const unlogged = unloggedOf(ctx, await listTables(s.source, s.sourceVersion));
    if (unlogged.undecided.length) {
      const { message, fix } = undecidedFix(unlogged.undecided);
      throw gateRefused('unlogged.undecided', message, fix);
    }
    // make-logged acts at the full load; an unlogged table made since (CREATE UNLOGGED TABLE under
    // CDC) is still unlogged, and nothing carries its rows.
    if (unlogged.makeLogged.length) {
      const { message, fix } = madeAfterLoadFix(unlogged.makeLogged);
      throw gateRefused('unlogged.after-load', message, fix);
    }
    // Unlogged tables copied in the window are fenced with the rest.
    const tables = [...groups.flatMap((g) => g.tables), ...unlogged.copyAtCutover];
    const plannedSteps = describeSteps(ctx, streams.length, tables.length, hardFence, unlogged.copyAtCutover.length);
    if (options.dryRun) {
      log.info(`cutover dry run: the gate passed; would run: ${plannedSteps.join(' → ')}`);
      return { dryRun: true, windowMs: null, steps, sequences: [], fence: null, endpoint: endpointText(target), plannedSteps, finalCheck: 'not run', repointed: [], reverse: null, ...(earlier ? { recovered: { outcome: earlier.outcome, stage: earlier.stage } } : {}) };
    }
    await journal.startPhase('cutover', { steps: plannedSteps, stage: 'prepared', attempted: [] });
    await timed('prepare', () => prepare(ctx, s, streams));
    const record: CutoverRecord<FenceState, DmsTaskState> = { stage: 'window', attempted: [], seal: await planSeal(s.source, hardFence, settings.roles), windowStartedAt: new Date().toISOString() };
    await saveRecord(journal, record, { steps: plannedSteps });
    const result = await window({ ctx, s, journal, streams, tables, unlogged: unlogged.copyAtCutover, record, steps }, options);
    return { ...result, plannedSteps, endpoint: endpointText(target), ...(earlier ? { recovered: { outcome: earlier.outcome, stage: earlier.stage } } : {}) };
  } catch (err) {
    if (isPgshiftError(err) && err.exitCode === 3) await journal?.event('cutover', 'warn', `gate refused: ${err.message}`).catch(() => {});
    throw err;
  } finally {
    await releaseCutoverLease(s.target, plan.name);
    await s.close();
  }
}

/** What the window works on: the sessions, the streams to drain, the tables to fence and to copy, the journaled record, the step timings. */
interface WindowInput {
  ctx: PhaseContext;
  s: Sessions;
  journal: Journal;
  streams: StreamRecord[];
  tables: Array<{ schema: string; name: string }>;
  unlogged: TableInfo[];
  record: CutoverRecord<FenceState, DmsTaskState>;
  steps: StepTiming[];
}

/** What the window holds while it runs: the fence once taken (let go on undo, handed to the switch), the final check's outcome. */
interface WindowState {
  fence?: WindowFence;
  finalCheck: string;
}

/** A window step: runs under its budget and the interrupt signal, and is timed. */
type WindowStep = <T>(name: string, budgetMs: number, work: (signal: AbortSignal) => Promise<T>) => Promise<T>;

/** The window, from the first PAUSE to the end of the switch. */
async function window(w: WindowInput, options: CutoverOptions): Promise<Omit<CutoverResult, 'plannedSteps' | 'endpoint'>> {
  const { ctx, s, journal, streams, record, steps } = w;
  const { plan, log } = ctx;
  const settings = plan.cutover;
  const watchdog = options.recoveryCommand ? startWatchdog(options.recoveryCommand, plan.name, log) : undefined;
  const windowStarted = Date.now();
  const state: WindowState = { finalCheck: 'none' };
  try {
    await untilDecision(w, state);
  } catch (err) {
    await state.fence?.release();
    await uninterruptible(() => undoWindow(ctx, journal, record, (err as Error).message, 'this run')).catch((e) => log.error(`undoing the cut-over failed: ${(e as Error).message}; run pgshift cutover again to finish the undo`));
    watchdog?.stand();
    throw failure('cutover.undone', `cut-over undone: ${(err as Error).message}`, 'the source takes writes again; fix the cause and run pgshift cutover again', err);
  }
  const { fence, finalCheck } = state;
  // Decided: the switch runs to its end, whatever signal arrives.
  try {
    const done = await uninterruptible(() => completeWindow(ctx, s, journal, streams, record, { fence, by: 'this run' }));
    const windowMs = Date.now() - windowStarted;
    steps.push({ step: 'switch', ms: Date.now() - windowStarted - steps.filter((x) => x.step !== 'gate' && x.step !== 'prepare').reduce((n, x) => n + x.ms, 0) });
    await journal.finishPhase('cutover', 'done', { ...record, completedBy: 'this run', windowMs, steps, sequences: done.sequences.length, fence: done.seal, finalCheck, reverse: done.reverse, pgbouncer: done.pooler, repointed: done.repointed });
    log.info(`cut-over done: write-unavailable window ${windowMs} ms`);
    return { dryRun: false, windowMs, steps, sequences: done.sequences, fence: { strategy: settings.fence, roles: done.seal.roles, terminated: done.seal.terminated }, finalCheck, repointed: done.repointed, reverse: done.reverse };
  } catch (err) {
    throw failure('cutover.incomplete', `the cut-over was decided but could not complete: ${(err as Error).message}`, 'the source is sealed or about to be; fix the cause and run pgshift cutover again: it completes the switch', err);
  } finally {
    watchdog?.stand();
  }
}

/**
 * The window's steps before the decision, in their order: fence, barrier, sequences, unlogged
 * tables, final check, then the decision journaled. A failure leaves the fence in `state` for the
 * undo to let go.
 */
async function untilDecision(w: WindowInput, state: WindowState): Promise<void> {
  const { ctx, s, journal, streams, tables, unlogged, record, steps } = w;
  const { log } = ctx;
  const settings = ctx.plan.cutover;
  const b = budgets(ctx);
  const step = budgetedStep(ctx, s, steps);
  const intend = (action: (typeof record.attempted)[number]) => journalIntent(record, action, () => saveRecord(journal, record));
  await step('fence', b.fence, async (signal) => {
    state.fence = await fenceWindow(ctx, ctx.source, tables, intend, signal);
  });
  await journal.event('cutover', 'info', `writes fenced: ${describeLocked(tables)} locked${settings.fence === 'pgbouncer' ? ', PgBouncer paused' : ''}`);
  log.info(`fence: writes stopped on the source (${describeLocked(tables)} locked by session ${state.fence!.pid}${settings.fence === 'pgbouncer' ? '; PgBouncer paused' : ''})`);
  await step('barrier', b.barrier, (signal) => drainToBarrier(s.source, s.target, streams, b.barrier, signal));
  await step('sequences', b.sequences, () => syncSequences(s.source, s.target, BigInt(settings.sequenceMargin), undefined, { neverBackwards: true }));
  if (unlogged.length) {
    const copied = await step('unlogged', b.unlogged, () => copyUnloggedTables(s.source, s.target, unlogged));
    const text = copied.map((x) => `${displayName(x.table)} (${x.rows} rows)`).join(', ');
    log.info(`unlogged tables copied in the window: ${text}`);
    await journal.event('cutover', 'info', `unlogged tables copied in the window: ${text}`);
  }
  if (settings.finalCheck === 'quick') {
    const v = await step('final check', b.finalCheck, (signal) => runVerify(ctx, { mode: 'quick', exact: true, tables: settings.finalCheckTables.length ? settings.finalCheckTables : undefined, skipSchema: true, quiet: true, signal }));
    state.finalCheck = `${v.verdict}: ${v.tables.length} table(s), first, last and sampled chunks`;
    if (v.verdict !== 'equal') throw failure('cutover.final-check', `final check found differences in ${[...v.differences, ...v.unsettled].join(', ') || 'sequences'}`, 'run pgshift verify --exact to see the rows');
  }
  // The decision: only while the fence provably held from before the barrier until now.
  await state.fence!.requireHeld();
  record.stage = 'decided';
  await saveRecord(journal, record);
}

/**
 * Each step before the decision runs under its budget and the interrupt signal; either one
 * cancels the statements the step has running on the servers.
 */
export function budgetedStep(ctx: PhaseContext, s: Sessions, steps: StepTiming[], phase: 'cutover' | 'rollback' = 'cutover'): WindowStep {
  return async <T>(name: string, budgetMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const budget = AbortSignal.timeout(budgetMs);
    const signal = AbortSignal.any([ctx.signal, budget]);
    const stop = cancelOnAbort(signal, [
      { ep: ctx.source, clients: [s.source] },
      { ep: ctx.target, clients: [s.target] },
    ]);
    const t = Date.now();
    try {
      return await work(signal);
    } catch (err) {
      if (budget.aborted) throw failure(`${phase}.budget`, `step ${name} exceeded its budget of ${budgetMs} ms`, undefined, err);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw err;
    } finally {
      stop();
      steps.push({ step: name, ms: Date.now() - t, budgetMs });
    }
  };
}

function recoveryResult(ctx: PhaseContext, r: Recovery | undefined, target: ReturnType<typeof parseServerUrl>): CutoverResult {
  const done = r?.completion;
  return {
    dryRun: false,
    windowMs: null,
    steps: [],
    sequences: done?.sequences ?? [],
    fence: done ? { strategy: ctx.plan.cutover.fence, roles: done.seal.roles, terminated: done.seal.terminated } : null,
    endpoint: endpointText(r?.outcome === 'completed' ? target : parseServerUrl(ctx.plan.source.url)),
    plannedSteps: [],
    finalCheck: 'not run',
    repointed: done?.repointed ?? [],
    reverse: done?.reverse ?? null,
    recovered: r ? { outcome: r.outcome, stage: r.stage } : undefined,
  };
}

function describeSteps(ctx: PhaseContext, streams: number, tables: number, hardFence: string, unlogged = 0): string[] {
  const settings = ctx.plan.cutover;
  const b = budgets(ctx);
  const target = parseServerUrl(ctx.plan.target.url);
  return [
    'prepare: ANALYZE on the target' + (settings.prebumpSequences ? ', sequences pre-bumped' : '') + (settings.rollback ? ', reverse publication on the target' : ''),
    `fence writes: ${settings.fence === 'pgbouncer' ? `PgBouncer PAUSE ${settings.pgbouncer!.database}, then ` : ''}EXCLUSIVE locks on the ${tables} migrated table(s), held by one session the server ends if pgshift dies (budget ${b.fence / 1000} s)`,
    `barrier: a heartbeat written after the fence applied on the target for ${streams} group(s) (budget ${settings.timeoutSeconds} s)`,
    `sequences from the source${settings.sequenceMargin ? ` + ${settings.sequenceMargin}` : ''} (budget ${settings.sequenceSeconds} s)`,
    ...(unlogged ? [`unlogged tables: ${unlogged} copied from the source (unlogged.mode: copy-at-cutover; budget ${settings.unloggedSeconds} s)`] : []),
    settings.finalCheck === 'quick' ? `final check: verify --mode quick, exact (budget ${settings.finalCheckSeconds} s)` : 'final check: none',
    `switch: seal the source (${hardFence}${hardFence === 'roles' ? ` ${settings.roles.join(', ')}` : ''} read-only, their sessions ended), carry the large objects changed since the full load, stop forward CDC${ctx.plan.cdc.engine === 'dms' ? ' (DMS tasks asked to stop; they finish stopping after the window)' : ''}${settings.rollback ? ', start reverse replication target → source' : ''}` +
      (settings.pgbouncer?.configFile ? `, repoint ${settings.pgbouncer.database} in ${settings.pgbouncer.configFile}, RELOAD, RESUME` : settings.fence === 'pgbouncer' ? ', RESUME' : '') +
      (Object.keys(settings.repoint).length ? `, repoint ${Object.keys(settings.repoint).join(', ')}` : '') +
      `; the application writes to ${endpointText(target)}`,
  ];
}

/** DMS: every task running and no status threshold crossed (CloudWatch, instance, slots, LOB truncations). */
async function gateDms(ctx: PhaseContext, s: Sessions, journal: Journal): Promise<void> {
  const status = await dmsStatusOn(ctx, dmsClients(ctx.plan.cdc.dms.region), new Date(), journal, s, 2_000);
  const bad = status.tasks.find((t) => t.status !== 'running' || t.health === 'failing');
  if (bad) throw gateRefused('cutover.dms-task', `DMS task ${bad.identifier} is ${bad.status}${bad.problems.length ? `: ${bad.problems.join('; ')}` : ''}`, 'pgshift cdc status shows why; pgshift cdc resume restarts a stopped task');
  const problem = statusProblems(status)[0];
  if (problem) throw gateRefused('cutover.dms-status', `${problem.where}: ${problem.problem}`, 'resolve it (pgshift cdc status), then run cutover again');
}

/** Preconditions, checked before anything changes (exit 3 when one fails). */
async function gate(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[]): Promise<void> {
  await requireWindowPossible(ctx, s);
  await gateStreams(ctx, s, journal, streams);
  // DDL made on the source while CDC ran: every change carried to the target (src/pg/ddl.ts).
  await refuseUncarriedDdl(ctx.plan, s, streams);
  await gateRecentVerify(ctx, journal);
  await gateTargetSchema(ctx, s);
  await gateLag(ctx, s, streams);
}

/** Every group streaming, and its stream applying: DMS tasks healthy, native apply workers running without errors. */
async function gateStreams(ctx: PhaseContext, s: Sessions, journal: Journal, streams: StreamRecord[]): Promise<void> {
  if (streams.length === 0) throw gateRefused('cutover.no-streams', 'no group is streaming', 'run pgshift full-load and pgshift cdc start first');
  for (const st of streams) {
    if (st.state !== 'streaming') {
      throw gateRefused('cutover.not-streaming', `group ${st.group} is ${st.state}, not streaming`, NEXT_STEP[st.state] ?? 'finish pgshift full-load, then pgshift cdc start');
    }
  }
  if (ctx.plan.cdc.engine === 'dms') await gateDms(ctx, s, journal);
  for (const st of ctx.plan.cdc.engine === 'native' ? streams : []) {
    const sub = await subscriptionState(s.target, st.subscription);
    if (!sub.workerRunning) throw gateRefused('cutover.no-worker', `subscription ${st.subscription} has no running apply worker`, 'check pgshift cdc status and the target server log');
    const errors = majorOf(s.targetVersion) >= 15 ? await subscriptionErrorCount(s.target, st.subscription) : null;
    if (errors) {
      throw gateRefused('cutover.apply-errors', `subscription ${st.subscription} has recorded ${errors} apply error(s)`, 'find the cause in the target log; once resolved, run pgshift cdc acknowledge');
    }
  }
}

/** A verify that passed, recently enough (cutover.verifyMaxAgeMinutes; 0 leaves it out). */
async function gateRecentVerify(ctx: PhaseContext, journal: Journal): Promise<void> {
  const settings = ctx.plan.cutover;
  if (settings.verifyMaxAgeMinutes <= 0) return;
  const v = await journal.phaseState('verify');
  const age = v?.finishedAt ? (Date.now() - new Date(v.finishedAt).getTime()) / 60000 : Infinity;
  if (!v || v.state !== 'done' || age > settings.verifyMaxAgeMinutes) {
    throw gateRefused(
      'cutover.verify',
      !v ? 'no verify has run for this migration' : v.state !== 'done' ? `the last verify did not pass (${v.state})` : `the last passing verify is ${Math.round(age)} minutes old (cutover.verifyMaxAgeMinutes ${settings.verifyMaxAgeMinutes})`,
      'run pgshift verify until it passes, then cut over',
    );
  }
}

/** The target's schema as the source's: valid indexes, populated materialized views, no drift. */
async function gateTargetSchema(ctx: PhaseContext, s: Sessions): Promise<void> {
  const [invalid] = await invalidIndexes(s.target);
  if (invalid) throw gateRefused('cutover.invalid-index', `index ${invalid} is invalid on the target`, `on the target, run REINDEX INDEX ${invalid}`);
  const drift = await diffSchemas(s.source, s.target, schemaDiffOptions(ctx.plan));
  const unpopulated = drift.filter((d) => d.problem === 'not populated on target');
  if (unpopulated.length) {
    const names = unpopulated.map((d) => d.object);
    throw gateRefused(
      'cutover.matview',
      `materialized view(s) ${names.join(', ')} populated on the source are not populated on the target (their refresh after the full load failed: the full-load report and pgshift status name the error)`,
      `fix the cause, then REFRESH MATERIALIZED VIEW ${names[0]} on the target${names.length > 1 ? ' (and each of the others)' : ''}`,
    );
  }
  if (drift.length) {
    const d = drift[0];
    const privileges = ['owner', 'acl', 'default-acl', 'policy'].includes(d.kind);
    const cause = d.kind === 'extension' ? (d.detail ?? 'an extension that differs') : privileges ? 'privileges that differ from the source' : 'DDL that did not replicate, or an incomplete post-data';
    throw gateRefused(
      d.kind === 'sequence' ? 'cutover.sequences' : d.kind === 'extension' ? 'cutover.extension' : privileges ? 'cutover.privileges' : 'cutover.schema',
      `${d.kind} ${d.object} is ${d.problem}${drift.length > 1 ? ` (and ${drift.length - 1} more schema difference(s))` : ''}: ${cause}`,
      `${d.fix ?? 'apply the same DDL on the target'} (pgshift verify lists every difference)`,
    );
  }
}

/** Lag under the threshold for several consecutive polls, not one lucky sample. */
async function gateLag(ctx: PhaseContext, s: Sessions, streams: StreamRecord[]): Promise<void> {
  const settings = ctx.plan.cutover;
  for (let poll = 0; poll < GATE_POLLS; poll++) {
    for (const st of streams) {
      const slot = await slotState(s.source, st.slot, s.sourceVersion);
      if (slot.lagBytes === null || slot.lagBytes > settings.maxLagBytes) {
        throw gateRefused(
          'cutover.lag',
          `group ${st.group}: lag ${slot.lagBytes === null ? 'unknown' : formatBytes(slot.lagBytes)} is above cutover.maxLagBytes ${formatBytes(settings.maxLagBytes)}`,
          'wait for the stream to catch up (pgshift cdc status) and run cutover again',
        );
      }
    }
    if (poll < GATE_POLLS - 1) await sleep(300, ctx.signal);
  }
}

/**
 * What the window and the switch need, checked before either starts (exit 3): a seal the role
 * may apply, room in the server's lock table for the window fence, a pooler config file pgshift
 * can rewrite, and (rollback) a source that accepts the reverse subscription.
 */
async function requireWindowPossible(ctx: PhaseContext, s: Sessions): Promise<void> {
  const settings = ctx.plan.cutover;
  const hardFence = settings.fence === 'pgbouncer' ? settings.pgbouncer!.hardFence : settings.fence;
  await checkFenceable(s.source, hardFence, settings.roles);
  const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
  const tables = groups.reduce((n, g) => n + g.tables.length, 0);
  const capacity = await lockCapacity(s.source);
  if (tables > capacity / 2) {
    throw gateRefused('cutover.lock-capacity', `source ${ctx.source.label}: the window fence locks ${tables} tables, more than half of the server's lock table (${capacity} entries)`, 'raise max_locks_per_transaction on the source (restart), or cut over the groups of a smaller plan');
  }
  // The switch rewrites the pooler's entry after the decision, when a refusal would come too late.
  if (settings.pgbouncer?.configFile) requirePoolerEntry(settings.pgbouncer.configFile, settings.pgbouncer.database);
  if (settings.rollback) {
    const me = await currentRole(s.source);
    if (!me.canSubscribe) throw gateRefused('cutover.reverse-privilege', `cutover.rollback: the source role ${me.name} cannot create the reverse subscription`, 'connect pgshift to the source as a superuser (RDS: rds_superuser), or set cutover.rollback: false');
  }
}

/** Heavy work before the freeze, so the window holds only what must be in it. */
async function prepare(ctx: PhaseContext, s: Sessions, streams: StreamRecord[]): Promise<void> {
  const settings = ctx.plan.cutover;
  await analyzeDatabase(s.target);
  if (settings.prebumpSequences) {
    // Margin = values consumed per second on the source × the time until the switch, doubled.
    const seqs = await listSequences(s.source);
    const before = await Promise.all(seqs.map((q) => readSequence(s.source, q)));
    await sleep(1000, ctx.signal);
    const after = await Promise.all(seqs.map((q) => readSequence(s.source, q)));
    const budget = BigInt(Math.ceil(settings.timeoutSeconds + settings.finalCheckSeconds + 60));
    const plan = seqs.map((q, i) => {
      const rate = consumed(q, before[i], after[i]);
      return { sequence: q, position: after[i], margin: (rate > 0n ? rate : 1n) * budget * 2n + BigInt(settings.sequenceMargin) };
    });
    await prebumpSequences(s.target, plan);
    ctx.log.info(`sequences pre-bumped on the target (${seqs.length})`);
  }
  if (settings.rollback) await prepareReverse(ctx, s, streams);
}

