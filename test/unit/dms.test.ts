import { describe, expect, it } from 'vitest';
import { splitByBatchApply, tableMappings, taskIdentifier, taskSettings } from '../../src/core/dms.js';

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

  it('task identifiers follow the DMS rules', () => {
    expect(taskIdentifier('calls_db', 'rest', 'batch')).toBe('pgshift-calls-db-rest-batch');
    expect(taskIdentifier('m', 'g__x', '')).toBe('pgshift-m-g-x');
  });
});
