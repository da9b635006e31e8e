import { endpointText, repointAws, type RepointResult } from '../aws/repoint.js';
import { formatBytes } from '../config/size.js';
import { requireCutoverSettings } from '../config/phase-settings.js';
import { failure, gateRefused, isPgshiftError } from '../core/errors.js';
import { qualify, quoteIdent, quoteLiteral } from '../core/ident.js';
import { heartbeatTable, publicationName, slotName, subscriptionName } from '../core/names.js';
import { Journal, S, type StreamRecord } from '../journal/journal.js';
import { listSequences } from '../pg/catalog.js';
import { applyFence, checkFenceable, liftFence, type FenceState } from '../pg/fence.js';
import { waitForMarker, writeBeat } from '../pg/heartbeat.js';
import { PgBouncer, repointConfig, restoreConfigLine } from '../pg/pgbouncer.js';
import { dropPublication, setSubscriptionEnabled, slotState, subscriptionState } from '../pg/replication.js';
import { diffSchemas } from '../pg/schema-diff.js';
import { readSequence, syncSequences, type SequenceSync } from '../pg/sequences.js';
import { dropSlot } from '../pg/snapshot.js';
import { parseServerUrl, toConninfo } from '../config/url.js';
import { majorOf } from '../pg/connect.js';
import { openSessions, resolveGroups, type PhaseContext, type Sessions } from './context.js';
import { runVerify } from './verify.js';
import { statusProblems } from './cdc.js';
import { dmsStatusOn, dmsTasksOf, requestStop, resumeAfterStop, settleStopped, type DmsTaskState } from './cdc-dms.js';
import { dmsClients } from '../aws/dms.js';
import { refuseUncarriedDdl } from '../pg/ddl.js';

/**
 * Cut-over, as a short sequence of guarded steps (pg_easy_replicate's shape, stricter):
 *
 *   gate            every group streaming, lag under the threshold on consecutive polls, a recent
 *                   verify that passed, no apply errors, valid indexes, no schema drift, every
 *                   sequence present — or refuse (exit 3) with nothing changed
 *   prepare         before the freeze: ANALYZE, optional sequence pre-bump, reverse publication
 *   fence           pgbouncer PAUSE (clients queue) and/or read-only roles or database, sessions ended
 *   barrier         a heartbeat written after the fence is applied on the target
 *   sequences       every sequence set from the source (+ margin), never past its type's maximum
 *   final check     verify --mode quick, exact because writes are stopped
 *   switch          forward CDC stopped; reverse slot and subscription (rollback); repoint; RESUME
 *
 * The write-unavailable window runs from the fence to the switch. A failure or an exceeded budget
 * before the switch undoes the fence (source writable again, pooler resumed) and is journaled;
 * the command can simply be run again. After the switch, `pgshift rollback` moves back.
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
}

const GATE_POLLS = 3;

export function reverseNames(migration: string) {
  return { publication: publicationName(migration, 'reverse'), slot: slotName(migration, 'reverse'), subscription: subscriptionName(migration, 'reverse') };
}

export async function runCutover(ctx: PhaseContext, options: { dryRun?: boolean } = {}): Promise<CutoverResult> {
  const { plan, log } = ctx;
  requireCutoverSettings(plan, 'cutover');
  const c = plan.cutover;
  const s = await openSessions(ctx);
  const steps: StepTiming[] = [];
  const timed = async <T>(step: string, fn: () => Promise<T>, budgetMs?: number): Promise<T> => {
    const t = Date.now();
    const r = budgetMs ? await withBudget(step, fn(), budgetMs) : await fn();
    steps.push({ step, ms: Date.now() - t, budgetMs });
    return r;
  };
  let journal: Journal | undefined;
  let bouncer: PgBouncer | undefined;
  try {
    journal = await Journal.find(s.target, plan.name);
    if (!journal) throw gateRefused('cutover.no-journal', `target ${ctx.target.label} has no pgshift journal for ${plan.name}`, 'run full-load and cdc start first');
    const streams = await journal.streams();
    await timed('gate', () => gate(ctx, s, journal!, streams));
    const hardFence = c.fence === 'pgbouncer' ? c.pgbouncer!.hardFence : c.fence;
    await checkFenceable(s.source, hardFence, c.roles);
    if (c.fence === 'pgbouncer') bouncer = await PgBouncer.connect(c.pgbouncer!.adminUrl);
    const target = parseServerUrl(plan.target.url);
    const plannedSteps = [
      'prepare: ANALYZE on the target' + (c.prebumpSequences ? ', sequences pre-bumped' : '') + (c.rollback ? ', reverse publication on the target' : ''),
      `fence writes: ${c.fence === 'pgbouncer' ? `PgBouncer PAUSE ${c.pgbouncer!.database}, then ` : ''}${hardFence}${hardFence === 'roles' ? ` (${c.roles.join(', ')})` : ''} read-only, their sessions ended (budget 5 s)`,
      `barrier: a heartbeat written after the fence applied on the target for ${streams.length} group(s) (budget ${c.timeoutSeconds} s)`,
      `sequences from the source${c.sequenceMargin ? ` + ${c.sequenceMargin}` : ''}`,
      c.finalCheck === 'quick' ? `final check: verify --mode quick, exact (budget ${c.finalCheckSeconds} s)` : 'final check: none',
      `switch: stop forward CDC${plan.cdc.engine === 'dms' ? ' (DMS tasks asked to stop; they finish stopping after the window)' : ''}${c.rollback ? ', start reverse replication target → source' : ''}` +
        (c.pgbouncer?.configFile ? `, repoint ${c.pgbouncer.database} in ${c.pgbouncer.configFile}, RELOAD, RESUME` : c.fence === 'pgbouncer' ? ', RESUME' : '') +
        (Object.keys(c.repoint).length ? `, repoint ${Object.keys(c.repoint).join(', ')}` : '') +
        `; the application writes to ${endpointText(target)}`,
    ];
    if (options.dryRun) {
      log.info(`cutover dry run: the gate passed; would run: ${plannedSteps.join(' → ')}`);
      return { dryRun: true, windowMs: null, steps, sequences: [], fence: null, endpoint: endpointText(target), plannedSteps, finalCheck: 'not run', repointed: [], reverse: null };
    }

    await journal.startPhase('cutover', { steps: plannedSteps });
    await timed('prepare', () => prepare(ctx, s, streams));
    let fence: FenceState | undefined;
    let paused = false;
    let switched = false;
    let reverse: CutoverResult['reverse'] = null;
    const onDms = plan.cdc.engine === 'dms';
    // Read before the window, so that the switch only sends the stop requests.
    const dmsTasks = onDms ? await dmsTasksOf(journal) : [];
    let dmsStopping: DmsTaskState[] = [];
    const fenceStart = Date.now();
    try {
      fence = await timed('fence', async () => {
        if (bouncer) {
          await bouncer.pause(c.pgbouncer!.database);
          paused = true;
        }
        return applyFence(s.source, hardFence, c.roles);
      }, 5_000 + (bouncer ? 30_000 : 0));
      await journal.event('cutover', 'info', `writes fenced (${c.fence}), ${fence.terminated} session(s) ended`, { fence, paused });
      log.info(`fence: writes stopped on the source (${c.fence}; ${fence.terminated} session(s) ended)`);

      await timed('barrier', () => barrier(ctx, s, streams, c.timeoutSeconds * 1000), c.timeoutSeconds * 1000);
      const sequences = await timed('sequences', () => syncSequences(s.source, s.target, BigInt(c.sequenceMargin), undefined, { neverBackwards: true }));
      let finalCheck = 'none';
      if (c.finalCheck === 'quick') {
        const v = await timed('final check', () => runVerify(ctx, { mode: 'quick', exact: true, tables: c.finalCheckTables.length ? c.finalCheckTables : undefined, skipSchema: true, quiet: true }), c.finalCheckSeconds * 1000);
        finalCheck = `${v.verdict}: ${v.tables.length} table(s), first, last and sampled chunks`;
        if (v.verdict !== 'equal') throw failure('cutover.final-check', `final check found differences in ${[...v.differences, ...v.unsettled].join(', ') || 'sequences'}`, 'run pgshift verify --exact to see the rows');
      }
      const repointed: RepointResult[] = [];
      let configChange: { previous: string; next: string } | undefined;
      await timed('switch', async () => {
        if (onDms) {
          const stop = await requestStop(ctx, dmsTasks);
          dmsStopping = stop.asked;
          if (stop.error) throw stop.error;
        }
        else for (const st of streams) await setSubscriptionEnabled(s.target, st.subscription, false);
        if (c.rollback) reverse = await startReverse(ctx, s);
        if (c.pgbouncer?.configFile) {
          configChange = repointConfig(c.pgbouncer.configFile, c.pgbouncer.database, target);
          await bouncer!.reload();
        }
        repointed.push(...(await repointAws(c.repoint, target)));
        for (const st of streams) await journal!.setStreamState(st.group, 'cut-over');
        switched = true;
        if (bouncer) {
          await bouncer.resume(c.pgbouncer!.database);
          paused = false;
        }
      });
      const windowMs = Date.now() - fenceStart;
      // After the window: the DMS tasks asked to stop inside it finish stopping.
      if (dmsStopping.length) await settleStopped(ctx, dmsStopping);
      const result: CutoverResult = {
        dryRun: false,
        windowMs,
        steps,
        sequences,
        fence: { strategy: c.fence, roles: fence.roles, terminated: fence.terminated },
        endpoint: endpointText(target),
        plannedSteps,
        finalCheck,
        repointed,
        reverse,
      };
      await journal.finishPhase('cutover', 'done', { windowMs, steps, sequences: sequences.length, fence, finalCheck, reverse, pgbouncer: configChange, repointed });
      log.info(`cut-over done: write-unavailable window ${windowMs} ms; the application now writes to ${endpointText(target)}`);
      return result;
    } catch (err) {
      if (!switched) {
        // Undo: forward CDC back on, reverse objects gone, fence lifted, pooler resumed.
        if (onDms) await resumeAfterStop(ctx, dmsStopping).catch((e) => log.error(`could not resume the DMS tasks: ${(e as Error).message}; run pgshift cdc resume`));
        else for (const st of streams) await setSubscriptionEnabled(s.target, st.subscription, true).catch(() => {});
        if (reverse) await dropReverse(ctx, s).catch(() => {});
        if (fence) await liftFence(s.source, fence).catch((e) => log.error(`could not lift the fence: ${(e as Error).message}`));
        if (paused && bouncer) await bouncer.resume(c.pgbouncer!.database).catch((e) => log.error(`could not RESUME PgBouncer: ${(e as Error).message}`));
        await journal.finishPhase('cutover', 'undone', { reason: (err as Error).message, steps });
        log.warn('cut-over undone: the fence is lifted and the source is writable again');
        const base = (err as Error).message;
        throw failure('cutover.undone', `cut-over undone: ${base}`, 'the source is writable again; fix the cause and run pgshift cutover again', err);
      }
      throw err;
    }
  } catch (err) {
    if (isPgshiftError(err) && err.exitCode === 3) await journal?.event('cutover', 'warn', `gate refused: ${err.message}`).catch(() => {});
    throw err;
  } finally {
    await bouncer?.close();
    await s.close();
  }
}

function withBudget<T>(step: string, work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const over = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failure('cutover.budget', `step ${step} exceeded its budget of ${ms} ms`)), ms);
  });
  return Promise.race([work, over]).finally(() => clearTimeout(timer));
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
  const c = ctx.plan.cutover;
  if (streams.length === 0) throw gateRefused('cutover.no-streams', 'no group is streaming', 'run pgshift full-load and pgshift cdc start first');
  for (const st of streams) {
    if (st.state !== 'streaming') {
      throw gateRefused('cutover.not-streaming', `group ${st.group} is ${st.state}, not streaming`, st.state === 'cut-over' ? 'this migration is already cut over (pgshift rollback moves back)' : 'run pgshift cdc start (or resume)');
    }
  }
  if (ctx.plan.cdc.engine === 'dms') await gateDms(ctx, s, journal);
  for (const st of ctx.plan.cdc.engine === 'native' ? streams : []) {
    const sub = await subscriptionState(s.target, st.subscription);
    if (!sub.workerRunning) throw gateRefused('cutover.no-worker', `subscription ${st.subscription} has no running apply worker`, 'check pgshift cdc status and the target server log');
    if (majorOf(s.targetVersion) >= 15) {
      const e = await s.target.query<{ n: string }>('SELECT (apply_error_count + sync_error_count)::text AS n FROM pg_stat_subscription_stats WHERE subname = $1', [st.subscription]);
      if (Number(e.rows[0]?.n ?? 0) > 0) {
        throw gateRefused('cutover.apply-errors', `subscription ${st.subscription} has recorded ${e.rows[0].n} apply error(s)`, `find the cause in the target log; once resolved, acknowledge with SELECT pg_stat_reset_subscription_stats(oid) FROM pg_subscription WHERE subname = '${st.subscription}'`);
      }
    }
  }

  // DDL made on the source while CDC ran: every change carried to the target (src/pg/ddl.ts).
  await refuseUncarriedDdl(ctx.plan, s, streams);

  if (c.verifyMaxAgeMinutes > 0) {
    const v = await journal.phaseState('verify');
    const age = v?.finishedAt ? (Date.now() - new Date(v.finishedAt).getTime()) / 60000 : Infinity;
    if (!v || v.state !== 'done' || age > c.verifyMaxAgeMinutes) {
      throw gateRefused(
        'cutover.verify',
        !v ? 'no verify has run for this migration' : v.state !== 'done' ? `the last verify did not pass (${v.state})` : `the last passing verify is ${Math.round(age)} minutes old (cutover.verifyMaxAgeMinutes ${c.verifyMaxAgeMinutes})`,
        'run pgshift verify until it passes, then cut over',
      );
    }
  }
  const invalid = await s.target.query<{ i: string }>(
    `SELECT i.indexrelid::regclass::text AS i FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
  );
  if (invalid.rowCount) throw gateRefused('cutover.invalid-index', `index ${invalid.rows[0].i} is invalid on the target`, `REINDEX INDEX ${invalid.rows[0].i} on the target`);
  const drift = await diffSchemas(s.source, s.target);
  if (drift.length) {
    const d = drift[0];
    throw gateRefused(
      d.kind === 'sequence' ? 'cutover.sequences' : 'cutover.schema',
      `${d.kind} ${d.object} is ${d.problem}${drift.length > 1 ? ` (and ${drift.length - 1} more schema difference(s))` : ''}: DDL that did not replicate, or an incomplete post-data`,
      'apply the same DDL on the target (pgshift verify lists every difference)',
    );
  }
  // Lag under the threshold for several consecutive polls, not one lucky sample.
  for (let poll = 0; poll < GATE_POLLS; poll++) {
    for (const st of streams) {
      const slot = await slotState(s.source, st.slot, s.sourceVersion);
      if (slot.lagBytes === null || slot.lagBytes > c.maxLagBytes) {
        throw gateRefused(
          'cutover.lag',
          `group ${st.group}: lag ${slot.lagBytes === null ? 'unknown' : formatBytes(slot.lagBytes)} is above cutover.maxLagBytes ${formatBytes(c.maxLagBytes)}`,
          'wait for the stream to catch up (pgshift cdc status) and run cutover again',
        );
      }
    }
    if (poll < GATE_POLLS - 1) await new Promise((r) => setTimeout(r, 300));
  }
}

/** Heavy work before the freeze, so the window holds only what must be in it. */
async function prepare(ctx: PhaseContext, s: Sessions, streams: StreamRecord[]): Promise<void> {
  const c = ctx.plan.cutover;
  await s.target.query('ANALYZE');
  if (c.prebumpSequences) {
    // Margin = values consumed per second on the source × the time until the switch, doubled.
    const seqs = await listSequences(s.source);
    const before = await Promise.all(seqs.map((q) => readSequence(s.source, q)));
    await new Promise((r) => setTimeout(r, 1000));
    const after = await Promise.all(seqs.map((q) => readSequence(s.source, q)));
    const budget = BigInt(Math.ceil(c.timeoutSeconds + c.finalCheckSeconds + 60));
    for (const [i, q] of seqs.entries()) {
      const rate = after[i].lastValue - before[i].lastValue;
      const margin = (rate > 0n ? rate : 1n) * budget * 2n;
      const value = after[i].lastValue + margin + BigInt(c.sequenceMargin);
      if (value <= BigInt(q.maxValue)) await s.target.query('SELECT pg_catalog.setval($1::regclass, GREATEST($2::bigint, (SELECT last_value FROM ' + qualify(q) + ')), true)', [qualify(q), value.toString()]);
    }
    ctx.log.info(`sequences pre-bumped on the target (${seqs.length})`);
  }
  if (c.rollback) {
    const names = reverseNames(ctx.plan.name);
    const exists = await s.target.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication]);
    if (!exists.rowCount) {
      const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
      const tables = [...groups.flatMap((g) => g.tables.map(qualify)), ...streams.map((st) => `${S}.${quoteIdent(heartbeatTable(st.group))}`)];
      await s.target.query(`CREATE PUBLICATION ${quoteIdent(names.publication)} FOR TABLE ${tables.join(', ')}`);
    }
  }
}

async function barrier(ctx: PhaseContext, s: Sessions, streams: StreamRecord[], timeoutMs: number): Promise<void> {
  const beats = await Promise.all(streams.map(async (st) => ({ st, beat: await writeBeat(s.source, heartbeatTable(st.group), st.group) })));
  for (const { st, beat } of beats) {
    const waited = await waitForMarker(s.target, heartbeatTable(st.group), st.group, beat, timeoutMs, 5);
    if (waited === null) {
      throw failure('cutover.barrier', `group ${st.group}: the barrier marker did not reach the target within ${timeoutMs / 1000} s`, 'check pgshift cdc status; raise cutover.timeoutSeconds if the stream is healthy but slow');
    }
    ctx.log.debug(`barrier: group ${st.group} drained in ${waited} ms`);
  }
}

/**
 * Reverse replication, created while nothing writes to the target yet: the slot's consistent
 * point precedes the application's first write there, so a rollback loses nothing.
 */
async function startReverse(ctx: PhaseContext, s: Sessions): Promise<NonNullable<CutoverResult['reverse']>> {
  const names = reverseNames(ctx.plan.name);
  const slot = await s.target.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
  if (!slot.rowCount) await s.target.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [names.slot]);
  const conninfo = toConninfo(parseServerUrl(ctx.plan.target.url), { withPassword: true });
  const sub = await s.source.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription]);
  if (!sub.rowCount) {
    await s.source.query(
      `CREATE SUBSCRIPTION ${quoteIdent(names.subscription)} CONNECTION ${quoteLiteral(conninfo)} PUBLICATION ${quoteIdent(names.publication)}
         WITH (create_slot = false, slot_name = ${quoteLiteral(names.slot)}, copy_data = false, enabled = true)`,
    );
  }
  return names;
}

async function dropReverse(ctx: PhaseContext, s: Sessions): Promise<void> {
  const names = reverseNames(ctx.plan.name);
  const sub = await s.source.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription]);
  if (sub.rowCount) {
    await s.source.query(`ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} DISABLE`);
    await s.source.query(`ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} SET (slot_name = NONE)`);
    await s.source.query(`DROP SUBSCRIPTION ${quoteIdent(names.subscription)}`);
  }
  await dropSlot(s.target, names.slot);
  await dropPublication(s.target, names.publication);
}

export interface RollbackResult {
  windowMs: number;
  steps: StepTiming[];
  sequences: SequenceSync[];
  endpoint: string;
}

/**
 * After a cut-over with rollback on: fence the target, drain the reverse stream to a barrier,
 * carry the sequences back, stop the reverse stream, lift the source's fence and repoint to it.
 */
export async function runRollback(ctx: PhaseContext): Promise<RollbackResult> {
  const { plan, log } = ctx;
  requireCutoverSettings(plan, 'rollback');
  const c = plan.cutover;
  const s = await openSessions(ctx);
  const steps: StepTiming[] = [];
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const r = await fn();
    steps.push({ step, ms: Date.now() - t });
    return r;
  };
  let bouncer: PgBouncer | undefined;
  try {
    const journal = await Journal.find(s.target, plan.name);
    const cut = journal ? await journal.phaseState('cutover') : undefined;
    const names = reverseNames(plan.name);
    if (!journal || cut?.state !== 'done') throw gateRefused('rollback.not-cut-over', 'there is no completed cut-over to roll back', 'pgshift rollback follows pgshift cutover');
    const rev = await subscriptionState(s.source, names.subscription);
    if (!rev.exists || !rev.workerRunning) throw gateRefused('rollback.no-reverse', `reverse subscription ${names.subscription} is not streaming on the source`, 'rollback needs cutover.rollback: true at the cut-over');
    const detail = cut.detail as { fence: FenceState; pgbouncer?: { previous: string } };
    const streams = await journal.streams();
    const hardFence = c.fence === 'pgbouncer' ? c.pgbouncer!.hardFence : c.fence;
    if (c.fence === 'pgbouncer') bouncer = await PgBouncer.connect(c.pgbouncer!.adminUrl);
    await journal.startPhase('rollback');
    const started = Date.now();
    if (bouncer) await timed('pause', () => bouncer!.pause(c.pgbouncer!.database));
    const targetFence = await timed('fence target', () => applyFence(s.target, hardFence, c.roles));
    await timed('barrier', async () => {
      for (const st of streams) {
        const hb = heartbeatTable(st.group);
        const beat = await writeBeat(s.target, hb, st.group);
        if ((await waitForMarker(s.source, hb, st.group, beat, c.timeoutSeconds * 1000, 5)) === null) {
          throw failure('rollback.barrier', `the reverse stream did not reach the source within ${c.timeoutSeconds} s`, 'check the source server log; the target stays fenced');
        }
      }
    });
    const sequences = await timed('sequences', () => syncSequences(s.target, s.source, BigInt(c.sequenceMargin), undefined, { neverBackwards: true }));
    await timed('switch', async () => {
      await s.source.query(`ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} DISABLE`);
      await liftFence(s.source, detail.fence);
      const source = parseServerUrl(plan.source.url);
      if (c.pgbouncer?.configFile && detail.pgbouncer) {
        restoreConfigLine(c.pgbouncer.configFile, c.pgbouncer.database, detail.pgbouncer.previous);
        await bouncer!.reload();
      }
      await repointAws(c.repoint, source);
      if (bouncer) await bouncer.resume(c.pgbouncer!.database);
    });
    const windowMs = Date.now() - started;
    await journal.finishPhase('rollback', 'done', { windowMs, steps, targetFence });
    for (const st of streams) await journal.setStreamState(st.group, 'rolled-back');
    log.info(`rolled back in ${windowMs} ms: the application writes to the source again; the target is fenced`);
    return { windowMs, steps, sequences, endpoint: endpointText(parseServerUrl(plan.source.url)) };
  } finally {
    await bouncer?.close();
    await s.close();
  }
}

