import type { ReplicationTask } from '@aws-sdk/client-database-migration-service';
import { parseServerUrl } from '../config/url.js';
import { inputError, gateRefused } from '../core/errors.js';
import { splitByBatchApply, tableMappings, taskIdentifier, taskSettings, type DmsTable } from '../core/dms.js';
import { heartbeatTable } from '../core/names.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import {
  createTask,
  describeTask,
  dmsClients,
  ensureEndpoint,
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
import { writeBeat } from '../pg/heartbeat.js';
import { verifyStartLsn, type DmsPlugin } from '../pg/dms-source.js';
import { openSessions, resolveGroups, type PhaseContext, type Sessions } from './context.js';

/**
 * CDC with AWS DMS: per group one CDC-only task (two when the group mixes tables that may and may
 * not use batch apply), starting at the group's snapshot LSN after that LSN has been checked
 * against the slot. The full load prepared the source (slot with the plugin, pglogical node and
 * sets); this phase owns the endpoints and tasks, found again by their tags on every run.
 *
 * The journal keeps, per task, whether `start-replication` was sent: it is sent once, ever; every
 * later start of the same task is `resume-processing`.
 */
export interface DmsTaskState {
  group: string;
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
  incomingChanges: number | null;
  tablesErrored: string[];
  health: 'ok' | 'warn' | 'failing';
  problems: string[];
}

export interface DmsStatus {
  engine: 'dms';
  healthy: boolean;
  tasks: DmsTaskStatus[];
  instance: { cpuPercent: number | null; freeableMemoryBytes: number | null; swapBytes: number | null; freeStorageBytes: number | null; problems: string[] };
  /** Rows of awsdms_apply_exceptions newer than the previous status (LOB truncations flagged). */
  applyExceptions: Array<{ task: string; table: string; at: string; error: string; truncation: boolean }>;
  /** Retained WAL per slot on the source. */
  slots: Array<{ slot: string; retainedBytes: number | null; active: boolean }>;
  /** CDCLatencySource + CDCLatencyTarget per minute, per task, for the chart. */
  latency: Array<{ identifier: string; points: Array<{ at: string; seconds: number }> }>;
}

const TASKS_PHASE = 'cdc:dms:tasks';

type DmsPlan = PhaseContext['plan']['cdc']['dms'];

export function requireDmsConfig(ctx: PhaseContext): Required<Pick<DmsPlan, 'replicationInstanceArn' | 'replicationInstanceIdentifier'>> & DmsPlan {
  const d = ctx.plan.cdc.dms;
  if (!d.replicationInstanceArn || !d.replicationInstanceIdentifier) {
    throw inputError('dms.config', 'cdc.engine is dms but cdc.dms.replicationInstanceArn or cdc.dms.replicationInstanceIdentifier is missing', 'set both in the plan (the identifier is the instance name, used for its CloudWatch metrics)');
  }
  return d as Required<Pick<DmsPlan, 'replicationInstanceArn' | 'replicationInstanceIdentifier'>> & DmsPlan;
}

/** The group's tables as DMS sees them, with the per-table settings the assessment wrote into the plan. */
export function dmsTablesOf(ctx: PhaseContext, tables: Array<{ schema: string; name: string }>): DmsTable[] {
  return tables.map((t) => {
    const s = ctx.plan.tables[`${t.schema}.${t.name}`] ?? {};
    return {
      schema: t.schema,
      name: t.name,
      lob: s.lobMode ? { mode: s.lobMode, maxSizeKb: s.lobMaxSizeKb ?? ctx.plan.cdc.dms.lobMaxSizeKb } : undefined,
      batchApply: s.batchApply ?? false,
    };
  });
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

function sourceEndpointInput(ctx: PhaseContext, identifier: string, slot: string, plugin: DmsPlugin, tagList: ReturnType<typeof tags>) {
  const d = ctx.plan.cdc.dms;
  return endpointInput(ctx, 'source', identifier, tagList, {
    PluginName: plugin === 'pglogical' ? 'pglogical' : 'test-decoding',
    SlotName: slot,
    HeartbeatEnable: true,
    HeartbeatFrequency: d.heartbeatFrequencyMinutes,
    CaptureDdls: d.captureDdls,
    FailTasksOnLobTruncation: d.failOnLobTruncation,
  });
}

function targetEndpointInput(ctx: PhaseContext, identifier: string, tagList: ReturnType<typeof tags>) {
  // As the native apply worker: no FK or user triggers fire for replicated rows.
  return endpointInput(ctx, 'target', identifier, tagList, { AfterConnectScript: "SET session_replication_role = 'replica'" });
}

const pollOf = (d: DmsPlan) => ({ intervalMs: d.pollSeconds * 1000, timeoutMs: d.readyTimeoutMinutes * 60_000 });

/**
 * `cdc start` on DMS: per group, check the start LSN against the slot, make sure the endpoints and
 * tasks exist (found by tag, never duplicated), wait until each task is ready, send
 * `start-replication` with the position once, and wait until it runs.
 */
export async function startDmsCdc(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  const plugin = d.plugin as DmsPlugin;
  const poll = pollOf(d);
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    const streams = journal ? await journal.streams() : [];
    const notLoaded = streams.find((r) => r.state === 'preparing' || r.state === 'loading');
    if (!journal || streams.length === 0 || notLoaded) {
      throw gateRefused('cdc.not-loaded', notLoaded ? `group ${notLoaded.group} is ${notLoaded.state}` : 'no group has been loaded', 'finish pgshift full-load for every group first');
    }
    await journal.startPhase('cdc');
    const state = ((await journal.phaseState(TASKS_PHASE))?.detail as { tasks?: DmsTaskState[] } | undefined)?.tasks ?? [];
    const save = () => journal.setPhaseDetail(TASKS_PHASE, 'running', { tasks: state });
    const groups = new Map((await resolveGroups(ctx, s.source, s.sourceVersion)).map((g) => [g.name, g]));
    const existing = await findTasks(clients.dms, d.replicationInstanceArn, ctx.plan.name);
    const target =
      d.targetEndpointArn ?? (await ensureEndpoint(clients.dms, targetEndpointInput(ctx, taskIdentifier(ctx.plan.name, 'target', ''), tags(ctx.plan.name, '*', 'target-endpoint')))).arn;
    for (const stream of streams) {
      const group = groups.get(stream.group);
      if (!group) continue;
      const source = await ensureEndpoint(clients.dms, sourceEndpointInput(ctx, taskIdentifier(ctx.plan.name, stream.group, 'source'), stream.slot, plugin, tags(ctx.plan.name, stream.group, 'source-endpoint')));
      for (const tp of splitByBatchApply(dmsTablesOf(ctx, group.tables))) {
        const role = `task${tp.suffix ? `-${tp.suffix}` : ''}`;
        const identifier = taskIdentifier(ctx.plan.name, stream.group, tp.suffix);
        let record = state.find((t) => t.group === stream.group && t.role === role);
        let task: ReplicationTask | undefined = existing.find((t) => t.group === stream.group && t.role === role)?.task;
        if (!task) {
          const start = await verifiedStart(ctx, s, stream, plugin, d.peekMaxChanges);
          task = await createTask(clients.dms, {
            identifier,
            sourceEndpointArn: source.arn,
            targetEndpointArn: target,
            instanceArn: d.replicationInstanceArn,
            startLsn: start,
            tableMappings: tableMappings(tp.tables),
            settings: taskSettings({ lobMaxSizeKb: d.lobMaxSizeKb, batchApply: tp.batchApply }),
            tags: tags(ctx.plan.name, stream.group, role),
          });
          // A journal entry for a task that no longer exists (deleted by hand) is replaced.
          const stale = state.findIndex((t) => t.group === stream.group && t.role === role);
          if (stale >= 0) state.splice(stale, 1);
          record = { group: stream.group, role, identifier, arn: task.ReplicationTaskArn!, startLsn: start, started: false };
          state.push(record);
          await save();
          ctx.log.info(`group ${stream.group}: DMS task ${identifier} created from ${start}`);
        }
        if (!record) {
          // A task exists (found by its tags) that this journal does not know: it may have been started.
          record = { group: stream.group, role, identifier, arn: task.ReplicationTaskArn!, startLsn: task.CdcStartPosition ?? '', started: task.Status !== 'ready' && task.Status !== 'creating' };
          state.push(record);
          await save();
        }
        if (record.started) {
          ctx.log.info(`group ${stream.group}: DMS task ${identifier} already started (${task.Status}); use pgshift cdc resume to resume it`);
          continue;
        }
        await waitForTask(clients.dms, record.arn, ['ready'], poll);
        await startTask(clients.dms, record.arn, 'start-replication', record.startLsn);
        record.started = true;
        await save();
        await waitForTask(clients.dms, record.arn, ['running'], poll);
        await journal.setStreamState(stream.group, 'streaming');
        ctx.log.info(`group ${stream.group}: DMS task ${identifier} running from ${record.startLsn}`);
      }
    }
    await journal.event('cdc', 'info', `DMS: ${state.length} task(s) started`);
  } finally {
    await s.close();
  }
  return dmsStatus(ctx, clients);
}

/** The checked start position of a group: its snapshot LSN, or the next change after it. */
async function verifiedStart(ctx: PhaseContext, s: Sessions, stream: StreamRecord, plugin: DmsPlugin, maxChanges: number): Promise<string> {
  const r = await verifyStartLsn(s.source, {
    slot: stream.slot,
    plugin,
    captured: stream.snapshotLsn!,
    serverVersionNum: s.sourceVersion,
    maxChanges,
    beat: () => writeBeat(s.source, heartbeatTable(stream.group), stream.group).then(() => {}),
  });
  if (!r.exact) ctx.log.info(`group ${stream.group}: ${r.captured} is not a change position in slot ${stream.slot}; the next change, ${r.lsn}, is the start`);
  return r.lsn;
}

async function tasksIn(journal: Journal | undefined): Promise<DmsTaskState[]> {
  return ((journal && (await journal.phaseState(TASKS_PHASE))?.detail) as { tasks?: DmsTaskState[] } | undefined)?.tasks ?? [];
}

async function tasksOf(ctx: PhaseContext): Promise<DmsTaskState[]> {
  const s = await openSessions(ctx);
  try {
    return await tasksIn(await Journal.find(s.target, ctx.plan.name));
  } finally {
    await s.close();
  }
}

/** `cdc resume` on DMS: `resume-processing` for every stopped or failed task (never start-replication). */
export async function resumeDmsCdc(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region), group?: string): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  for (const t of (await tasksOf(ctx)).filter((x) => !group || x.group === group)) {
    if (!t.started) throw gateRefused('dms.not-started', `DMS task ${t.identifier} was never started`, 'run pgshift cdc start');
    if ((await describeTask(clients.dms, t.arn))?.Status === 'running') continue;
    await startTask(clients.dms, t.arn, 'resume-processing');
    await waitForTask(clients.dms, t.arn, ['running'], pollOf(d));
    ctx.log.info(`DMS task ${t.identifier} resumed`);
  }
  return dmsStatus(ctx, clients);
}

/** `cdc stop` on DMS: stop every task and wait until stopped (the slots stay until teardown). */
export async function stopDmsCdc(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region)): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  for (const t of await tasksOf(ctx)) {
    await stopTask(clients.dms, t.arn);
    await waitForTask(clients.dms, t.arn, ['stopped'], pollOf(d));
  }
  return dmsStatus(ctx, clients);
}

const last = (series: MetricSeries[], key: string): number | null => {
  const s = series.find((x) => x.key === key);
  return s && s.values.length ? s.values[s.values.length - 1] : null;
};

/**
 * `cdc status` on DMS: each task's status, StopReason and last failure, its CloudWatch latency and
 * backlog, errored tables; the replication instance's CPU, memory, swap and storage; new apply
 * exceptions on the target (LOB truncations flagged); the source slots' retained WAL — each
 * against the plan's thresholds.
 */
export async function dmsStatus(ctx: PhaseContext, clients: DmsClients = dmsClients(ctx.plan.cdc.dms.region), now = new Date()): Promise<DmsStatus> {
  requireDmsConfig(ctx); // a bad plan is refused before anything is opened
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    const states = await tasksIn(journal);
    return await collectDmsStatus(ctx, clients, now, states, await readDatabaseSide(s, journal));
  } finally {
    await s.close();
  }
}

async function collectDmsStatus(
  ctx: PhaseContext,
  clients: DmsClients,
  now: Date,
  states: DmsTaskState[],
  { applyExceptions, slots }: Pick<DmsStatus, 'applyExceptions' | 'slots'>,
): Promise<DmsStatus> {
  const d = requireDmsConfig(ctx);
  const th = d.thresholds;
  const described = states.length ? await findTasks(clients.dms, d.replicationInstanceArn, ctx.plan.name) : [];
  const series = states.length ? await metrics(clients.cloudwatch, d.replicationInstanceIdentifier, states.map((t) => t.arn), { minutes: 60, now }) : [];
  const tasks: DmsTaskStatus[] = [];
  for (const t of states) {
    const task = described.find((x) => x.task.ReplicationTaskArn === t.arn)?.task;
    const suffix = t.arn.split(':').pop()!;
    const src = last(series, `task:${suffix}:CDCLatencySource`);
    const tgt = last(series, `task:${suffix}:CDCLatencyTarget`);
    const stats = task ? await tableStatistics(clients.dms, t.arn) : [];
    const errored = stats.filter((x) => x.TableState === 'Table error' || x.TableState === 'Table cancelled').map((x) => `${x.SchemaName}.${x.TableName}`);
    const problems: string[] = [];
    let health: DmsTaskStatus['health'] = 'ok';
    const status = task?.Status ?? 'missing';
    if (status !== 'running') {
      problems.push(`task is ${status}${stopReason(task) ? ` (${stopReason(task)})` : ''}${task?.LastFailureMessage ? `: ${task.LastFailureMessage}` : ''}`);
      health = 'failing';
    }
    const latency = (src ?? 0) + (tgt ?? 0);
    if (latency > th.failLatencySeconds) {
      problems.push(`latency ${latency.toFixed(0)} s over ${th.failLatencySeconds} s`);
      health = 'failing';
    } else if (latency > th.warnLatencySeconds) {
      problems.push(`latency ${latency.toFixed(0)} s over ${th.warnLatencySeconds} s`);
      if (health === 'ok') health = 'warn';
    }
    if (errored.length) {
      problems.push(`tables in error: ${errored.join(', ')}`);
      health = 'failing';
    }
    tasks.push({
      ...t,
      status,
      stopReason: stopReason(task),
      lastFailure: task?.LastFailureMessage,
      latencySourceSeconds: src,
      latencyTargetSeconds: tgt,
      incomingChanges: last(series, `task:${suffix}:CDCIncomingChanges`),
      tablesErrored: errored,
      health,
      problems,
    });
  }
  const instance = {
    cpuPercent: last(series, 'instance:CPUUtilization'),
    freeableMemoryBytes: last(series, 'instance:FreeableMemory'),
    swapBytes: last(series, 'instance:SwapUsage'),
    freeStorageBytes: last(series, 'instance:FreeStorageSpace'),
    problems: [] as string[],
  };
  if (instance.cpuPercent !== null && instance.cpuPercent > th.maxCpuPercent) instance.problems.push(`replication instance CPU ${instance.cpuPercent.toFixed(0)}% over ${th.maxCpuPercent}%`);
  if (instance.freeStorageBytes !== null && instance.freeStorageBytes < th.minFreeStorageBytes) instance.problems.push(`replication instance free storage ${instance.freeStorageBytes} bytes under ${th.minFreeStorageBytes}`);
  if (instance.freeableMemoryBytes !== null && instance.swapBytes !== null && instance.freeableMemoryBytes < th.minFreeableMemoryBytes && instance.swapBytes > th.maxSwapBytes) {
    instance.problems.push('replication instance is out of memory and swapping');
  }
  const slotProblems = slots.filter((x) => x.retainedBytes !== null && x.retainedBytes > th.maxRetainedWalBytes);
  const latencyChart = states.map((t) => {
    const suffix = t.arn.split(':').pop()!;
    const a = series.find((x) => x.key === `task:${suffix}:CDCLatencySource`);
    const b = series.find((x) => x.key === `task:${suffix}:CDCLatencyTarget`);
    return {
      identifier: t.identifier,
      points: (a?.timestamps ?? []).map((at, i) => ({ at: at.toISOString(), seconds: (a?.values[i] ?? 0) + (b?.values[i] ?? 0) })),
    };
  });
  return {
    engine: 'dms',
    healthy: tasks.every((t) => t.health !== 'failing') && instance.problems.length === 0 && slotProblems.length === 0 && !applyExceptions.some((e) => e.truncation),
    tasks,
    instance,
    applyExceptions,
    slots,
    latency: latencyChart,
  };
}

/** awsdms_apply_exceptions on the target (new rows since the last look) and the slots on the source. */
async function readDatabaseSide(s: Sessions, journal: Journal | undefined): Promise<Pick<DmsStatus, 'applyExceptions' | 'slots'>> {
  const seen = ((journal && (await journal.phaseState('cdc:dms:exceptions'))?.detail) as { after?: string } | undefined)?.after ?? '-infinity';
  const exists = await s.target.query(`SELECT 1 FROM pg_class WHERE relname = 'awsdms_apply_exceptions' AND relkind = 'r'`);
  const applyExceptions: DmsStatus['applyExceptions'] = [];
  if (exists.rowCount) {
    const r = await s.target.query<{ task: string; owner: string; name: string; at: string; error: string }>(
      `SELECT task_name AS task, table_owner AS owner, table_name AS name, error_time::text AS at, error FROM awsdms_apply_exceptions WHERE error_time > $1::timestamp ORDER BY error_time LIMIT 200`,
      [seen],
    );
    for (const row of r.rows) applyExceptions.push({ task: row.task, table: `${row.owner}.${row.name}`, at: row.at, error: row.error, truncation: /truncat|malformed json/i.test(row.error) });
    if (journal && r.rows.length) await journal.setPhaseDetail('cdc:dms:exceptions', 'running', { after: r.rows[r.rows.length - 1].at });
  }
  const streams = journal ? await journal.streams() : [];
  const slotRows = await s.source.query<{ slot: string; retained: string | null; active: boolean }>(
    `SELECT slot_name AS slot, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained, active FROM pg_replication_slots WHERE slot_name = ANY($1)`,
    [streams.map((x) => x.slot)],
  );
  return { applyExceptions, slots: slotRows.rows.map((x) => ({ slot: x.slot, retainedBytes: x.retained === null ? null : Number(x.retained), active: x.active })) };
}
