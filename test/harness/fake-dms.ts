import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
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
  type ReplicationTask,
  type TableStatistics,
  type Tag,
} from '@aws-sdk/client-database-migration-service';
import { mockClient } from 'aws-sdk-client-mock';
import type { DmsClients } from '../../src/aws/dms.js';

/**
 * AWS DMS and CloudWatch for tests, through aws-sdk-client-mock: a small in-memory model of the
 * replication instance that keeps the documented lifecycle (creating → ready → starting → running
 * → stopping → stopped; failed; deleting) and refuses what DMS refuses (InvalidResourceStateFault:
 * start-replication of a task that is not ready, resume of a running one, deleting a running one),
 * so that a wrong sequence of calls fails the test. Every request stays inspectable through
 * `dms.commandCalls(...)` for exact-shape assertions.
 */
const fault = (name: string, message: string) => Object.assign(new Error(message), { name });
const ACCOUNT = 'arn:aws:dms:us-east-1:123456789012';

interface FakeTask {
  task: ReplicationTask;
  tags: Tag[];
  /** Statuses the next describes move through (one step per describe). */
  next: Array<string | 'gone'>;
}

export class FakeDms {
  readonly dms = mockClient(DatabaseMigrationServiceClient);
  readonly cw = mockClient(CloudWatchClient);
  readonly clients: DmsClients = { dms: new DatabaseMigrationServiceClient({ region: 'us-east-1' }), cloudwatch: new CloudWatchClient({ region: 'us-east-1' }) };
  readonly tasks = new Map<string, FakeTask>();
  readonly endpoints = new Map<string, { arn: string; tags: Tag[] }>();
  readonly statistics = new Map<string, TableStatistics[]>();
  private seq = 0;

  constructor(readonly instanceArn: string) {
    this.reset();
  }

  /** Forget every task, endpoint and recorded call. */
  reset(): void {
    this.tasks.clear();
    this.endpoints.clear();
    this.statistics.clear();
    this.dms.reset();
    this.cw.reset();
    this.dms.on(CreateEndpointCommand).callsFake(async (i) => {
      if (this.endpoints.has(i.EndpointIdentifier)) throw fault('ResourceAlreadyExistsFault', `endpoint ${i.EndpointIdentifier} exists`);
      const arn = `${ACCOUNT}:endpoint:E${++this.seq}`;
      this.endpoints.set(i.EndpointIdentifier, { arn, tags: i.Tags ?? [] });
      return { Endpoint: { EndpointArn: arn, EndpointIdentifier: i.EndpointIdentifier } };
    });
    this.dms.on(DescribeEndpointsCommand).callsFake(async (i) => {
      const id = i.Filters?.find((f: { Name: string }) => f.Name === 'endpoint-id')?.Values?.[0];
      const e = this.endpoints.get(id);
      if (!e) throw fault('ResourceNotFoundFault', 'No Endpoints found matching provided filters');
      return { Endpoints: [{ EndpointArn: e.arn, EndpointIdentifier: id }] };
    });
    this.dms.on(DeleteEndpointCommand).callsFake(async (i) => {
      const id = [...this.endpoints].find(([, e]) => e.arn === i.EndpointArn)?.[0];
      if (!id) throw fault('ResourceNotFoundFault', 'endpoint not found');
      if ([...this.tasks.values()].some((t) => t.task.SourceEndpointArn === i.EndpointArn || t.task.TargetEndpointArn === i.EndpointArn)) {
        throw fault('InvalidResourceStateFault', 'endpoint is used by a task');
      }
      this.endpoints.delete(id);
      return { Endpoint: { EndpointArn: i.EndpointArn } };
    });
    this.dms.on(CreateReplicationTaskCommand).callsFake(async (i) => {
      if ([...this.tasks.values()].some((t) => t.task.ReplicationTaskIdentifier === i.ReplicationTaskIdentifier)) {
        throw fault('ResourceAlreadyExistsFault', `task ${i.ReplicationTaskIdentifier} exists`);
      }
      const arn = `${ACCOUNT}:task:T${++this.seq}ABC`;
      const task: ReplicationTask = {
        ReplicationTaskArn: arn,
        ReplicationTaskIdentifier: i.ReplicationTaskIdentifier,
        SourceEndpointArn: i.SourceEndpointArn,
        TargetEndpointArn: i.TargetEndpointArn,
        ReplicationInstanceArn: i.ReplicationInstanceArn,
        MigrationType: i.MigrationType,
        CdcStartPosition: i.CdcStartPosition,
        Status: 'creating',
      };
      this.tasks.set(arn, { task, tags: i.Tags ?? [], next: ['ready'] });
      return { ReplicationTask: { ...task } };
    });
    this.dms.on(DescribeReplicationTasksCommand).callsFake(async (i) => {
      const filter = (name: string) => i.Filters?.find((f: { Name: string }) => f.Name === name)?.Values?.[0];
      const byArn = filter('replication-task-arn');
      const onInstance = filter('replication-instance-arn');
      const found: ReplicationTask[] = [];
      for (const [arn, t] of [...this.tasks]) {
        if (byArn && arn !== byArn) continue;
        if (onInstance && t.task.ReplicationInstanceArn !== onInstance) continue;
        const step = t.next.shift();
        if (step === 'gone') {
          this.tasks.delete(arn);
          continue;
        }
        if (step) t.task.Status = step;
        found.push({ ...t.task });
      }
      if (found.length === 0) throw fault('ResourceNotFoundFault', 'No Tasks found matching provided filters');
      return { ReplicationTasks: found };
    });
    this.dms.on(ListTagsForResourceCommand).callsFake(async (i) => ({
      TagList: (i.ResourceArnList ?? []).flatMap((arn: string) => (this.tasks.get(arn)?.tags ?? []).map((t) => ({ ...t, ResourceArn: arn }))),
    }));
    this.dms.on(StartReplicationTaskCommand).callsFake(async (i) => {
      const t = this.task(i.ReplicationTaskArn);
      const ok = i.StartReplicationTaskType === 'start-replication' ? t.task.Status === 'ready' : ['stopped', 'failed'].includes(t.task.Status!);
      if (!ok) throw fault('InvalidResourceStateFault', `Replication Task ${t.task.ReplicationTaskIdentifier} is ${t.task.Status}: ${i.StartReplicationTaskType} not allowed`);
      t.task.Status = 'starting';
      t.task.StopReason = undefined;
      t.task.LastFailureMessage = undefined;
      t.next = ['running'];
      return { ReplicationTask: { ...t.task } };
    });
    this.dms.on(StopReplicationTaskCommand).callsFake(async (i) => {
      const t = this.task(i.ReplicationTaskArn);
      if (t.task.Status !== 'running') throw fault('InvalidResourceStateFault', `Replication Task is ${t.task.Status}, not running`);
      t.task.Status = 'stopping';
      t.next = ['stopped'];
      t.task.StopReason = 'Stop Reason NORMAL';
      return { ReplicationTask: { ...t.task } };
    });
    this.dms.on(DeleteReplicationTaskCommand).callsFake(async (i) => {
      const t = this.task(i.ReplicationTaskArn);
      if (['running', 'starting', 'stopping'].includes(t.task.Status!)) throw fault('InvalidResourceStateFault', `Replication Task is ${t.task.Status}`);
      t.task.Status = 'deleting';
      t.next = ['gone'];
      return { ReplicationTask: { ...t.task } };
    });
    this.dms.on(DescribeTableStatisticsCommand).callsFake(async (i) => ({ TableStatistics: this.statistics.get(i.ReplicationTaskArn) ?? [] }));
    this.cw.on(GetMetricDataCommand).callsFake(async (i) => {
      const end = (i.EndTime as Date).getTime();
      const stamps = [3, 2, 1].map((m) => new Date(end - m * 60_000));
      const values: Record<string, number[]> = {
        CDCLatencySource: [4, 2, 1],
        CDCLatencyTarget: [3, 1, 1],
        CDCIncomingChanges: [120, 40, 0],
        CPUUtilization: [22, 25, 20],
        FreeableMemory: [2e9, 2e9, 2e9],
        SwapUsage: [0, 0, 0],
        FreeStorageSpace: [40e9, 40e9, 40e9],
      };
      return {
        MetricDataResults: (i.MetricDataQueries as MetricDataQuery[]).map((q) => ({ Id: q.Id, Timestamps: stamps, Values: values[q.MetricStat!.Metric!.MetricName!] })),
      };
    });
  }

  private task(arn: string): FakeTask {
    const t = this.tasks.get(arn);
    if (!t) throw fault('ResourceNotFoundFault', `task ${arn} not found`);
    return t;
  }

  /** The task stops on its own, as DMS does on a fatal error. */
  fail(identifier: string, stopReason: string, message: string): void {
    const t = [...this.tasks.values()].find((x) => x.task.ReplicationTaskIdentifier === identifier)!;
    Object.assign(t.task, { Status: 'failed', StopReason: `Stop Reason ${stopReason}`, LastFailureMessage: message });
    t.next = [];
  }

  /** The CreateReplicationTask requests sent, with their JSON documents parsed. */
  createTaskInputs() {
    return this.dms.commandCalls(CreateReplicationTaskCommand).map((c) => {
      const i = c.args[0].input;
      return { ...i, TableMappings: JSON.parse(i.TableMappings!), ReplicationTaskSettings: JSON.parse(i.ReplicationTaskSettings!) };
    });
  }

  byIdentifier(identifier: string): ReplicationTask | undefined {
    return [...this.tasks.values()].find((x) => x.task.ReplicationTaskIdentifier === identifier)?.task;
  }
}
