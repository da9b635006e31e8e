import { failure, gateRefused, isPgshiftError } from '../core/errors.js';
import { heartbeatTable } from '../core/names.js';
import { formatBytes } from '../config/size.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import { applyFence, checkFenceable, liftFence, type FenceState } from '../pg/fence.js';
import { waitForMarker, writeBeat } from '../pg/heartbeat.js';
import { setSubscriptionEnabled, slotState, subscriptionState } from '../pg/replication.js';
import { syncSequences, type SequenceSync } from '../pg/sequences.js';
import { openSessions, type PhaseContext, type Sessions } from './context.js';

/**
 * Cut-over, as a short sequence of guarded steps:
 *
 *   gate → fence writes on the source → barrier (a marker written after the fence is visible on
 *   the target) → sequences → switch (stop forward CDC) → the application may write to the target.
 *
 * The write-unavailable window runs from the fence to the switch. Any failure before the switch
 * lifts the fence (the source is writable again), records what happened, and can be re-run.
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
}

const GATE_POLLS = 3;

export async function runCutover(ctx: PhaseContext, options: { dryRun?: boolean } = {}): Promise<CutoverResult> {
  const { plan, log } = ctx;
  const s = await openSessions(ctx);
  const steps: StepTiming[] = [];
  const timed = async <T>(step: string, fn: () => Promise<T>, budgetMs?: number): Promise<T> => {
    const t = Date.now();
    const r = await fn();
    steps.push({ step, ms: Date.now() - t, budgetMs });
    return r;
  };
  let journal: Journal | undefined;
  try {
    journal = await Journal.find(s.target, plan.name);
    if (!journal) throw gateRefused('cutover.no-journal', `target ${ctx.target.label} has no pgshift journal for ${plan.name}`, 'run full-load and cdc start first');
    const streams = await journal.streams();
    await timed('gate', () => gate(ctx, s, streams));
    await checkFenceable(s.source, plan.cutover.fence, plan.cutover.roles);
    const plannedSteps = [
      `fence writes (${plan.cutover.fence}${plan.cutover.fence === 'roles' ? `: ${plan.cutover.roles.join(', ')}` : ''})`,
      `barrier: marker visible on the target for ${streams.length} group(s) (budget ${plan.cutover.timeoutSeconds} s)`,
      `sequences from the source${plan.cutover.sequenceMargin ? ` + ${plan.cutover.sequenceMargin}` : ''}`,
      'switch: stop forward CDC; the application writes to the target',
    ];
    if (options.dryRun) {
      log.info(`cutover dry run: gate passed; would run: ${plannedSteps.join(' → ')}`);
      return { dryRun: true, windowMs: null, steps, sequences: [], fence: null, endpoint: ctx.target.label, plannedSteps };
    }

    await journal.startPhase('cutover', { steps: plannedSteps });
    let fence: FenceState | undefined;
    let switched = false;
    const fenceStart = Date.now();
    try {
      fence = await timed('fence', () => applyFence(s.source, plan.cutover.fence, plan.cutover.roles), 5_000);
      await journal.event('cutover', 'info', `writes fenced (${fence.strategy}), ${fence.terminated} session(s) ended`, fence);
      log.info(`fence: writes stopped on the source (${fence.terminated} session(s) ended)`);

      await timed('barrier', () => barrier(ctx, s, streams, plan.cutover.timeoutSeconds * 1000), plan.cutover.timeoutSeconds * 1000);
      const sequences = await timed('sequences', () => syncSequences(s.source, s.target, BigInt(plan.cutover.sequenceMargin)));
      await timed('switch', async () => {
        for (const st of streams) {
          await setSubscriptionEnabled(s.target, st.subscription, false);
          await journal!.setStreamState(st.group, 'cut-over');
        }
      });
      switched = true;
      const windowMs = Date.now() - fenceStart;
      const result: CutoverResult = {
        dryRun: false,
        windowMs,
        steps,
        sequences,
        fence: { strategy: fence.strategy, roles: fence.roles, terminated: fence.terminated },
        endpoint: ctx.target.label,
        plannedSteps,
      };
      await journal.finishPhase('cutover', 'done', { windowMs, steps, sequences: sequences.length, fence: result.fence });
      log.info(`cut-over done: write-unavailable window ${windowMs} ms; the application now writes to ${ctx.target.label}`);
      return result;
    } catch (err) {
      if (fence && !switched) {
        await liftFence(s.source, fence).catch((e) => log.error(`could not lift the fence: ${(e as Error).message}`));
        await journal.finishPhase('cutover', 'undone', { reason: (err as Error).message, steps });
        log.warn('cut-over undone: the fence is lifted and the source is writable again');
        const base = isPgshiftError(err) ? err.message : (err as Error).message;
        throw failure('cutover.undone', `cut-over undone: ${base}`, 'the source is writable again; fix the cause and run pgshift cutover again', err);
      }
      throw err;
    }
  } catch (err) {
    if (isPgshiftError(err) && err.exitCode === 3) await journal?.event('cutover', 'warn', `gate refused: ${err.message}`).catch(() => {});
    throw err;
  } finally {
    await s.close();
  }
}

/** Preconditions, checked before anything changes (exit 3 when one fails). */
async function gate(ctx: PhaseContext, s: Sessions, streams: StreamRecord[]): Promise<void> {
  if (streams.length === 0) throw gateRefused('cutover.no-streams', 'no group is streaming', 'run pgshift full-load and pgshift cdc start first');
  for (const st of streams) {
    if (st.state !== 'streaming') {
      throw gateRefused('cutover.not-streaming', `group ${st.group} is ${st.state}, not streaming`, st.state === 'cut-over' ? 'this migration is already cut over' : 'run pgshift cdc start (or resume)');
    }
    const sub = await subscriptionState(s.target, st.subscription);
    if (!sub.workerRunning) throw gateRefused('cutover.no-worker', `subscription ${st.subscription} has no running apply worker`, 'check pgshift cdc status and the target server log');
  }
  // Lag under the threshold for several consecutive polls, not one lucky sample.
  const max = ctx.plan.cutover.maxLagBytes;
  for (let poll = 0; poll < GATE_POLLS; poll++) {
    for (const st of streams) {
      const slot = await slotState(s.source, st.slot, s.sourceVersion);
      if (slot.lagBytes === null || slot.lagBytes > max) {
        throw gateRefused(
          'cutover.lag',
          `group ${st.group}: lag ${slot.lagBytes === null ? 'unknown' : formatBytes(slot.lagBytes)} is above cutover.maxLagBytes ${formatBytes(max)}`,
          'wait for the stream to catch up (pgshift cdc status) and run cutover again',
        );
      }
    }
    if (poll < GATE_POLLS - 1) await new Promise((r) => setTimeout(r, 300));
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
