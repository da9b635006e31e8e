import type pg from 'pg';
import type { Plan } from '../config/schema.js';
import { parseServerUrl, toConninfo } from '../config/url.js';
import { splitByBatchApply, type DmsTable, type TaskPlan } from '../core/dms.js';
import { batchStreamName, heartbeatTable, publicationName, slotName, subscriptionName } from '../core/names.js';
import type { Journal, StreamRecord } from '../journal/journal.js';
import { CONTROL_SCHEMA, type TableInfo } from '../pg/catalog.js';
import { dropPglogicalNodeIfUnused, dropReplicationSets, ensurePglogicalNode, ensureReplicationSets, requirePglogical } from '../pg/dms-source.js';
import { createPublication, dropPublication, ensureHeartbeat } from '../pg/replication.js';
import type { PhaseContext, ResolvedGroup } from './context.js';

/**
 * What a group's change stream needs on the source, per CDC engine, created before the group's
 * snapshot so that the slot's decoding finds it in its catalog snapshot:
 *
 *   native             a publication of the group's tables and its heartbeat table; slot on pgoutput.
 *   dms/pglogical      the pglogical node and the two replication sets DMS reads (`<slot>`,
 *                      `i<slot>`) with the stream's tables and heartbeat table; slot on pglogical.
 *   dms/test_decoding  the heartbeat table; slot on test_decoding (DMS filters by its table mapping).
 *
 * The heartbeat table is in every stream: it gives lag in seconds, the cut-over barrier and
 * verify's "applied past this point" check.
 *
 * On DMS a group whose tables mix batch-apply eligibility runs as two tasks, and two tasks cannot
 * read one slot: the batch-apply tables then form a second stream of the group (its own slot, sets
 * and heartbeat), whose slot is created before the group's snapshot so that both tasks can start
 * at the snapshot's LSN (a start position only has to be at or after the slot's confirmed_flush_lsn).
 */
export interface StreamPart {
  record: StreamRecord;
  tables: TableInfo[];
}

export interface StreamSource {
  /** Output plugin of the group's slots. */
  plugin: string;
  /** Refuse (exit 3, nothing changed) when the source cannot carry this engine's stream. */
  require(c: pg.Client): Promise<void>;
  /** The group's streams, its own first; companions mirror its snapshot LSN and state. */
  parts(group: ResolvedGroup, main: StreamRecord): StreamPart[];
  prepare(c: pg.Client, part: StreamPart): Promise<void>;
  /** Drop one stream's objects (a restart, teardown; the slot is the caller's); true if any existed. */
  drop(c: pg.Client, record: StreamRecord): Promise<boolean>;
  /** After every stream's objects are dropped (teardown); true if anything existed. */
  dropShared(c: pg.Client): Promise<boolean>;
}

/** Journal phase holding the DMS tasks of the migration ({ tasks: DmsTaskState[] }). */
export const DMS_TASKS_PHASE = 'cdc:dms:tasks';

/** Groups that have DMS tasks according to the journal. */
export async function groupsWithDmsTasks(journal: Journal): Promise<Set<string>> {
  const tasks = ((await journal.phaseState(DMS_TASKS_PHASE))?.detail as { tasks?: Array<{ group: string }> } | null | undefined)?.tasks ?? [];
  return new Set(tasks.map((t) => t.group));
}

/** A stream record whose object names derive from the plan. */
export function newStreamRecord(plan: Plan, group: string): StreamRecord {
  return {
    group,
    slot: slotName(plan.name, group),
    publication: publicationName(plan.name, group),
    subscription: subscriptionName(plan.name, group),
    snapshotMode: plan.snapshot,
    snapshotLsn: null,
    state: 'preparing',
  };
}

/** The group's tables as DMS sees them, with the per-table settings the assessment wrote into the plan. */
export function dmsTablesOf(plan: Plan, tables: Array<{ schema: string; name: string }>): DmsTable[] {
  return tables.map((t) => {
    const s = plan.tables[`${t.schema}.${t.name}`] ?? {};
    return {
      schema: t.schema,
      name: t.name,
      lob: s.lobMode ? { mode: s.lobMode, maxSizeKb: s.lobMaxSizeKb ?? plan.cdc.dms.lobMaxSizeKb } : undefined,
      batchApply: s.batchApply ?? false,
    };
  });
}

/** The DMS tasks of a group, each with the stream (slot) it reads; its heartbeat table is in its mapping. */
export function dmsTaskPlans(plan: Plan, group: ResolvedGroup): Array<TaskPlan & { stream: string }> {
  return splitByBatchApply(dmsTablesOf(plan, group.tables))
    .map((tp) => {
      const stream = tp.suffix === 'batch' ? batchStreamName(group.name) : group.name;
      return { ...tp, stream, tables: [...tp.tables, { schema: CONTROL_SCHEMA, name: heartbeatTable(stream), batchApply: tp.batchApply }] };
    })
    .sort((a, b) => Number(a.stream !== group.name) - Number(b.stream !== group.name)); // the group's own stream first
}

const heartbeatOf = (record: StreamRecord) => ({
  schema: CONTROL_SCHEMA,
  name: heartbeatTable(record.group),
  primaryKey: ['group_name'],
});

export function streamSource(ctx: PhaseContext): StreamSource {
  const { plan } = ctx;
  const single = (group: ResolvedGroup, main: StreamRecord): StreamPart[] => [{ record: main, tables: group.tables }];
  if (plan.cdc.engine === 'native') {
    return {
      plugin: 'pgoutput',
      require: async () => {},
      parts: single,
      prepare: async (c, { record, tables }) => {
        const hb = heartbeatTable(record.group);
        await ensureHeartbeat(c, hb, record.group);
        await createPublication(c, record.publication, tables, hb);
      },
      drop: (c, record) => dropPublication(c, record.publication),
      dropShared: async () => false,
    };
  }
  const parts = (group: ResolvedGroup, main: StreamRecord): StreamPart[] => {
    const tasks = dmsTaskPlans(plan, group);
    if (tasks.length === 1) return single(group, main);
    const tablesOf = (tp: TaskPlan) => group.tables.filter((t) => tp.tables.some((x) => x.schema === t.schema && x.name === t.name));
    const [own, ...companions] = tasks;
    return [
      { record: main, tables: tablesOf(own) },
      ...companions.map((tp) => ({ record: { ...newStreamRecord(plan, tp.stream), snapshotMode: main.snapshotMode, snapshotLsn: main.snapshotLsn, state: main.state }, tables: tablesOf(tp) })),
    ];
  };
  if (plan.cdc.dms.plugin === 'test_decoding') {
    return {
      plugin: 'test_decoding',
      require: async () => {},
      parts,
      prepare: (c, { record }) => ensureHeartbeat(c, heartbeatTable(record.group), record.group),
      drop: async () => false,
      dropShared: async () => false,
    };
  }
  return {
    plugin: 'pglogical',
    require: (c) => requirePglogical(c, ctx.source.label),
    parts,
    prepare: async (c, { record, tables }) => {
      await ensureHeartbeat(c, heartbeatTable(record.group), record.group);
      // pglogical keeps the node's DSN for its own subscribers; DMS never reads it. No password.
      await ensurePglogicalNode(c, toConninfo(parseServerUrl(plan.source.url), { withPassword: false }));
      await ensureReplicationSets(c, record.slot, [...tables, heartbeatOf(record)], ctx.log);
    },
    drop: (c, record) => dropReplicationSets(c, record.slot),
    dropShared: (c) => dropPglogicalNodeIfUnused(c),
  };
}
