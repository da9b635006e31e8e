import type { ReplicationTask } from '@aws-sdk/client-database-migration-service';
import { parseServerUrl } from '../config/url.js';
import { gateRefused, inputError } from '../core/errors.js';
import { dmsInstanceProblems, dmsTaskHealth, tableMappings, taskIdentifier, taskSettings, type StreamTaskPlan } from '../core/dms.js';
import { ddlReport, ensureDdlCapture, type DdlEntry } from '../pg/ddl.js';
import { formatBytes } from '../config/size.js';
import { heartbeatTable, isResyncOf } from '../core/names.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import {
  createTask,
  deleteTask,
  describeTask,
  dmsClients,
  ensureEndpoint,
  deleteEndpoint,
  findEndpoint,
  findTasks,
  metrics,
  startTask,
  stopReason,
  stopTask,
  tableStatistics,
  tags,
  waitForTask,
  type DmsClients,
  type MetricSeries,
} from '../aws/dms.js';
import { measureLags, writeBeat } from '../pg/heartbeat.js';
import { dropDmsArtifacts, verifyStartLsn, type DmsPlugin } from '../pg/dms-source.js';
import { applyExceptionsAfter, latestApplyException, recentApplyExceptions } from '../pg/dms-target.js';
import { slotState } from '../pg/replication.js';
import { openSessions, resolveGroups, type PhaseContext, type Sessions } from './context.js';
import { runFullLoad } from './full-load.js';
import { DMS_TASKS_PHASE, dmsCarried, dmsTaskPlans, journaledDmsTasks } from './stream-source.js';
import { writeFailureBundle } from './failure-bundle.js';

/**
 * CDC with AWS DMS: per group one CDC-only task (two when the group mixes tables that may and may
 * not use batch apply; each reads its own slot), starting at the group's snapshot LSN after that
 * LSN has been checked against the slot — plus, when a crashed full load was resumed, one task per
 * resume stream `<group>_r<n>`, mapping the tables it carries, from its own slot and snapshot LSN
 * (bridge-dms.ts). The full load prepared the source (slots with the plugin,
 * pglogical node and sets: stream-source.ts); this phase owns the endpoints and tasks, found again
 * by their tags on every run.
 *
 * The journal keeps, per task, whether `start-replication` was sent: it is sent once, ever; every
 * later start of the same task is `resume-processing`.
 */
export interface DmsTaskState {
  group: string;
  /** The stream (slot) the task reads: the group's own, or its batch-apply companion. */
  stream: string;
  role: string;
  identifier: string;
  arn: string;
  startLsn: string;
  started: boolean;
}

export interface DmsTaskStatus extends DmsTaskState {
  status: string;
  stopReason?: string;
  lastFailure?: string;
  latencySourceSeconds: number | null;
  latencyTargetSeconds: number | null;
  /** Seconds for a heartbeat written on the source now to be applied on the target (null: not measured). */
  heartbeatLagSeconds: number | null;
  incomingChanges: number | null;
  tablesErrored: string[];
  health: 'ok' | 'warn' | 'paused' | 'failing';
  problems: string[];
}

export interface DmsStatus {
  engine: 'dms';
  healthy: boolean;
  tasks: DmsTaskStatus[];
  instance: { identifier: string; cpuPercent: number | null; freeableMemoryBytes: number | null; swapBytes: number | null; freeStorageBytes: number | null; problems: string[] };
  /** Rows of awsdms_apply_exceptions newer than the previous status (LOB truncations flagged). */
  applyExceptions: Array<{ task: string; table: string; at: string; error: string; truncation: boolean }>;
  /** Retained WAL per slot on the source. */
  slots: Array<{ slot: string; retainedBytes: number | null; active: boolean; problem?: string }>;
  /** CDCLatencySource + CDCLatencyTarget per minute, per task, for the chart. */
  latency: Array<{ identifier: string; points: Array<{ at: string; seconds: number }> }>;
  /** DDL recorded on the source (cdc.ddl: detect): the tasks do not apply it. */
  ddl: DdlEntry[];
  /** Each DDL not yet applied on the target by hand and acknowledged, with the fix. */
  ddlProblems: string[];
}

const EXCEPTIONS_PHASE = 'cdc:dms:exceptions';

type DmsPlan = PhaseContext['plan']['cdc']['dms'];

export function requireDmsConfig(ctx: PhaseContext): Required<Pick<DmsPlan, 'replicationInstanceArn' | 'replicationInstanceIdentifier'>> & DmsPlan {
  const d = ctx.plan.cdc.dms;
  if (!d.replicationInstanceArn || !d.replicationInstanceIdentifier) {
    throw inputError('dms.config', 'cdc.engine is dms but cdc.dms.replicationInstanceArn or cdc.dms.replicationInstanceIdentifier is missing', 'set both in the plan (the identifier is the instance name, used for its CloudWatch metrics)');
  }
  return d as Required<Pick<DmsPlan, 'replicationInstanceArn' | 'replicationInstanceIdentifier'>> & DmsPlan;
}

/**
 * A DMS endpoint for one side: the address from the plan's URL (or the endpoint overrides), or
 * credentials from Secrets Manager — then only the database name travels in the request.
 */
function endpointInput(ctx: PhaseContext, side: 'source' | 'target', identifier: string, tagList: ReturnType<typeof tags>, settings: Record<string, unknown>) {
  const a = parseServerUrl(ctx.plan[side].url);
  const e = side === 'source' ? ctx.plan.cdc.dms.sourceEndpoint : ctx.plan.cdc.dms.targetEndpoint;
  const secret = e.secretsManagerSecretId ? { SecretsManagerSecretId: e.secretsManagerSecretId, SecretsManagerAccessRoleArn: e.secretsManagerAccessRoleArn } : undefined;
  return {
    EndpointIdentifier: identifier,
    EndpointType: side,
    EngineName: 'postgres',
    SslMode: e.sslMode,
    ...(secret ? {} : { ServerName: e.serverName ?? a.host, Port: e.port ?? a.port, DatabaseName: a.database, Username: a.user, Password: a.password }),
    PostgreSQLSettings: { ...(secret ? { ...secret, DatabaseName: a.database } : {}), ...settings },
    Tags: tagList,
  };
}

/** Identifiers of the endpoints: one source endpoint per slot (SlotName is an endpoint setting), one target. */
const sourceEndpointId = (ctx: PhaseContext, stream: string) => taskIdentifier(ctx.plan.name, stream, 'source');
const targetEndpointId = (ctx: PhaseContext) => taskIdentifier(ctx.plan.name, 'target', '');

function sourceEndpointInput(ctx: PhaseContext, stream: StreamRecord, plugin: DmsPlugin) {
  const d = ctx.plan.cdc.dms;
  return endpointInput(ctx, 'source', sourceEndpointId(ctx, stream.group), tags(ctx.plan.name, stream.group, 'source-endpoint'), {
    PluginName: plugin === 'pglogical' ? 'pglogical' : 'test-decoding',
    SlotName: stream.slot,
    HeartbeatEnable: true,
    HeartbeatFrequency: d.heartbeatFrequencyMinutes,
    CaptureDdls: d.captureDdls,
    FailTasksOnLobTruncation: d.failOnLobTruncation,
  });
}

function targetEndpointInput(ctx: PhaseContext) {
  // As the native apply worker: no FK or user triggers fire for replicated rows.
  return endpointInput(ctx, 'target', targetEndpointId(ctx), tags(ctx.plan.name, '*', 'target-endpoint'), { AfterConnectScript: "SET session_replication_role = 'replica'" });
}

const pollOf = (d: DmsPlan, signal: AbortSignal) => ({ intervalMs: d.pollSeconds * 1000, timeoutMs: d.readyTimeoutMinutes * 60_000, signal });

/** The journal's DMS tasks (the cut-over reads them before its window). */
export const dmsTasksOf = (journal: Journal | undefined) => journaledDmsTasks<DmsTaskState>(journal);

/** Record the migration's tasks (all of them) in the journal. */
async function saveTasks(journal: Journal, tasks: DmsTaskState[]): Promise<void> {
  await journal.setPhaseDetail(DMS_TASKS_PHASE, 'running', { tasks });
}

/**
 * `cdc start` on DMS: per group, check the start LSN against each slot, make sure the endpoints and
 * tasks exist (found by tag, never duplicated), wait until each task is ready, send
 * `start-replication` with the position once, and wait until it runs.
 */
export async function startDmsCdc(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    const streams = journal ? await journal.streams() : [];
    const notLoaded = streams.find((r) => r.state === 'preparing' || r.state === 'loading');
    if (!journal || streams.length === 0 || notLoaded) {
      throw gateRefused('cdc.not-loaded', notLoaded ? `group ${notLoaded.group} is ${notLoaded.state}` : 'no group has been loaded', 'finish pgshift full-load for every group first');
    }
    await journal.startPhase('cdc');
    await ensureDdlCapture(ctx.plan, ctx.log, ctx.source.label, s.source, streams);
    const state = await dmsTasksOf(journal);
    const byName = new Map(streams.map((r) => [r.group, r]));
    const groups = (await resolveGroups(ctx, s.source, s.sourceVersion)).filter((g) => byName.has(g.name));
    const existing = await findTasks(clients.dms, d.replicationInstanceArn, ctx.plan.name);
    const target = d.targetEndpointArn ?? (await ensureEndpoint(clients.dms, targetEndpointInput(ctx))).arn;
    const run: DmsStart = { ctx, clients, s, journal, d, state, existing, targetEndpointArn: target };
    // A resumed full load moved tables to resume streams: each stream's task maps the tables it carries.
    const carried = await dmsCarried(journal);
    for (const group of groups) {
      const bridges = streams.filter((r) => isResyncOf(r.group, group.name)).map((r) => r.group);
      for (const tp of dmsTaskPlans(ctx.plan, group, carried, bridges)) {
        const stream = byName.get(tp.stream);
        if (!stream) throw gateRefused('cdc.not-loaded', `stream ${tp.stream} of group ${group.name} was not prepared by the full load`, `run pgshift full-load --restart --group ${group.name}`);
        await startTaskOnce(run, group.name, tp, stream);
      }
    }
    await journal.event('cdc', 'info', `DMS: ${state.length} task(s) started`);
  } finally {
    await s.close();
  }
  return dmsStatus(ctx, clients);
}

/** What `cdc start` on DMS works with while it starts the tasks. */
interface DmsStart {
  ctx: PhaseContext;
  clients: DmsClients;
  s: Sessions;
  journal: Journal;
  d: ReturnType<typeof requireDmsConfig>;
  /** The journal's tasks (all of the migration's), saved whenever one changes. */
  state: DmsTaskState[];
  /** The migration's tasks DMS has, found by their tags. */
  existing: Awaited<ReturnType<typeof findTasks>>;
  targetEndpointArn: string;
}

/** One stream's task: made sure of, then sent `start-replication` with its position once — never again. */
async function startTaskOnce(run: DmsStart, group: string, tp: StreamTaskPlan, stream: StreamRecord): Promise<void> {
  const { ctx, clients, journal, state } = run;
  const poll = pollOf(run.d, ctx.signal);
  const role = `task${tp.suffix ? `-${tp.suffix}` : ''}`;
  const identifier = taskIdentifier(ctx.plan.name, group, tp.suffix);
  const { record, task } = await ensureTask(run, group, tp, stream, role, identifier);
  if (record.started) {
    ctx.log.info(`group ${group}: DMS task ${identifier} already started (${task.Status}); pgshift cdc resume resumes it`);
    return;
  }
  await waitForTask(clients.dms, record.arn, ['ready'], poll);
  await startTask(clients.dms, record.arn, 'start-replication', record.startLsn);
  record.started = true;
  await saveTasks(journal, state);
  await waitForTask(clients.dms, record.arn, ['running'], poll);
  await journal.setStreamState(stream.group, 'streaming');
  ctx.log.info(`group ${group}: DMS task ${identifier} running from ${record.startLsn}`);
}

/**
 * The task and its journal record: created (from a checked start position) when DMS has none with
 * its tags; journaled when DMS has one the journal does not know.
 */
async function ensureTask(run: DmsStart, group: string, tp: StreamTaskPlan, stream: StreamRecord, role: string, identifier: string): Promise<{ record: DmsTaskState; task: ReplicationTask }> {
  const { ctx, clients, s, journal, d, state } = run;
  let record = state.find((t) => t.group === group && t.role === role);
  let task: ReplicationTask | undefined = run.existing.find((t) => t.group === group && t.role === role)?.task;
  if (!task) {
    const plugin = d.plugin as DmsPlugin;
    const source = await ensureEndpoint(clients.dms, sourceEndpointInput(ctx, stream, plugin));
    const start = await verifiedStart(ctx, s, stream, plugin, d.peekMaxChanges);
    task = await createTask(clients.dms, {
      identifier,
      sourceEndpointArn: source.arn,
      targetEndpointArn: run.targetEndpointArn,
      instanceArn: d.replicationInstanceArn,
      startLsn: start,
      tableMappings: tableMappings(tp.tables),
      settings: taskSettings({ lobMaxSizeKb: d.lobMaxSizeKb, batchApply: tp.batchApply }),
      tags: tags(ctx.plan.name, group, role),
    });
    // A journal entry for a task that no longer exists (deleted by hand) is replaced.
    if (record) state.splice(state.indexOf(record), 1);
    record = { group, stream: stream.group, role, identifier, arn: task.ReplicationTaskArn!, startLsn: start, started: false };
    state.push(record);
    await saveTasks(journal, state);
    ctx.log.info(`group ${group}: DMS task ${identifier} created from ${start} (slot ${stream.slot})`);
  }
  if (!record) {
    // A task exists (found by its tags) that this journal does not know: it may have been started.
    record = { group, stream: stream.group, role, identifier, arn: task.ReplicationTaskArn!, startLsn: task.CdcStartPosition ?? '', started: task.Status !== 'ready' && task.Status !== 'creating' };
    state.push(record);
    await saveTasks(journal, state);
  }
  return { record, task };
}

/** The checked start position of a stream: its snapshot LSN, or the next change after it. */
async function verifiedStart(ctx: PhaseContext, s: Sessions, stream: StreamRecord, plugin: DmsPlugin, maxChanges: number): Promise<string> {
  const r = await verifyStartLsn(s.source, {
    slot: stream.slot,
    plugin,
    captured: stream.snapshotLsn!,
    signal: ctx.signal,
    serverVersionNum: s.sourceVersion,
    maxChanges,
    beat: () => writeBeat(s.source, heartbeatTable(stream.group), stream.group).then(() => {}),
  });
  if (!r.exact) ctx.log.info(`stream ${stream.group}: ${r.captured} is not a change position in slot ${stream.slot}; the next change, ${r.lsn}, is the start`);
  return r.lsn;
}

/** The journal and its tasks, for commands that act on tasks already created. */
async function withTasks<T>(ctx: PhaseContext, fn: (journal: Journal, tasks: DmsTaskState[], s: Sessions) => Promise<T>): Promise<T> {
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    if (!journal) throw gateRefused('cdc.no-journal', `target ${ctx.target.label} has no pgshift journal for migration ${ctx.plan.name}`, 'run pgshift full-load first');
    const tasks = await dmsTasksOf(journal);
    if (tasks.length === 0) throw gateRefused('dms.no-tasks', 'no DMS task has been created for this migration', 'run pgshift cdc start');
    return await fn(journal, tasks, s);
  } finally {
    await s.close();
  }
}

/** `cdc resume` on DMS: `resume-processing` for every stopped or failed task (never start-replication). */
export async function resumeDmsCdc(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  await withTasks(ctx, async (journal, tasks) => {
    for (const t of tasks) {
      if (!t.started) throw gateRefused('dms.not-started', `DMS task ${t.identifier} was never started`, 'run pgshift cdc start');
      if ((await describeTask(clients.dms, t.arn))?.Status !== 'running') {
        await startTask(clients.dms, t.arn, 'resume-processing');
        await waitForTask(clients.dms, t.arn, ['running'], pollOf(d, ctx.signal));
        ctx.log.info(`DMS task ${t.identifier} resumed`);
      }
      await journal.setStreamState(t.stream, 'streaming');
    }
    await journal.event('cdc', 'info', 'DMS: resumed');
  });
  return dmsStatus(ctx, clients);
}

/**
 * Stop a task and wait until it is stopped; a task that is not running (stopped, failed, ready) is
 * left as it is.
 */
async function stopAndWait(clients: DmsClients, d: DmsPlan, t: DmsTaskState, signal: AbortSignal): Promise<ReplicationTask | undefined> {
  const task = await describeTask(clients.dms, t.arn);
  if (!task || !['running', 'starting', 'resuming'].includes(task.Status ?? '')) return task;
  await stopTask(clients.dms, t.arn);
  return waitForTask(clients.dms, t.arn, ['stopped'], pollOf(d, signal));
}

/**
 * `cdc pause` and `cdc stop` on DMS (DMS has no pause: both stop the tasks; the slots keep the
 * changes and `cdc resume` continues with resume-processing).
 */
export async function stopDmsCdc(ctx: PhaseContext, state: 'paused' | 'stopped', clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  await withTasks(ctx, async (journal, tasks) => {
    for (const t of tasks) {
      await stopAndWait(clients, d, t, ctx.signal);
      await journal.setStreamState(t.stream, state);
    }
    await journal.event('cdc', 'info', `DMS: ${state}`);
  });
  return dmsStatus(ctx, clients);
}

/** Stop and delete tasks, waiting until DMS has removed them; they leave `all` and the journal (if any). */
async function deleteTasks(ctx: PhaseContext, clients: DmsClients, journal: Journal | undefined, all: DmsTaskState[], doomed: DmsTaskState[]): Promise<void> {
  const d = requireDmsConfig(ctx);
  for (const t of doomed) {
    const task = await stopAndWait(clients, d, t, ctx.signal);
    if (task) {
      await deleteTask(clients.dms, t.arn);
      await waitForTask(clients.dms, t.arn, ['deleted'], pollOf(d, ctx.signal));
    }
    all.splice(all.indexOf(t), 1);
    if (journal) await saveTasks(journal, all);
    ctx.log.info(`DMS task ${t.identifier} deleted`);
  }
}

/**
 * Cut-over, inside the write window: ask every task (the gate saw them all running) to stop, all at
 * once and without waiting (the source is fenced and the barrier has passed, so a task still
 * winding down has nothing left to apply); no database session is opened here. Returns the tasks
 * asked, even when one request failed (then with the error), so that an undo can resume them;
 * `settleStopped` waits for them after the window.
 */
export async function requestStop(ctx: PhaseContext, tasks: DmsTaskState[], clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<{ asked: DmsTaskState[]; error?: unknown }> {
  requireDmsConfig(ctx);
  const results = await Promise.allSettled(tasks.map((t) => stopTask(clients.dms, t.arn)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  return { asked: tasks.filter((_, i) => results[i].status === 'fulfilled'), error: failed?.reason };
}

export async function settleStopped(ctx: PhaseContext, tasks: DmsTaskState[], clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<void> {
  const d = requireDmsConfig(ctx);
  for (const t of tasks) await waitForTask(clients.dms, t.arn, ['stopped'], pollOf(d, ctx.signal));
}

/** Undo of a cut-over that had asked the tasks to stop: wait until they have, then resume them. */
export async function resumeAfterStop(ctx: PhaseContext, tasks: DmsTaskState[], clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<void> {
  const d = requireDmsConfig(ctx);
  for (const t of tasks) {
    await waitForTask(clients.dms, t.arn, ['stopped'], pollOf(d, ctx.signal));
    await startTask(clients.dms, t.arn, 'resume-processing');
    await waitForTask(clients.dms, t.arn, ['running'], pollOf(d, ctx.signal));
  }
}

export interface DmsRestartResult {
  groups: string[];
  bundle?: string;
  status: DmsStatus;
}

/**
 * Disaster recovery on DMS.
 *
 *   partial (--group): stop and delete the group's task(s), drop its slots and sets, clear and
 *            load its tables again from a new snapshot (full-load --restart --group), and create
 *            new tasks from the new LSN. Other groups keep streaming.
 *   full:    first the failure state as a JSON bundle (journal, task descriptions, table
 *            statistics, the apply exceptions, the last status) for the workflow's artifact; then
 *            every task is deleted and every group loaded again.
 */
export async function restartDmsCdc(ctx: PhaseContext, options: { group?: string; bundleFile?: string }, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<DmsRestartResult> {
  requireDmsConfig(ctx); // a bad plan is refused before anything is touched
  let bundle: string | undefined;
  const groups = await withTasks(ctx, async (journal, tasks, s) => {
    const known = [...new Set(tasks.map((t) => t.group))];
    if (options.group && !known.includes(options.group)) throw inputError('restart.group', `group ${options.group} has no DMS task`, `use one of: ${known.join(', ')}`);
    const doomed = tasks.filter((t) => !options.group || t.group === options.group);
    if (!options.group) bundle = await writeFailureBundle(ctx, journal, options.bundleFile, await dmsFailureState(ctx, clients, journal, tasks, s));
    await journal.event('cdc', 'warn', `DMS restart of ${options.group ? `group ${options.group}` : 'every group'}`);
    await deleteTasks(ctx, clients, journal, tasks, doomed);
    // A resume stream's slot goes with the reload (its tables are loaded again in the group's
    // stream): its source endpoint, which names that slot, goes now — teardown would not find it.
    await deleteEndpoints(clients, [...new Set(doomed.filter((t) => isResyncOf(t.stream, t.group)).map((t) => sourceEndpointId(ctx, t.stream)))]);
    return [...new Set(doomed.map((t) => t.group))];
  });
  if (options.group) await runFullLoad(ctx, { group: options.group, restart: true });
  else await runFullLoad(ctx, { restart: true });
  return { groups, bundle, status: await startDmsCdc(ctx, clients) };
}

/** Delete the endpoints of these identifiers that exist; returns what was removed. */
async function deleteEndpoints(clients: DmsClients, identifiers: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const id of identifiers) {
    const arn = await findEndpoint(clients.dms, id);
    if (!arn) continue;
    await deleteEndpoint(clients.dms, arn);
    removed.push(`DMS endpoint ${id}`);
  }
  return removed;
}

/** The DMS side of a failure, gathered before anything is torn down (the journal's part is added by writeFailureBundle). */
async function dmsFailureState(ctx: PhaseContext, clients: DmsClients, journal: Journal, tasks: DmsTaskState[], s: Sessions) {
  const described = await findTasks(clients.dms, requireDmsConfig(ctx).replicationInstanceArn, ctx.plan.name);
  const exceptions = await recentApplyExceptions(s.target, 500);
  return {
    dms: {
      tasks: await Promise.all(
        tasks.map(async (t) => ({
          ...t,
          description: described.find((x) => x.task.ReplicationTaskArn === t.arn)?.task ?? null,
          tableStatistics: await tableStatistics(clients.dms, t.arn).catch((err: Error) => ({ error: err.message })),
        })),
      ),
      applyExceptions: exceptions,
    },
    status: await dmsStatusOn(ctx, clients, new Date(), journal, s).catch((err: Error) => ({ error: err.message })),
  };
}

/**
 * Teardown of the DMS side: tasks (stopped, then deleted), the endpoints pgshift created, and DMS's
 * artifacts — control tables on the target, its heartbeat and DDL-capture objects on the source.
 * Returns what was removed.
 */
export async function teardownDms(ctx: PhaseContext, s: Sessions, journal: Journal | undefined, streams: string[], clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<string[]> {
  const d = requireDmsConfig(ctx);
  // Every task carrying our tags, journaled or not (a journal may be gone, or a task made by hand).
  const known = await dmsTasksOf(journal);
  const doomed = (await findTasks(clients.dms, d.replicationInstanceArn, ctx.plan.name)).map(
    ({ task, group, role }) => known.find((x) => x.arn === task.ReplicationTaskArn) ?? { group, role, stream: group, identifier: task.ReplicationTaskIdentifier!, arn: task.ReplicationTaskArn!, startLsn: '', started: true },
  );
  known.push(...doomed.filter((t) => !known.includes(t)));
  await deleteTasks(ctx, clients, journal, known, doomed);
  const removed = doomed.map((t) => `DMS task ${t.identifier}`);
  removed.push(...(await deleteEndpoints(clients, [...streams.map((g) => sourceEndpointId(ctx, g)), ...(d.targetEndpointArn ? [] : [targetEndpointId(ctx)])])));
  removed.push(...(await dropDmsArtifacts(s)));
  return removed;
}
const last = (series: MetricSeries[], key: string): number | null => {
  const s = series.find((x) => x.key === key);
  return s && s.values.length ? s.values[s.values.length - 1] : null;
};

/**
 * `cdc status` on DMS: each task's status, StopReason and last failure, its CloudWatch latency and
 * backlog, errored tables, and the lag of a heartbeat written now (waited for up to waitMs); the
 * replication instance's CPU, memory, swap and storage; new apply exceptions on the target (LOB
 * truncations flagged); the source slots' retained WAL — each against the plan's thresholds.
 */
export async function dmsStatus(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region), now = new Date(), waitMs = 5_000): Promise<DmsStatus> {
  requireDmsConfig(ctx); // a bad plan is refused before anything is opened
  const s = await openSessions(ctx);
  try {
    return await dmsStatusOn(ctx, clients, now, await Journal.find(s.target, ctx.plan.name), s, waitMs);
  } finally {
    await s.close();
  }
}

/** The status on sessions the caller already holds (the cut-over gate, the failure bundle). */
export async function dmsStatusOn(ctx: PhaseContext, clients: DmsClients, now: Date, journal: Journal | undefined, s: Sessions, waitMs = 2_000): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  const thresholds = d.thresholds;
  const states = await dmsTasksOf(journal);
  const streams = new Map((journal ? await journal.streams() : []).map((r) => [r.group, r]));
  const { applyExceptions, slots } = await readDatabaseSide(s, journal, [...streams.values()], thresholds.maxRetainedWalBytes);
  const described = states.length ? await findTasks(clients.dms, d.replicationInstanceArn, ctx.plan.name) : [];
  const series = states.length ? await metrics(clients.cloudwatch, d.replicationInstanceIdentifier, states.map((t) => t.arn), { minutes: 60, now }) : [];
  const lag = await measureLags(s.source, s.target, states.filter((t) => streams.get(t.stream)?.state === 'streaming').map((t) => t.stream), waitMs);
  const ddl = await ddlReport(ctx.plan, s, [...streams.values()]);
  const tasks: DmsTaskStatus[] = [];
  for (const t of states) {
    const task = described.find((x) => x.task.ReplicationTaskArn === t.arn)?.task;
    tasks.push(await taskStatus(clients, t, task, series, streams.get(t.stream)?.state, lag.get(t.stream), thresholds));
  }
  const instance = instanceStatus(d.replicationInstanceIdentifier, series, thresholds);
  return {
    engine: 'dms',
    healthy:
      tasks.length > 0 && tasks.every((t) => t.health !== 'failing') && instance.problems.length === 0 && slots.every((x) => !x.problem) && !applyExceptions.some((e) => e.truncation) && ddl.problems.length === 0,
    tasks,
    instance,
    applyExceptions,
    slots,
    latency: latencyChart(states, series),
    ddl: ddl.entries,
    ddlProblems: ddl.problems.map((p) => p.problem),
  };
}

/** One task: DMS's status and errored tables, its CloudWatch latency and backlog, the heartbeat's lag, and its health against the thresholds. */
async function taskStatus(clients: DmsClients, t: DmsTaskState, task: ReplicationTask | undefined, series: MetricSeries[], streamState: string | undefined, heartbeatLag: number | undefined, thresholds: DmsPlan['thresholds']): Promise<DmsTaskStatus> {
  const suffix = t.arn.split(':').pop()!;
  const src = last(series, `task:${suffix}:CDCLatencySource`);
  const tgt = last(series, `task:${suffix}:CDCLatencyTarget`);
  const stats = task ? await tableStatistics(clients.dms, t.arn) : [];
  const errored = stats.filter((x) => x.TableState === 'Table error' || x.TableState === 'Table cancelled').map((x) => `${x.SchemaName}.${x.TableName}`);
  const status = task?.Status ?? 'missing';
  const paused = streamState === 'paused' || streamState === 'stopped';
  const latency = Math.max((src ?? 0) + (tgt ?? 0), heartbeatLag ?? 0);
  const { health, problems } = dmsTaskHealth({ status, stopReason: stopReason(task), lastFailure: task?.LastFailureMessage, paused, latencySeconds: latency, erroredTables: errored, group: t.group }, thresholds);
  return {
    ...t,
    status,
    stopReason: stopReason(task),
    lastFailure: task?.LastFailureMessage,
    latencySourceSeconds: src,
    latencyTargetSeconds: tgt,
    heartbeatLagSeconds: heartbeatLag ?? null,
    incomingChanges: last(series, `task:${suffix}:CDCIncomingChanges`),
    tablesErrored: errored,
    health,
    problems,
  };
}

/** The replication instance's latest CPU, memory, swap and storage, against the thresholds. */
function instanceStatus(identifier: string, series: MetricSeries[], thresholds: DmsPlan['thresholds']): DmsStatus['instance'] {
  const instance = {
    identifier,
    cpuPercent: last(series, 'instance:CPUUtilization'),
    freeableMemoryBytes: last(series, 'instance:FreeableMemory'),
    swapBytes: last(series, 'instance:SwapUsage'),
    freeStorageBytes: last(series, 'instance:FreeStorageSpace'),
    problems: [] as string[],
  };
  instance.problems = dmsInstanceProblems(instance, thresholds);
  return instance;
}

/** CDCLatencySource + CDCLatencyTarget per minute, per task, for the chart. */
function latencyChart(states: DmsTaskState[], series: MetricSeries[]): DmsStatus['latency'] {
  return states.map((t) => {
    const suffix = t.arn.split(':').pop()!;
    const a = series.find((x) => x.key === `task:${suffix}:CDCLatencySource`);
    const b = series.find((x) => x.key === `task:${suffix}:CDCLatencyTarget`);
    return {
      identifier: t.identifier,
      points: (a?.timestamps ?? []).map((at, i) => ({ at: at.toISOString(), seconds: (a?.values[i] ?? 0) + (b?.values[i] ?? 0) })),
    };
  });
}

/**
 * awsdms_apply_exceptions on the target since the last acknowledgement (pgshift cdc acknowledge),
 * and the slots on the source. Reads only: every status, and the cut-over gate, sees every
 * exception until an operator has acknowledged it.
 */
async function readDatabaseSide(s: Sessions, journal: Journal | undefined, streams: StreamRecord[], maxRetained: number): Promise<Pick<DmsStatus, 'applyExceptions' | 'slots'>> {
  const rows = await applyExceptionsAfter(s.target, await acknowledgedUntil(journal), 200);
  // A truncated LOB shows as a truncation error or, for json, as malformed JSON (reference: aws-dms.md).
  const applyExceptions: DmsStatus['applyExceptions'] = rows.map((row) => ({ task: row.task, table: `${row.owner}.${row.name}`, at: row.at, error: row.error, truncation: /truncat|malformed json/i.test(row.error) }));
  const slots: DmsStatus['slots'] = [];
  for (const st of streams) {
    const state = await slotState(s.source, st.slot, s.sourceVersion);
    if (!state.exists) {
      slots.push({ slot: st.slot, retainedBytes: null, active: false, problem: `slot ${st.slot} is missing on the source: pgshift cdc restart --group ${st.group}` });
      continue;
    }
    const problem = state.retainedBytes !== null && state.retainedBytes > maxRetained ? `slot ${st.slot} retains ${formatBytes(state.retainedBytes)} of WAL, over ${formatBytes(maxRetained)}` : undefined;
    slots.push({ slot: st.slot, retainedBytes: state.retainedBytes, active: state.active, ...(problem ? { problem } : {}) });
  }
  return { applyExceptions, slots };
}

/** The error_time up to which apply exceptions were acknowledged ('-infinity': none yet). */
async function acknowledgedUntil(journal: Journal | undefined): Promise<string> {
  const detail = journal ? ((await journal.phaseState(EXCEPTIONS_PHASE))?.detail as { after?: string } | undefined) : undefined;
  return detail?.after ?? '-infinity';
}

/**
 * `pgshift cdc acknowledge` on DMS: the exceptions recorded so far are resolved (the rows backfilled,
 * the LOB limit raised); status and the cut-over gate stop showing them. Returns how many were
 * acknowledged.
 */
export async function acknowledgeDmsExceptions(ctx: PhaseContext, journal: Journal, s: Sessions): Promise<number> {
  const pending = await applyExceptionsAfter(s.target, await acknowledgedUntil(journal), 1_000_000);
  const latest = await latestApplyException(s.target);
  if (!latest || pending.length === 0) return 0;
  await journal.setPhaseDetail(EXCEPTIONS_PHASE, 'done', { after: latest });
  await journal.event('cdc', 'info', `DMS: ${pending.length} apply exception(s) up to ${latest} acknowledged`, { tables: [...new Set(pending.map((e) => `${e.owner}.${e.name}`))] });
  ctx.log.info(`cdc: ${pending.length} DMS apply exception(s) up to ${latest} acknowledged`);
  return pending.length;
}
