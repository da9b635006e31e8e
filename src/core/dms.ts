import { displayName } from './ident.js';
import { batchStreamName } from './names.js';
import { formatBytes } from './size.js';

/**
 * AWS DMS request documents for CDC-only tasks, as pure functions (no SDK, no I/O), so that every
 * byte sent to DMS is decided here and checked by golden tests against the documented JSON
 * (shared/reference/aws-dms.md §3–4, the DMS User Guide's table-mapping and task-settings pages).
 */
export interface DmsTable {
  schema: string;
  name: string;
  /** Per-table LOB handling from the assessment: limited with a size, or unlimited (no truncation). */
  lob?: { mode: 'limited' | 'unlimited'; maxSizeKb: number };
  batchApply: boolean;
}

export interface TableMappingRule {
  'rule-type': 'selection' | 'table-settings';
  'rule-id': string;
  'rule-name': string;
  'object-locator': { 'schema-name': string; 'table-name': string };
  'rule-action'?: 'include' | 'explicit';
  filters?: unknown[];
  'lob-settings'?: { mode: 'limited' | 'unlimited'; 'bulk-max-size': string };
}

/**
 * One explicit selection per table (never a wildcard: the task must carry exactly the tables of
 * its slot's replication sets — partition leaves, not parents), then a table-settings rule for each
 * table whose LOBs need their own limit. Rule ids are strings of unique numbers; names are unique.
 */
export function tableMappings(tables: DmsTable[]): { rules: TableMappingRule[] } {
  const rules: TableMappingRule[] = [];
  let id = 1;
  const slug = (t: DmsTable) => `${t.schema}-${t.name}`.replace(/[^A-Za-z0-9_-]/g, '_');
  for (const t of tables) {
    rules.push({
      'rule-type': 'selection',
      'rule-id': String(id++),
      'rule-name': `include-${slug(t)}`,
      'object-locator': { 'schema-name': t.schema, 'table-name': t.name },
      'rule-action': 'include',
      filters: [],
    });
  }
  for (const t of tables) {
    if (!t.lob) continue;
    rules.push({
      'rule-type': 'table-settings',
      'rule-id': String(id++),
      'rule-name': `${slug(t)}-lob${t.lob.mode === 'unlimited' ? '-no-truncation' : ''}`,
      'object-locator': { 'schema-name': t.schema, 'table-name': t.name },
      // Unlimited mode with a non-zero bulk-max-size is what the reference migration used.
      'lob-settings': { mode: t.lob.mode, 'bulk-max-size': String(t.lob.maxSizeKb) },
    });
  }
  return { rules };
}

export interface TaskSettingsOptions {
  lobMaxSizeKb: number;
  batchApply: boolean;
}

/**
 * CDC-only task settings: TargetTablePrepMode DO_NOTHING (the full load is pgshift's), limited LOB
 * mode at the task's size, control tables on (status, suspended tables, history), the capture and
 * apply log components, the documented error policies — SUSPEND_TABLE for data and apply errors when
 * batch apply is on, as the TargetMetadata documentation asks — and BatchApplyEnabled only when
 * every table of the task is eligible.
 */
// Long on purpose: one literal settings document, laid out as DMS documents it.
export function taskSettings(o: TaskSettingsOptions): Record<string, unknown> {
  const onError = o.batchApply ? 'SUSPEND_TABLE' : 'LOG_ERROR';
  return {
    TargetMetadata: {
      TargetSchema: '',
      SupportLobs: true,
      FullLobMode: false,
      LobChunkSize: 64,
      LimitedSizeLobMode: true,
      LobMaxSize: o.lobMaxSizeKb,
      InlineLobMaxSize: 0,
      BatchApplyEnabled: o.batchApply,
      TaskRecoveryTableEnabled: true,
    },
    FullLoadSettings: { TargetTablePrepMode: 'DO_NOTHING' },
    Logging: {
      EnableLogging: true,
      LogComponents: ['SOURCE_CAPTURE', 'TARGET_APPLY', 'SORTER', 'TASK_MANAGER'].map((Id) => ({ Id, Severity: 'LOGGER_SEVERITY_DEFAULT' })),
    },
    ControlTablesSettings: {
      ControlSchema: '',
      HistoryTimeslotInMinutes: 5,
      HistoryTableEnabled: true,
      SuspendedTablesTableEnabled: true,
      StatusTableEnabled: true,
    },
    ChangeProcessingTuning: {
      BatchApplyPreserveTransaction: true,
      BatchApplyTimeoutMin: 1,
      BatchApplyTimeoutMax: 30,
      BatchApplyMemoryLimit: 500,
      BatchSplitSize: 0,
      MinTransactionSize: 1000,
      CommitTimeout: 1,
      MemoryLimitTotal: 1024,
      MemoryKeepTime: 60,
      StatementCacheSize: 50,
    },
    ChangeProcessingDdlHandlingPolicy: { HandleSourceTableDropped: false, HandleSourceTableTruncated: false, HandleSourceTableAltered: false },
    ErrorBehavior: {
      DataErrorPolicy: onError,
      DataTruncationErrorPolicy: onError,
      DataErrorEscalationPolicy: 'SUSPEND_TABLE',
      DataErrorEscalationCount: 0,
      TableErrorPolicy: 'SUSPEND_TABLE',
      TableErrorEscalationPolicy: 'STOP_TASK',
      TableErrorEscalationCount: 0,
      RecoverableErrorCount: -1,
      RecoverableErrorInterval: 5,
      RecoverableErrorThrottling: true,
      RecoverableErrorThrottlingMax: 1800,
      ApplyErrorDeletePolicy: 'IGNORE_RECORD',
      ApplyErrorInsertPolicy: onError,
      ApplyErrorUpdatePolicy: onError,
      ApplyErrorEscalationPolicy: 'LOG_ERROR',
      ApplyErrorEscalationCount: 0,
      FullLoadIgnoreConflicts: true,
    },
    ValidationSettings: { EnableValidation: false },
  };
}

export interface TaskPlan {
  /** Suffix of the task identifier: '' for a single task, 'batch' / 'single' when a group is split. */
  suffix: '' | 'batch' | 'single';
  tables: DmsTable[];
  batchApply: boolean;
}

/**
 * A group mixing tables that may and may not use batch apply becomes two tasks; batch apply with
 * LOBs is allowed only in limited mode, so a table with unlimited LOBs is never batched.
 */
const batchEligible = (t: DmsTable) => t.batchApply && t.lob?.mode !== 'unlimited';

export function splitByBatchApply(tables: DmsTable[]): TaskPlan[] {
  const batch = tables.filter(batchEligible);
  const single = tables.filter((t) => !batchEligible(t));
  if (batch.length && single.length) {
    return [
      { suffix: 'batch', tables: batch, batchApply: true },
      { suffix: 'single', tables: single, batchApply: false },
    ];
  }
  return [{ suffix: '', tables, batchApply: single.length === 0 && batch.length > 0 }];
}

/** One DMS task of a group: the stream (slot) it reads and the tables of its table mapping. */
export interface StreamTaskPlan {
  stream: string;
  /** Suffix of its identifier and role: '', 'batch' / 'single', or a resume stream's 'r<n>'. */
  suffix: string;
  tables: DmsTable[];
  batchApply: boolean;
}

/**
 * The tasks of a group's streams once a resumed full load has moved tables between them
 * (phases/load-resume.ts). `carried` holds, for each stream a resume touched, the tables it carries
 * now (schema.table as displayName spells them): a planned stream (the group's own, its batch
 * companion) keeps only those; each resume stream (`bridges`, `<group>_r<n>`) becomes one task of
 * its own tables, with batch apply only when every one of them may (two tasks cannot read one
 * slot, so a resume stream is never split). A table is in exactly one task's mapping: that mapping
 * is what keeps a slot's changes of a moved table from ever being applied by the old stream's task.
 */
export function streamTaskPlans(
  group: { name: string; tables: DmsTable[] },
  carried: ReadonlyMap<string, readonly string[]>,
  bridges: readonly string[] = [],
): StreamTaskPlan[] {
  const nameOf = displayName;
  const planned = splitByBatchApply(group.tables).map((tp) => ({ ...tp, stream: tp.suffix === 'batch' ? batchStreamName(group.name) : group.name }));
  const only = (stream: string, tables: DmsTable[]) => {
    const keep = carried.get(stream);
    return keep ? tables.filter((t) => keep.includes(nameOf(t))) : tables;
  };
  const tasks: StreamTaskPlan[] = planned.map((tp) => ({ ...tp, tables: only(tp.stream, tp.tables) }));
  for (const stream of bridges) {
    const tables = group.tables.filter((t) => (carried.get(stream) ?? []).includes(nameOf(t)));
    tasks.push({ stream, suffix: stream.slice(group.name.length + 1), tables, batchApply: tables.length > 0 && tables.every(batchEligible) });
  }
  return tasks;
}

/** DMS identifiers: letters, digits and hyphens, starting with a letter, no double or trailing hyphen, ≤ 255. */
export function taskIdentifier(migration: string, group: string, suffix: string): string {
  const raw = ['pgshift', migration, group, suffix].filter(Boolean).join('-');
  const id = raw.replace(/[^A-Za-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  return (/^[A-Za-z]/.test(id) ? id : `t-${id}`).slice(0, 255).replace(/-$/, '');
}

/** The thresholds of cdc.dms.thresholds that the health rules below compare against. */
export interface DmsThresholds {
  warnLatencySeconds: number;
  failLatencySeconds: number;
  maxCpuPercent: number;
  minFreeStorageBytes: number;
  minFreeableMemoryBytes: number;
  maxSwapBytes: number;
}

export type DmsTaskHealth = 'ok' | 'warn' | 'failing' | 'paused';

/**
 * A task's health from what was measured: its DMS status (a stopped task the journal says was
 * paused is paused, not failing), its latency (CloudWatch source + target latency, or the heartbeat
 * lag when that is larger) and its tables in error. Each problem names the way out.
 */
export function dmsTaskHealth(
  m: { status: string; stopReason?: string; lastFailure?: string; paused: boolean; latencySeconds: number; erroredTables: string[]; group: string },
  thresholds: DmsThresholds,
): { health: DmsTaskHealth; problems: string[] } {
  const problems: string[] = [];
  let health: DmsTaskHealth = m.paused && m.status === 'stopped' ? 'paused' : 'ok';
  if (m.status !== 'running' && health !== 'paused') {
    problems.push(`task is ${m.status}${m.stopReason ? ` (${m.stopReason})` : ''}${m.lastFailure ? `: ${m.lastFailure}` : ''} — pgshift cdc resume retries it`);
    health = 'failing';
  }
  if (m.latencySeconds > thresholds.failLatencySeconds) {
    problems.push(`latency ${m.latencySeconds.toFixed(0)} s over ${thresholds.failLatencySeconds} s`);
    health = 'failing';
  } else if (m.latencySeconds > thresholds.warnLatencySeconds) {
    problems.push(`latency ${m.latencySeconds.toFixed(0)} s over ${thresholds.warnLatencySeconds} s`);
    if (health === 'ok') health = 'warn';
  }
  if (m.erroredTables.length) {
    problems.push(`tables in error: ${m.erroredTables.join(', ')} — pgshift cdc restart --group ${m.group} reloads them`);
    health = 'failing';
  }
  return { health, problems };
}

/** The replication instance's problems from its last CloudWatch values (null: not reported). */
export function dmsInstanceProblems(
  m: { cpuPercent: number | null; freeStorageBytes: number | null; freeableMemoryBytes: number | null; swapBytes: number | null },
  thresholds: DmsThresholds,
): string[] {
  const problems: string[] = [];
  if (m.cpuPercent !== null && m.cpuPercent > thresholds.maxCpuPercent) problems.push(`replication instance CPU ${m.cpuPercent.toFixed(0)}% over ${thresholds.maxCpuPercent}%`);
  if (m.freeStorageBytes !== null && m.freeStorageBytes < thresholds.minFreeStorageBytes) {
    problems.push(`replication instance free storage ${formatBytes(m.freeStorageBytes)} under ${formatBytes(thresholds.minFreeStorageBytes)}`);
  }
  // Low memory alone is normal for a busy instance; low memory while it swaps is not.
  if (m.freeableMemoryBytes !== null && m.swapBytes !== null && m.freeableMemoryBytes < thresholds.minFreeableMemoryBytes && m.swapBytes > thresholds.maxSwapBytes) {
    problems.push(`replication instance is out of memory and swapping (${formatBytes(m.freeableMemoryBytes)} free, ${formatBytes(m.swapBytes)} swap)`);
  }
  return problems;
}
