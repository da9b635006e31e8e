import type pg from 'pg';
import type { Plan } from '../config/schema.js';
import { parseServerUrl, toConninfo } from '../config/url.js';
import { streamTaskPlans, type DmsTable, type StreamTaskPlan } from '../core/dms.js';
import { heartbeatTable, publicationName, slotName, subscriptionName } from '../core/names.js';
import type { Journal, StreamRecord } from '../journal/journal.js';
import { CONTROL_SCHEMA, type TableInfo } from '../pg/catalog.js';
import { displayName } from '../core/ident.js';
import { dropReplicationSets, ensurePglogicalNode, ensureReplicationSets, requirePglogical } from '../pg/dms-source.js';
import { createPublication, dropPublication } from '../pg/replication.js';
import { ddlQueueOf, installDdlCapture, requireDdlCapture } from '../pg/ddl.js';
import type { PhaseContext, ResolvedGroup } from './context.js';

/**
 * What a group's change stream needs on the source, per CDC engine, created before the group's
 * snapshot so that the slot's decoding finds it in its catalog snapshot:
 *
 *   native             a publication of the group's tables, its heartbeat table and its DDL queue
 *                      (cdc.ddl follow); slot on pgoutput.
 *   dms/pglogical      the pglogical node and the two replication sets DMS reads (`<slot>`,
 *                      `i<slot>`) with the stream's tables and heartbeat table; slot on pglogical.
 *   dms/test_decoding  nothing more; slot on test_decoding (DMS filters by its table mapping).
 *
 * The heartbeat table (created by the caller for every stream) is in every stream: it gives lag in
 * seconds, the cut-over barrier and verify's "applied past this point" check.
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
  /** The engine's objects of one stream (its heartbeat table exists already). */
  prepare(c: pg.Client, part: StreamPart): Promise<void>;
  /** Drop one stream's objects on a restart (the slot is the caller's); true if any existed. */
  drop(c: pg.Client, record: StreamRecord): Promise<boolean>;
}

/** Journal phase holding the DMS tasks of the migration ({ tasks: DmsTaskState[] }). */
export const DMS_TASKS_PHASE = 'cdc:dms:tasks';

/** The DMS tasks the journal records (cdc-dms.ts owns their shape). */
export async function journaledDmsTasks<T extends { group: string }>(journal: Journal | undefined): Promise<T[]> {
  return ((journal && (await journal.phaseState(DMS_TASKS_PHASE))?.detail) as { tasks?: T[] } | null | undefined)?.tasks ?? [];
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
export function dmsTaskPlans(plan: Plan, group: ResolvedGroup, carried: ReadonlyMap<string, readonly string[]> = new Map(), bridges: readonly string[] = []): StreamTaskPlan[] {
  return streamTaskPlans({ name: group.name, tables: dmsTablesOf(plan, group.tables) }, carried, bridges)
    .map((tp) => ({ ...tp, tables: [...tp.tables, { schema: CONTROL_SCHEMA, name: heartbeatTable(tp.stream), batchApply: tp.batchApply }] }))
    .sort((a, b) => Number(a.stream !== group.name) - Number(b.stream !== group.name)); // the group's own stream first
}

/**
 * Journal phase holding, per DMS stream a resumed full load touched, the tables it carries now
 * ({ streams: { [stream]: schema.table[] } }); a stream without an entry carries what the plan says.
 */
const DMS_CARRIED_PHASE = 'cdc:dms:carried';

export async function dmsCarried(journal: Journal | undefined): Promise<Map<string, string[]>> {
  const detail = (journal && (await journal.phaseState(DMS_CARRIED_PHASE))?.detail) as { streams?: Record<string, string[]> } | null | undefined;
  return new Map(Object.entries(detail?.streams ?? {}));
}

/** Record what streams carry now (null: the stream is gone, or carries what the plan says again). */
export async function setDmsCarried(journal: Journal, changes: Record<string, string[] | null>): Promise<void> {
  const streams = Object.fromEntries(await dmsCarried(journal));
  for (const [stream, tables] of Object.entries(changes)) {
    if (tables) streams[stream] = tables;
    else delete streams[stream];
  }
  await journal.setPhaseDetail(DMS_CARRIED_PHASE, 'done', { streams });
}

export function streamSource(ctx: PhaseContext): StreamSource {
  const { plan } = ctx;
  const single = (group: ResolvedGroup, main: StreamRecord): StreamPart[] => [{ record: main, tables: group.tables }];
  // DDL capture (cdc.ddl) is installed with each stream, before its snapshot, so that no change
  // after the snapshot escapes it.
  const requireDdl = (c: pg.Client) => requireDdlCapture(c, plan, ctx.source.label);
  if (plan.cdc.engine === 'native') {
    return {
      plugin: 'pgoutput',
      require: requireDdl,
      parts: single,
      prepare: async (c, { record, tables }) => {
        await installDdlCapture(c, plan, record);
        await createPublication(c, record.publication, tables, heartbeatTable(record.group), ddlQueueOf(plan, record.group));
      },
      drop: (c, record) => dropPublication(c, record.publication),
    };
  }
  const parts = (group: ResolvedGroup, main: StreamRecord): StreamPart[] => {
    const tasks = dmsTaskPlans(plan, group);
    if (tasks.length === 1) return single(group, main);
    const tablesOf = (tp: StreamTaskPlan) => {
      const names = new Set(tp.tables.map(displayName));
      return group.tables.filter((t) => names.has(displayName(t)));
    };
    const [own, ...companions] = tasks;
    return [
      { record: main, tables: tablesOf(own) },
      ...companions.map((tp) => ({ record: { ...newStreamRecord(plan, tp.stream), snapshotMode: main.snapshotMode, snapshotLsn: main.snapshotLsn, state: main.state }, tables: tablesOf(tp) })),
    ];
  };
  if (plan.cdc.dms.plugin === 'test_decoding') {
    return {
      plugin: 'test_decoding',
      require: requireDdl,
      parts,
      prepare: (c, { record }) => installDdlCapture(c, plan, record),
      drop: async () => false,
    };
  }
  return {
    plugin: 'pglogical',
    require: async (c) => {
      await requirePglogical(c, ctx.source.label);
      await requireDdl(c);
    },
    parts,
    prepare: async (c, { record, tables }) => {
      await installDdlCapture(c, plan, record);
      // pglogical keeps the node's DSN for its own subscribers; DMS never reads it. No password.
      await ensurePglogicalNode(c, toConninfo(parseServerUrl(plan.source.url), { withPassword: false }));
      const heartbeat = { schema: CONTROL_SCHEMA, name: heartbeatTable(record.group), primaryKey: ['group_name'] };
      await ensureReplicationSets(c, record.slot, [...tables, heartbeat], ctx.log);
    },
    drop: (c, record) => dropReplicationSets(c, record.slot),
  };
}
