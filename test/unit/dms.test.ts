import { describe, expect, it } from 'vitest';
import { dmsInstanceProblems, dmsTaskHealth, splitByBatchApply, streamTaskPlans, tableMappings, taskIdentifier, taskSettings } from '../../src/core/dms.js';

describe('DMS documents (golden, from the documented JSON)', () => {
  it('table mappings: one explicit selection per table, then table-settings for LOB limits', () => {
    expect(
      tableMappings([
        { schema: 'public', name: 'orders', lob: { mode: 'limited', maxSizeKb: 3072 }, batchApply: true },
        { schema: 'public', name: 'order_items', lob: { mode: 'unlimited', maxSizeKb: 64 }, batchApply: false },
      ]),
    ).toEqual({
      rules: [
        { 'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'include-public-orders', 'object-locator': { 'schema-name': 'public', 'table-name': 'orders' }, 'rule-action': 'include', filters: [] },
        { 'rule-type': 'selection', 'rule-id': '2', 'rule-name': 'include-public-order_items', 'object-locator': { 'schema-name': 'public', 'table-name': 'order_items' }, 'rule-action': 'include', filters: [] },
        { 'rule-type': 'table-settings', 'rule-id': '3', 'rule-name': 'public-orders-lob', 'object-locator': { 'schema-name': 'public', 'table-name': 'orders' }, 'lob-settings': { mode: 'limited', 'bulk-max-size': '3072' } },
        { 'rule-type': 'table-settings', 'rule-id': '4', 'rule-name': 'public-order_items-lob-no-truncation', 'object-locator': { 'schema-name': 'public', 'table-name': 'order_items' }, 'lob-settings': { mode: 'unlimited', 'bulk-max-size': '64' } },
      ],
    });
  });

  it('task settings: the documented minimal CDC-only document, batch apply off', () => {
    const s = taskSettings({ lobMaxSizeKb: 1024, batchApply: false });
    expect(JSON.parse(JSON.stringify(s))).toEqual({
      TargetMetadata: { TargetSchema: '', SupportLobs: true, FullLobMode: false, LobChunkSize: 64, LimitedSizeLobMode: true, LobMaxSize: 1024, InlineLobMaxSize: 0, BatchApplyEnabled: false, TaskRecoveryTableEnabled: true },
      FullLoadSettings: { TargetTablePrepMode: 'DO_NOTHING' },
      Logging: {
        EnableLogging: true,
        LogComponents: [
          { Id: 'SOURCE_CAPTURE', Severity: 'LOGGER_SEVERITY_DEFAULT' },
          { Id: 'TARGET_APPLY', Severity: 'LOGGER_SEVERITY_DEFAULT' },
          { Id: 'SORTER', Severity: 'LOGGER_SEVERITY_DEFAULT' },
          { Id: 'TASK_MANAGER', Severity: 'LOGGER_SEVERITY_DEFAULT' },
        ],
      },
      ControlTablesSettings: { ControlSchema: '', HistoryTimeslotInMinutes: 5, HistoryTableEnabled: true, SuspendedTablesTableEnabled: true, StatusTableEnabled: true },
      ChangeProcessingTuning: { BatchApplyPreserveTransaction: true, BatchApplyTimeoutMin: 1, BatchApplyTimeoutMax: 30, BatchApplyMemoryLimit: 500, BatchSplitSize: 0, MinTransactionSize: 1000, CommitTimeout: 1, MemoryLimitTotal: 1024, MemoryKeepTime: 60, StatementCacheSize: 50 },
      ChangeProcessingDdlHandlingPolicy: { HandleSourceTableDropped: false, HandleSourceTableTruncated: false, HandleSourceTableAltered: false },
      ErrorBehavior: {
        DataErrorPolicy: 'LOG_ERROR', DataTruncationErrorPolicy: 'LOG_ERROR', DataErrorEscalationPolicy: 'SUSPEND_TABLE', DataErrorEscalationCount: 0,
        TableErrorPolicy: 'SUSPEND_TABLE', TableErrorEscalationPolicy: 'STOP_TASK', TableErrorEscalationCount: 0,
        RecoverableErrorCount: -1, RecoverableErrorInterval: 5, RecoverableErrorThrottling: true, RecoverableErrorThrottlingMax: 1800,
        ApplyErrorDeletePolicy: 'IGNORE_RECORD', ApplyErrorInsertPolicy: 'LOG_ERROR', ApplyErrorUpdatePolicy: 'LOG_ERROR',
        ApplyErrorEscalationPolicy: 'LOG_ERROR', ApplyErrorEscalationCount: 0, FullLoadIgnoreConflicts: true,
      },
      ValidationSettings: { EnableValidation: false },
    });
  });

  it('task settings with batch apply suspend tables on data and apply errors', () => {
    const s = taskSettings({ lobMaxSizeKb: 32, batchApply: true }) as { TargetMetadata: { BatchApplyEnabled: boolean }; ErrorBehavior: Record<string, unknown> };
    expect(s.TargetMetadata.BatchApplyEnabled).toBe(true);
    expect(s.ErrorBehavior).toMatchObject({ DataErrorPolicy: 'SUSPEND_TABLE', ApplyErrorInsertPolicy: 'SUSPEND_TABLE', ApplyErrorUpdatePolicy: 'SUSPEND_TABLE' });
  });

  it('a group mixing batch-apply eligibility becomes two tasks; unlimited LOBs are never batched', () => {
    const a = { schema: 's', name: 'a', batchApply: true };
    const b = { schema: 's', name: 'b', batchApply: false };
    const c = { schema: 's', name: 'c', batchApply: true, lob: { mode: 'unlimited' as const, maxSizeKb: 64 } };
    expect(splitByBatchApply([a, b, c])).toEqual([
      { suffix: 'batch', tables: [a], batchApply: true },
      { suffix: 'single', tables: [b, c], batchApply: false },
    ]);
    expect(splitByBatchApply([a])).toEqual([{ suffix: '', tables: [a], batchApply: true }]);
    expect(splitByBatchApply([b])).toEqual([{ suffix: '', tables: [b], batchApply: false }]);
  });

  it('a resumed load: each stream maps exactly the tables it carries, a resume stream is one task of its own', () => {
    const a = { schema: 's', name: 'a', batchApply: true };
    const b = { schema: 's', name: 'b', batchApply: false };
    const c = { schema: 's', name: 'c', batchApply: false };
    const d = { schema: 's', name: 'D', batchApply: true };
    const group = { name: 'g', tables: [a, b, c, d] };
    // Nothing moved: the plan's split, as before.
    expect(streamTaskPlans(group, new Map())).toEqual([
      { suffix: 'batch', stream: 'g_batch', tables: [a, d], batchApply: true },
      { suffix: 'single', stream: 'g', tables: [b, c], batchApply: false },
    ]);
    // A resume moved c and "D" (quoted as displayName spells it) to g_r1, then a second one moved b to g_r2.
    const carried = new Map([
      ['g', []],
      ['g_batch', ['s.a']],
      ['g_r1', ['s.c', 's."D"']],
      ['g_r2', ['s.b']],
    ]);
    expect(streamTaskPlans(group, carried, ['g_r1', 'g_r2'])).toEqual([
      { suffix: 'batch', stream: 'g_batch', tables: [a], batchApply: true },
      { suffix: 'single', stream: 'g', tables: [], batchApply: false },
      // Mixed eligibility in one slot: one task, without batch apply.
      { suffix: 'r1', stream: 'g_r1', tables: [c, d], batchApply: false },
      { suffix: 'r2', stream: 'g_r2', tables: [b], batchApply: false },
    ]);
    // Every table is in exactly one task's mapping.
    const mapped = streamTaskPlans(group, carried, ['g_r1', 'g_r2']).flatMap((t) => t.tables);
    expect(mapped).toHaveLength(4);
    expect(new Set(mapped)).toEqual(new Set([a, b, c, d]));
    expect(streamTaskPlans({ name: 'g', tables: [a, d] }, new Map([['g', ['s.a']], ['g_r1', ['s."D"']]]), ['g_r1'])).toEqual([
      { suffix: '', stream: 'g', tables: [a], batchApply: true },
      { suffix: 'r1', stream: 'g_r1', tables: [d], batchApply: true },
    ]);
  });

  it('task identifiers follow the DMS rules', () => {
    expect(taskIdentifier('calls_db', 'rest', 'batch')).toBe('pgshift-calls-db-rest-batch');
    expect(taskIdentifier('m', 'g__x', '')).toBe('pgshift-m-g-x');
    expect(taskIdentifier('calls_db', 'rest', 'r2')).toBe('pgshift-calls-db-rest-r2');
  });
});

describe('DMS health from measured values', () => {
  const thresholds = { warnLatencySeconds: 60, failLatencySeconds: 600, maxCpuPercent: 90, minFreeStorageBytes: 5 * 1024 ** 3, minFreeableMemoryBytes: 256 * 1024 ** 2, maxSwapBytes: 512 * 1024 ** 2 };
  const task = { status: 'running', paused: false, latencySeconds: 1, erroredTables: [] as string[], group: 'g1' };

  it('a running task under the latency thresholds is ok; over warn it warns; over fail it fails', () => {
    expect(dmsTaskHealth(task, thresholds)).toEqual({ health: 'ok', problems: [] });
    expect(dmsTaskHealth({ ...task, latencySeconds: 60 }, thresholds).health).toBe('ok');
    expect(dmsTaskHealth({ ...task, latencySeconds: 61 }, thresholds)).toEqual({ health: 'warn', problems: ['latency 61 s over 60 s'] });
    expect(dmsTaskHealth({ ...task, latencySeconds: 601 }, thresholds)).toEqual({ health: 'failing', problems: ['latency 601 s over 600 s'] });
  });

  it('a stopped task is paused when the journal paused it, failing otherwise, with the stop reason and the way out', () => {
    expect(dmsTaskHealth({ ...task, status: 'stopped', paused: true }, thresholds)).toEqual({ health: 'paused', problems: [] });
    expect(dmsTaskHealth({ ...task, status: 'stopped', stopReason: 'RECOVERABLE_ERROR', lastFailure: 'boom' }, thresholds)).toEqual({
      health: 'failing',
      problems: ['task is stopped (RECOVERABLE_ERROR): boom — pgshift cdc resume retries it'],
    });
    expect(dmsTaskHealth({ ...task, status: 'missing' }, thresholds).problems).toEqual(['task is missing — pgshift cdc resume retries it']);
    // A paused stream whose task DMS reports failed is failing, not paused.
    expect(dmsTaskHealth({ ...task, status: 'failed', paused: true }, thresholds).health).toBe('failing');
    // A latency warning does not hide a pause.
    expect(dmsTaskHealth({ ...task, status: 'stopped', paused: true, latencySeconds: 61 }, thresholds).health).toBe('paused');
  });

  it('tables in error fail the task and name the partial restart', () => {
    expect(dmsTaskHealth({ ...task, erroredTables: ['shop.a', 'shop.b'] }, thresholds)).toEqual({
      health: 'failing',
      problems: ['tables in error: shop.a, shop.b — pgshift cdc restart --group g1 reloads them'],
    });
  });

  it('the instance: CPU, free storage, and memory only when it also swaps; unreported values are no problem', () => {
    const none = { cpuPercent: null, freeStorageBytes: null, freeableMemoryBytes: null, swapBytes: null };
    expect(dmsInstanceProblems(none, thresholds)).toEqual([]);
    expect(dmsInstanceProblems({ ...none, cpuPercent: 95 }, thresholds)).toEqual(['replication instance CPU 95% over 90%']);
    expect(dmsInstanceProblems({ ...none, freeStorageBytes: 1024 ** 3 }, thresholds)).toEqual(['replication instance free storage 1.0 GB under 5.0 GB']);
    expect(dmsInstanceProblems({ ...none, freeableMemoryBytes: 100 * 1024 ** 2, swapBytes: 0 }, thresholds)).toEqual([]);
    expect(dmsInstanceProblems({ ...none, freeableMemoryBytes: 100 * 1024 ** 2, swapBytes: 600 * 1024 ** 2 }, thresholds)).toEqual(['replication instance is out of memory and swapping (100 MB free, 600 MB swap)']);
  });
});
