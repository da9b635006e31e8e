import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  CreateEndpointCommand,
  CreateReplicationTaskCommand,
  DatabaseMigrationServiceClient,
  DescribeEndpointsCommand,
  DescribeReplicationTasksCommand,
  DescribeTableStatisticsCommand,
  ListTagsForResourceCommand,
  StartReplicationTaskCommand,
} from '@aws-sdk/client-database-migration-service';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createTask, ensureEndpoint, findTasks, metrics, startTask, tableStatistics, tags, waitForTask } from '../../src/aws/dms.js';
import { tableMappings, taskSettings } from '../../src/core/dms.js';

/**
 * The DMS and CloudWatch calls of the DMS engine against aws-sdk-client-mock: the exact requests
 * (documents compared as parsed JSON), the lifecycle rules, and the failure paths' messages.
 */
const dms = mockClient(DatabaseMigrationServiceClient);
const cw = mockClient(CloudWatchClient);
const client = new DatabaseMigrationServiceClient({ region: 'us-east-1' });
const ri = 'arn:aws:dms:us-east-1:123456789012:rep:RI1';
const taskArn = 'arn:aws:dms:us-east-1:123456789012:task:ABCDEF123';
const fast = { intervalMs: 1, timeoutMs: 1000 };

afterEach(() => {
  dms.reset();
  cw.reset();
});

const named = (name: string, message = 'denied') => Object.assign(new Error(message), { name });

describe('DMS tasks through the API', () => {
  it('creates a CDC-only task at the LSN with the documents as JSON strings and the tags', async () => {
    dms.on(CreateReplicationTaskCommand).resolves({ ReplicationTask: { ReplicationTaskArn: taskArn, Status: 'creating' } });
    const tables = [{ schema: 'public', name: 'orders', batchApply: false, lob: { mode: 'unlimited' as const, maxSizeKb: 64 } }];
    await createTask(client, {
      identifier: 'pgshift-calls-g1',
      sourceEndpointArn: 'arn:src',
      targetEndpointArn: 'arn:tgt',
      instanceArn: ri,
      startLsn: '35FE3/B63D4718',
      tableMappings: tableMappings(tables),
      settings: taskSettings({ lobMaxSizeKb: 32, batchApply: false }),
      tags: tags('calls', 'g1', 'task'),
    });
    const input = dms.commandCalls(CreateReplicationTaskCommand)[0].args[0].input;
    expect({ ...input, TableMappings: JSON.parse(input.TableMappings!), ReplicationTaskSettings: JSON.parse(input.ReplicationTaskSettings!) }).toEqual({
      ReplicationTaskIdentifier: 'pgshift-calls-g1',
      SourceEndpointArn: 'arn:src',
      TargetEndpointArn: 'arn:tgt',
      ReplicationInstanceArn: ri,
      MigrationType: 'cdc',
      CdcStartPosition: '35FE3/B63D4718',
      TableMappings: {
        rules: [
          { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'include-public-orders', 'object-locator': { 'schema-name': 'public', 'table-name': 'orders' }, 'rule-action': 'include', filters: [] },
          { 'rule-type': 'table-settings', 'rule-id': '2', 'rule-name': 'public-orders-lob-no-truncation', 'object-locator': { 'schema-name': 'public', 'table-name': 'orders' }, 'lob-settings': { mode: 'unlimited', 'bulk-max-size': '64' } },
        ],
      },
      ReplicationTaskSettings: taskSettings({ lobMaxSizeKb: 32, batchApply: false }),
      Tags: [
        { Key: 'pgshift:migration', Value: 'calls' },
        { Key: 'pgshift:group', Value: 'g1' },
        { Key: 'pgshift:role', Value: 'task' },
      ],
    });
    expect(input).not.toHaveProperty('CdcStartTime');
  });

  it('finds existing tasks by their tags (not by name), so a re-run never duplicates one', async () => {
    dms.on(DescribeReplicationTasksCommand).resolves({
      ReplicationTasks: [
        { ReplicationTaskArn: taskArn, ReplicationTaskIdentifier: 'renamed-by-hand', Status: 'running' },
        { ReplicationTaskArn: 'arn:other', ReplicationTaskIdentifier: 'someone-else', Status: 'running' },
      ],
    });
    dms.on(ListTagsForResourceCommand).resolves({
      TagList: [
        { ResourceArn: taskArn, Key: 'pgshift:migration', Value: 'calls' },
        { ResourceArn: taskArn, Key: 'pgshift:group', Value: 'g1' },
        { ResourceArn: taskArn, Key: 'pgshift:role', Value: 'task-batch' },
        { ResourceArn: 'arn:other', Key: 'pgshift:migration', Value: 'another-migration' },
      ],
    });
    const found = await findTasks(client, ri, 'calls');
    expect(found.map((f) => [f.task.ReplicationTaskArn, f.group, f.role])).toEqual([[taskArn, 'g1', 'task-batch']]);
    expect(dms.commandCalls(DescribeReplicationTasksCommand)[0].args[0].input).toEqual({ Filters: [{ Name: 'replication-instance-arn', Values: [ri] }], WithoutSettings: true, MaxRecords: 100, Marker: undefined });
    expect(dms.commandCalls(ListTagsForResourceCommand)[0].args[0].input).toEqual({ ResourceArnList: [taskArn, 'arn:other'] });
  });

  it('reuses an endpoint found by identifier, creates it otherwise', async () => {
    dms.on(DescribeEndpointsCommand).rejectsOnce(named('ResourceNotFoundFault', 'no endpoint')).resolves({ Endpoints: [{ EndpointArn: 'arn:ep' }] });
    dms.on(CreateEndpointCommand).resolves({ Endpoint: { EndpointArn: 'arn:ep' } });
    const input = {
      EndpointIdentifier: 'pgshift-calls-g1-source',
      EndpointType: 'source' as const,
      EngineName: 'postgres',
      PostgreSQLSettings: { PluginName: 'pglogical' as const, SlotName: 'pgshift_calls_g1', HeartbeatEnable: true, HeartbeatFrequency: 5, CaptureDdls: false },
    };
    expect(await ensureEndpoint(client, input)).toEqual({ arn: 'arn:ep', created: true });
    expect(await ensureEndpoint(client, input)).toEqual({ arn: 'arn:ep', created: false });
    expect(dms.commandCalls(CreateEndpointCommand)).toHaveLength(1);
    expect(dms.commandCalls(CreateEndpointCommand)[0].args[0].input).toEqual(input);
  });

  it('starts with start-replication and the position; resumes with resume-processing and nothing else', async () => {
    dms.on(StartReplicationTaskCommand).resolves({});
    await startTask(client, taskArn, 'start-replication', '4AF/B00000D0');
    await startTask(client, taskArn, 'resume-processing');
    expect(dms.commandCalls(StartReplicationTaskCommand).map((c) => c.args[0].input)).toEqual([
      { ReplicationTaskArn: taskArn, StartReplicationTaskType: 'start-replication', CdcStartPosition: '4AF/B00000D0' },
      { ReplicationTaskArn: taskArn, StartReplicationTaskType: 'resume-processing' },
    ]);
  });

  it('waits through transitional states with its own poller; a failed task ends the wait with StopReason and the last failure', async () => {
    dms.on(DescribeReplicationTasksCommand)
      .resolvesOnce({ ReplicationTasks: [{ ReplicationTaskArn: taskArn, ReplicationTaskIdentifier: 't', Status: 'creating' }] })
      .resolvesOnce({ ReplicationTasks: [{ ReplicationTaskArn: taskArn, ReplicationTaskIdentifier: 't', Status: 'ready' }] });
    const ready = await waitForTask(client, taskArn, ['ready'], fast);
    expect(ready?.Status).toBe('ready');
    expect(dms.commandCalls(DescribeReplicationTasksCommand)[0].args[0].input).toEqual({ Filters: [{ Name: 'replication-task-arn', Values: [taskArn] }], WithoutSettings: true });
    dms.reset();
    // `ready` just after a start is normal (the SDK's running waiter fails on it); `failed` is not.
    dms.on(DescribeReplicationTasksCommand)
      .resolvesOnce({ ReplicationTasks: [{ ReplicationTaskArn: taskArn, ReplicationTaskIdentifier: 't', Status: 'ready' }] })
      .resolvesOnce({ ReplicationTasks: [{ ReplicationTaskArn: taskArn, ReplicationTaskIdentifier: 't', Status: 'starting' }] })
      .resolves({
        ReplicationTasks: [
          { ReplicationTaskArn: taskArn, ReplicationTaskIdentifier: 't', Status: 'failed', StopReason: 'Stop Reason FATAL_ERROR', LastFailureMessage: 'Error reading the WAL: LSN 35FE3/B63D4718 cannot be found' },
        ],
      });
    await expect(waitForTask(client, taskArn, ['running'], fast)).rejects.toThrow(/DMS task t: status failed; stop reason FATAL_ERROR; last failure: Error reading the WAL: LSN 35FE3\/B63D4718 cannot be found/);
  });

  it('maps AccessDenied and InvalidResourceState to one-line errors with the fix and the right exit codes', async () => {
    dms.on(StartReplicationTaskCommand).rejectsOnce(named('AccessDeniedFault', 'not authorized to perform dms:StartReplicationTask')).rejectsOnce(named('InvalidResourceStateFault', 'task is running'));
    await expect(startTask(client, taskArn, 'resume-processing')).rejects.toMatchObject({ code: 'aws.access-denied', exitCode: 2, message: expect.stringContaining('not authorized') });
    await expect(startTask(client, taskArn, 'resume-processing')).rejects.toMatchObject({ code: 'aws.invalid-state', exitCode: 3 });
  });

  it('reads table statistics page by page at the maximum page size', async () => {
    dms.on(DescribeTableStatisticsCommand)
      .resolvesOnce({ TableStatistics: [{ SchemaName: 'public', TableName: 'a', TableState: 'Table completed' }], Marker: 'next' })
      .resolvesOnce({ TableStatistics: [{ SchemaName: 'public', TableName: 'b', TableState: 'Table error' }] });
    const stats = await tableStatistics(client, taskArn);
    expect(stats.map((s) => s.TableName)).toEqual(['a', 'b']);
    expect(dms.commandCalls(DescribeTableStatisticsCommand).map((c) => c.args[0].input)).toEqual([
      { ReplicationTaskArn: taskArn, MaxRecords: 500, Marker: undefined },
      { ReplicationTaskArn: taskArn, MaxRecords: 500, Marker: 'next' },
    ]);
  });
});

describe('CloudWatch metrics of DMS', () => {
  it('asks for task metrics with the instance name and the task ARN suffix, instance metrics with the name only', async () => {
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: 'm0', Timestamps: [new Date('2026-11-25T10:00:00Z')], Values: [3] }] });
    const now = new Date('2026-11-25T11:00:00Z');
    const series = await metrics(new CloudWatchClient({ region: 'us-east-1' }), 'calls-ri', [taskArn], { minutes: 60, now });
    const input = cw.commandCalls(GetMetricDataCommand)[0].args[0].input;
    expect(input.StartTime).toEqual(new Date('2026-11-25T10:00:00Z'));
    expect(input.EndTime).toEqual(now);
    expect(input.ScanBy).toBe('TimestampAscending');
    const q = input.MetricDataQueries!.map((m) => [m.Id, m.MetricStat!.Metric!.MetricName, m.MetricStat!.Metric!.Dimensions, m.MetricStat!.Period, m.MetricStat!.Stat]);
    const task = [
      { Name: 'ReplicationInstanceIdentifier', Value: 'calls-ri' },
      { Name: 'ReplicationTaskIdentifier', Value: 'ABCDEF123' },
    ];
    const inst = [{ Name: 'ReplicationInstanceIdentifier', Value: 'calls-ri' }];
    expect(q).toEqual([
      ['m0', 'CDCLatencySource', task, 60, 'Maximum'],
      ['m1', 'CDCLatencyTarget', task, 60, 'Maximum'],
      ['m2', 'CDCIncomingChanges', task, 60, 'Maximum'],
      ['m3', 'CPUUtilization', inst, 60, 'Maximum'],
      ['m4', 'FreeableMemory', inst, 60, 'Minimum'],
      ['m5', 'SwapUsage', inst, 60, 'Maximum'],
      ['m6', 'FreeStorageSpace', inst, 60, 'Minimum'],
    ]);
    expect(input.MetricDataQueries!.every((m) => m.MetricStat!.Metric!.Namespace === 'AWS/DMS')).toBe(true);
    expect(series).toEqual([{ key: 'task:ABCDEF123:CDCLatencySource', timestamps: [new Date('2026-11-25T10:00:00Z')], values: [3] }]);
  });
});
