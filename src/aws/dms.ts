import {
  CreateEndpointCommand,
  CreateReplicationTaskCommand,
  DatabaseMigrationServiceClient,
  DeleteEndpointCommand,
  DeleteReplicationTaskCommand,
  DescribeEndpointsCommand,
  DescribeReplicationTasksCommand,
  DescribeTableStatisticsCommand,
  ListTagsForResourceCommand,
  StartReplicationTaskCommand,
  StopReplicationTaskCommand,
  type CreateEndpointCommandInput,
  type ReplicationTask,
  type TableStatistics,
  type Tag,
} from '@aws-sdk/client-database-migration-service';
import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { failure, gateRefused, inputError, type PgshiftError } from '../core/errors.js';
import { sleep } from '../core/wait.js';

/**
 * The DMS and CloudWatch calls of the DMS engine, each in one place with its errors turned into
 * one-line messages that name the object and the fix. Request documents (table mappings, task
 * settings) come from src/core/dms.ts. Credentials: the SDK's default chain (OIDC in Actions).
 *
 * The task lifecycle follows the documented rules (shared/reference/aws-dms.md §1): create with
 * the CDC start position → wait `ready` → `start-replication` with the same position, exactly once
 * → from then on only `resume-processing` (a restart would recreate the slot). Waiting uses our own
 * poller: the SDK's waiters fail on normal transitions (`ready` right after a start).
 */
export const TAG = { migration: 'pgshift:migration', group: 'pgshift:group', role: 'pgshift:role' } as const;

export interface DmsClients {
  dms: DatabaseMigrationServiceClient;
  cloudwatch: CloudWatchClient;
}

export function dmsClients(region?: string): DmsClients {
  return { dms: new DatabaseMigrationServiceClient({ region }), cloudwatch: new CloudWatchClient({ region }) };
}

/** Turn an SDK error into a pgshift error: what was being done to which object, and the fix. */
export function awsError(err: unknown, what: string): PgshiftError {
  const e = err as { name?: string; message?: string };
  const detail = e.message ?? String(err);
  switch (e.name) {
    case 'AccessDeniedFault':
    case 'AccessDeniedException':
      return inputError('aws.access-denied', `${what}: access denied (${detail})`, 'grant the role pgshift runs as the DMS permissions listed in docs/dms.md');
    case 'InvalidResourceStateFault':
      return gateRefused('aws.invalid-state', `${what}: the resource is in a state that does not allow it (${detail})`, 'check pgshift cdc status; wait for the task to stop or become ready, then run the command again');
    case 'ResourceNotFoundFault':
      return failure('aws.not-found', `${what}: not found (${detail})`, 'check the ARNs in cdc.dms of the plan, and the region');
    case 'ResourceQuotaExceededFault':
      return failure('aws.quota', `${what}: DMS quota reached (${detail})`, 'delete unused DMS tasks or endpoints, or raise the quota');
    default:
      return failure('aws.error', `${what}: ${e.name ?? 'error'}: ${detail}`, undefined, err);
  }
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw awsError(err, what);
  }
}

export function tags(migration: string, group: string, role: string): Tag[] {
  return [
    { Key: TAG.migration, Value: migration },
    { Key: TAG.group, Value: group },
    { Key: TAG.role, Value: role },
  ];
}

/** The tasks on this replication instance that carry our tags for the migration, keyed by role. */
export async function findTasks(dms: DatabaseMigrationServiceClient, instanceArn: string, migration: string): Promise<Array<{ task: ReplicationTask; group: string; role: string }>> {
  const tasks: ReplicationTask[] = [];
  let marker: string | undefined;
  do {
    const page = await call('DescribeReplicationTasks', () =>
      dms
        .send(new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-instance-arn', Values: [instanceArn] }], WithoutSettings: true, MaxRecords: 100, Marker: marker }))
        // DMS answers a filter that matches nothing with ResourceNotFoundFault.
        .catch((err: { name?: string }) => {
          if (err.name === 'ResourceNotFoundFault') return { ReplicationTasks: [], Marker: undefined };
          throw err;
        }),
    );
    tasks.push(...(page.ReplicationTasks ?? []));
    marker = page.Marker;
  } while (marker);
  if (tasks.length === 0) return [];
  const tagged = await call('ListTagsForResource', () => dms.send(new ListTagsForResourceCommand({ ResourceArnList: tasks.map((t) => t.ReplicationTaskArn!) })));
  const byArn = new Map<string, Map<string, string>>();
  for (const t of tagged.TagList ?? []) {
    const m = byArn.get(t.ResourceArn!) ?? new Map<string, string>();
    m.set(t.Key!, t.Value ?? '');
    byArn.set(t.ResourceArn!, m);
  }
  const out: Array<{ task: ReplicationTask; group: string; role: string }> = [];
  for (const task of tasks) {
    const t = byArn.get(task.ReplicationTaskArn!);
    if (t?.get(TAG.migration) === migration) out.push({ task, group: t.get(TAG.group) ?? '', role: t.get(TAG.role) ?? '' });
  }
  return out;
}

/** An endpoint by its identifier (ours are deterministic), or undefined. */
export async function findEndpoint(dms: DatabaseMigrationServiceClient, identifier: string): Promise<string | undefined> {
  try {
    const r = await dms.send(new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [identifier] }] }));
    return r.Endpoints?.[0]?.EndpointArn;
  } catch (err) {
    if ((err as { name?: string }).name === 'ResourceNotFoundFault') return undefined;
    throw awsError(err, `DescribeEndpoints ${identifier}`);
  }
}

export async function ensureEndpoint(dms: DatabaseMigrationServiceClient, input: CreateEndpointCommandInput & { EndpointIdentifier: string }): Promise<{ arn: string; created: boolean }> {
  const existing = await findEndpoint(dms, input.EndpointIdentifier);
  if (existing) return { arn: existing, created: false };
  const r = await call(`CreateEndpoint ${input.EndpointIdentifier}`, () => dms.send(new CreateEndpointCommand(input)));
  return { arn: r.Endpoint!.EndpointArn!, created: true };
}

export interface CreateTaskInput {
  identifier: string;
  sourceEndpointArn: string;
  targetEndpointArn: string;
  instanceArn: string;
  startLsn: string;
  tableMappings: unknown;
  settings: unknown;
  tags: Tag[];
}

export async function createTask(dms: DatabaseMigrationServiceClient, i: CreateTaskInput): Promise<ReplicationTask> {
  const r = await call(`CreateReplicationTask ${i.identifier}`, () =>
    dms.send(
      new CreateReplicationTaskCommand({
        ReplicationTaskIdentifier: i.identifier,
        SourceEndpointArn: i.sourceEndpointArn,
        TargetEndpointArn: i.targetEndpointArn,
        ReplicationInstanceArn: i.instanceArn,
        MigrationType: 'cdc',
        TableMappings: JSON.stringify(i.tableMappings),
        ReplicationTaskSettings: JSON.stringify(i.settings),
        // Recorded at creation and immutable: a different start needs a new task.
        CdcStartPosition: i.startLsn,
        Tags: i.tags,
      }),
    ),
  );
  return r.ReplicationTask!;
}

export async function describeTask(dms: DatabaseMigrationServiceClient, arn: string): Promise<ReplicationTask | undefined> {
  try {
    const r = await dms.send(new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-task-arn', Values: [arn] }], WithoutSettings: true }));
    return r.ReplicationTasks?.[0];
  } catch (err) {
    if ((err as { name?: string }).name === 'ResourceNotFoundFault') return undefined;
    throw awsError(err, `DescribeReplicationTasks ${arn}`);
  }
}

/** "Stop Reason FATAL_ERROR" → "FATAL_ERROR". */
export function stopReason(task: ReplicationTask | undefined): string | undefined {
  return task?.StopReason?.replace(/^Stop Reason\s+/, '') || undefined;
}

function describeFailure(task: ReplicationTask): string {
  return [`status ${task.Status}`, stopReason(task) && `stop reason ${stopReason(task)}`, task.LastFailureMessage && `last failure: ${task.LastFailureMessage}`].filter(Boolean).join('; ');
}

export interface PollOptions {
  intervalMs: number;
  timeoutMs: number;
  onStatus?: (task: ReplicationTask) => void;
  /** Ends the wait at once (Ctrl-C, a cancelled workflow, a budget). */
  signal?: AbortSignal;
}

/**
 * Wait until the task reaches one of `want`. Transitional states (creating, starting, modifying,
 * stopping, and `ready` for a while after a start) are waited through; `failed`, and a `stopped`
 * that was not asked for, end the wait with the task's StopReason and LastFailureMessage.
 */
export async function waitForTask(dms: DatabaseMigrationServiceClient, arn: string, want: Array<'ready' | 'running' | 'stopped' | 'deleted'>, o: PollOptions): Promise<ReplicationTask | undefined> {
  const deadline = Date.now() + o.timeoutMs;
  let last: ReplicationTask | undefined;
  for (;;) {
    last = await describeTask(dms, arn);
    if (!last) {
      if (want.includes('deleted')) return undefined;
      throw failure('dms.task-gone', `DMS task ${arn} no longer exists`, 'run pgshift cdc start to create it again');
    }
    o.onStatus?.(last);
    const status = last.Status ?? '';
    if ((want as string[]).includes(status)) return last;
    if (status === 'failed' || (status === 'stopped' && !want.includes('stopped'))) {
      throw failure('dms.task-failed', `DMS task ${last.ReplicationTaskIdentifier}: ${describeFailure(last)}`, 'see the task log in CloudWatch; pgshift cdc resume retries it, pgshift cdc restart --group starts the group over');
    }
    if (Date.now() > deadline) {
      throw failure('dms.timeout', `DMS task ${last.ReplicationTaskIdentifier} still ${status} after ${Math.round(o.timeoutMs / 1000)} s (waiting for ${want.join(' or ')})`, 'check the replication instance and the task in the DMS console, then run the command again');
    }
    await sleep(o.intervalMs, o.signal);
  }
}

export async function startTask(dms: DatabaseMigrationServiceClient, arn: string, mode: 'start-replication' | 'resume-processing', startLsn?: string): Promise<void> {
  await call(`StartReplicationTask ${mode} ${arn}`, () =>
    dms.send(
      new StartReplicationTaskCommand(
        mode === 'start-replication' ? { ReplicationTaskArn: arn, StartReplicationTaskType: mode, CdcStartPosition: startLsn } : { ReplicationTaskArn: arn, StartReplicationTaskType: mode },
      ),
    ),
  );
}

export async function stopTask(dms: DatabaseMigrationServiceClient, arn: string): Promise<void> {
  await call(`StopReplicationTask ${arn}`, () => dms.send(new StopReplicationTaskCommand({ ReplicationTaskArn: arn })));
}

export async function deleteTask(dms: DatabaseMigrationServiceClient, arn: string): Promise<void> {
  await call(`DeleteReplicationTask ${arn}`, () => dms.send(new DeleteReplicationTaskCommand({ ReplicationTaskArn: arn })));
}

export async function deleteEndpoint(dms: DatabaseMigrationServiceClient, arn: string): Promise<void> {
  await call(`DeleteEndpoint ${arn}`, () => dms.send(new DeleteEndpointCommand({ EndpointArn: arn })));
}

export async function tableStatistics(dms: DatabaseMigrationServiceClient, arn: string): Promise<TableStatistics[]> {
  const out: TableStatistics[] = [];
  let marker: string | undefined;
  do {
    const page = await call(`DescribeTableStatistics ${arn}`, () => dms.send(new DescribeTableStatisticsCommand({ ReplicationTaskArn: arn, MaxRecords: 500, Marker: marker })));
    out.push(...(page.TableStatistics ?? []));
    marker = page.Marker;
  } while (marker);
  return out;
}

export const TASK_METRICS = ['CDCLatencySource', 'CDCLatencyTarget', 'CDCIncomingChanges'] as const;
export const INSTANCE_METRICS = ['CPUUtilization', 'FreeableMemory', 'SwapUsage', 'FreeStorageSpace'] as const;

export interface MetricSeries {
  /** e.g. task:<id>:CDCLatencySource, instance:CPUUtilization */
  key: string;
  timestamps: Date[];
  values: number[];
}

/**
 * Task metrics carry two dimensions: the instance identifier (the name given to the instance, not
 * its ARN) and the task's ARN suffix; instance metrics the instance identifier only.
 */
export function metricQueries(instanceIdentifier: string, taskArns: string[], periodSeconds: number): { queries: MetricDataQuery[]; keys: Map<string, string> } {
  const queries: MetricDataQuery[] = [];
  const keys = new Map<string, string>();
  const add = (key: string, name: string, dimensions: Array<{ Name: string; Value: string }>, stat: string) => {
    const id = `m${queries.length}`;
    keys.set(id, key);
    queries.push({ Id: id, MetricStat: { Metric: { Namespace: 'AWS/DMS', MetricName: name, Dimensions: dimensions }, Period: periodSeconds, Stat: stat }, ReturnData: true });
  };
  for (const arn of taskArns) {
    const suffix = arn.split(':').pop()!;
    for (const m of TASK_METRICS) {
      add(`task:${suffix}:${m}`, m, [{ Name: 'ReplicationInstanceIdentifier', Value: instanceIdentifier }, { Name: 'ReplicationTaskIdentifier', Value: suffix }], 'Maximum');
    }
  }
  for (const m of INSTANCE_METRICS) {
    add(`instance:${m}`, m, [{ Name: 'ReplicationInstanceIdentifier', Value: instanceIdentifier }], m === 'CPUUtilization' || m === 'SwapUsage' ? 'Maximum' : 'Minimum');
  }
  return { queries, keys };
}

export async function metrics(cw: CloudWatchClient, instanceIdentifier: string, taskArns: string[], window: { minutes: number; now: Date }): Promise<MetricSeries[]> {
  const { queries, keys } = metricQueries(instanceIdentifier, taskArns, 60);
  const out = new Map<string, MetricSeries>();
  let token: string | undefined;
  do {
    const r = await call('CloudWatch GetMetricData (AWS/DMS)', () =>
      cw.send(
        new GetMetricDataCommand({
          MetricDataQueries: queries,
          StartTime: new Date(window.now.getTime() - window.minutes * 60_000),
          EndTime: window.now,
          ScanBy: 'TimestampAscending',
          NextToken: token,
        }),
      ),
    );
    for (const res of r.MetricDataResults ?? []) {
      const key = keys.get(res.Id!)!;
      const s = out.get(key) ?? { key, timestamps: [], values: [] };
      s.timestamps.push(...(res.Timestamps ?? []));
      s.values.push(...(res.Values ?? []));
      out.set(key, s);
    }
    token = r.NextToken;
  } while (token);
  return [...out.values()];
}
