import type pg from 'pg';
import { gateRefused } from '../core/errors.js';
import { displayName, qualify, quoteIdent } from '../core/ident.js';
import { formatLsn } from '../core/lsn.js';
import { heartbeatTable, publicationName, slotName, subscriptionName } from '../core/names.js';
import { runPool } from '../core/pool.js';
import { blockBounds, keyBounds, partCondition, partCount, type PartPlan } from '../core/parts.js';
import { Journal, progressSql, S, type StreamRecord } from '../journal/journal.js';
import { copyColumns, type TableInfo } from '../pg/catalog.js';
import { connect, endpointFor, majorOf, type Endpoint } from '../pg/connect.js';
import { PausedReplica } from '../pg/paused-replica.js';
import { copyLargeObjects } from '../pg/large-objects.js';
import { copyTable } from '../pg/copy.js';
import { createPublication, dropPublication, ensureHeartbeat } from '../pg/replication.js';
import { dumpSchema, restoreSection, type SchemaDump } from '../pg/schema.js';
import { syncSequences } from '../pg/sequences.js';
import { dropSlot, importSnapshot, SnapshotHolder } from '../pg/snapshot.js';
import { findTool, requireDumpForSource } from '../pg/tools.js';
import { openSessions, requireLogicalSource, resolveGroups, type PhaseContext, type ResolvedGroup, type Sessions } from './context.js';

/**
 * Full load: a consistent copy of each group at a known LSN.
 *
 *   per group: heartbeat table + publication (before the slot, so the slot's decoding finds the
 *   publication in its catalog snapshot) → slot with an exported snapshot (L = consistent point) →
 *   schema pre-data from pg_dump inside that snapshot → every table streamed with COPY by a pool of
 *   workers that import the snapshot, largest first, each table's rows and its journal row committed
 *   in one target transaction → when every group is loaded: post-data (indexes, constraints, FKs),
 *   sequences, ANALYZE.
 */
export interface FullLoadOptions {
  group?: string;
  /** Drop the group's slot and rows on the target and load it again from a new snapshot. */
  restart?: boolean;
}

export interface GroupLoadResult {
  group: string;
  slot: string;
  publication: string;
  snapshotLsn: string;
  tables: number;
  rows: number;
  bytes: number;
  skipped: number;
}

export interface FullLoadResult {
  groups: GroupLoadResult[];
  rows: number;
  bytes: number;
  seconds: number;
  rowsPerSecond: number;
  postData: 'done' | 'waiting-for-groups' | 'already-done';
  sequences: number;
}

const PRE_DATA = 'full-load:pre-data';
const LARGE_OBJECTS = 'full-load:large-objects';

/**
 * Where and how the rows are read: from the source inside the slot's exported snapshot, or from
 * the paused replica (static at its replay position) in a plain repeatable-read transaction.
 */
interface ReadPoint {
  endpoint: Endpoint;
  lsnText: string;
  /** For pg_dump --snapshot (exported mode only). */
  snapshotName?: string;
  begin(c: pg.Client): Promise<void>;
  /** Throws when the load must stop (paused replica over its WAL limit). */
  check(): void;
}

function exportedPoint(ctx: PhaseContext, holder: SnapshotHolder): ReadPoint {
  return { endpoint: ctx.source, lsnText: holder.lsnText, snapshotName: holder.snapshotName, begin: (c) => importSnapshot(c, holder.snapshotName), check: () => {} };
}
const POST_DATA = 'full-load:post-data';

export async function runFullLoad(ctx: PhaseContext, options: FullLoadOptions = {}): Promise<FullLoadResult> {
  const started = Date.now();
  const { plan, log } = ctx;
  const s = await openSessions(ctx);
  const holders: SnapshotHolder[] = [];
  let paused: PausedReplica | undefined;
  let dump: SchemaDump | undefined;
  try {
    // Everything that can refuse does so before anything is created on either server.
    await requireLogicalSource(s, ctx);
    const dumpTool = await findTool('pg_dump', plan.fullLoad.pgBinDir);
    requireDumpForSource(dumpTool, majorOf(s.sourceVersion));
    const restoreTool = await findTool('pg_restore', plan.fullLoad.pgBinDir);
    const groups = await resolveGroups(ctx, s.source, s.sourceVersion, options.group);
    await requireFreeSlots(s, ctx, groups.length);

    const journal = await Journal.open(s.target, plan.name, {
      source: ctx.source.label,
      target: ctx.target.label,
      sourceVersion: s.sourceVersion,
      targetVersion: s.targetVersion,
    });
    await journal.startPhase('full-load', { groups: groups.map((g) => g.name) });

    const preDataDone = (await journal.phaseState(PRE_DATA))?.state === 'done';
    if (!preDataDone) await requireEmptyTarget(s, ctx, groups);

    const existing = new Map((await journal.streams()).map((r) => [r.group, r]));
    const results: GroupLoadResult[] = [];
    const toLoad: Array<{ group: ResolvedGroup; record: StreamRecord; point?: ReadPoint }> = [];
    const pausedMode = plan.snapshot === 'paused-replica';
    for (const group of groups) {
      const prior = existing.get(group.name);
      if (prior && prior.state !== 'preparing' && prior.state !== 'loading' && !options.restart) {
        log.info(`group ${group.name}: already loaded at ${prior.snapshotLsn} (state ${prior.state}); nothing to do`);
        results.push({ group: group.name, slot: prior.slot, publication: prior.publication, snapshotLsn: prior.snapshotLsn ?? '', tables: group.tables.length, rows: 0, bytes: 0, skipped: group.tables.length });
        continue;
      }
      if (prior && !options.restart) {
        throw gateRefused(
          'full-load.interrupted',
          `group ${group.name}: an earlier full load stopped while ${prior.state}; its exported snapshot ended with that process`,
          `run pgshift full-load --restart${options.group ? ` --group ${group.name}` : ''} to load the group again from a new slot`,
        );
      }
      if (options.restart || prior) await resetGroup(s, ctx, journal, group, prior);
      const record: StreamRecord = {
        group: group.name,
        slot: slotName(plan.name, group.name),
        publication: publicationName(plan.name, group.name),
        subscription: subscriptionName(plan.name, group.name),
        snapshotMode: plan.snapshot,
        snapshotLsn: null,
        state: 'preparing',
      };
      await journal.saveStream(record);
      const hb = heartbeatTable(group.name);
      await ensureHeartbeat(s.source, hb, group.name);
      await createPublication(s.source, record.publication, group.tables, hb);
      if (pausedMode) {
        // Slots first, on the primary; the replica is paused once they all exist.
        const exists = await s.source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [record.slot]);
        if (!exists.rowCount) await s.source.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [record.slot]);
        toLoad.push({ group, record });
        continue;
      }
      const holder = await SnapshotHolder.createSlot(ctx.source, record.slot, 'pgoutput', s.sourceVersion);
      holders.push(holder);
      record.snapshotLsn = holder.lsnText;
      record.state = 'loading';
      await journal.saveStream(record);
      await journal.event('full-load', 'info', `group ${group.name}: slot ${record.slot} at ${holder.lsnText}, snapshot ${holder.snapshotName}`);
      log.info(`group ${group.name}: slot ${record.slot} created, snapshot at LSN ${formatLsn(holder.lsn)}`);
      toLoad.push({ group, record, point: exportedPoint(ctx, holder) });
    }
    if (pausedMode && toLoad.length > 0) {
      const replicaEp = endpointFor('replica', { url: plan.source.replicaUrl!, tls: plan.source.tls });
      paused = await PausedReplica.pause(replicaEp, s.source, toLoad.map((x) => x.record.slot), plan.fullLoad.pausedReplica, log);
      const p = paused;
      const point: ReadPoint = { endpoint: replicaEp, lsnText: p.lsn, begin: (c) => c.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY').then(() => {}), check: () => p.check() };
      for (const x of toLoad) {
        x.point = point;
        x.record.snapshotLsn = p.lsn;
        x.record.state = 'loading';
        await journal.saveStream(x.record);
        await journal.event('full-load', 'info', `group ${x.group.name}: slot ${x.record.slot}, replica paused at ${p.lsn}`);
      }
    }

    if (toLoad.length > 0 && !preDataDone) {
      await withStepLock(s.target, PRE_DATA, async () => {
        if ((await journal.phaseState(PRE_DATA))?.state === 'done') return;
        log.info('schema: restoring pre-data (types, tables, functions) on the target');
        dump ??= await dumpSchema(dumpTool, toLoad[0].point!.endpoint, toLoad[0].point!.snapshotName);
        await restoreSection(restoreTool, ctx.target, dump, 'pre-data', { jobs: 1, keepOwnership: plan.fullLoad.ownership === 'keep' });
        await journal.finishPhase(PRE_DATA, 'done');
      });
    }
    for (const { group } of toLoad) await ensureHeartbeat(s.target, heartbeatTable(group.name), group.name);

    const progress = new CopyProgress(log, toLoad.reduce((n, g) => n + g.group.tables.reduce((b, t) => b + t.bytes, 0), 0));
    // Reloading after post-data (a restart): foreign keys exist, so rows are deleted, not truncated.
    const clear = (await journal.phaseState(POST_DATA))?.state === 'done' ? 'delete' : 'truncate';
    for (const { group, record, point } of toLoad) {
      const r = await loadGroup(ctx, journal, group, point!, progress, clear);
      record.state = 'loaded';
      await journal.saveStream(record);
      results.push({ group: group.name, slot: record.slot, publication: record.publication, snapshotLsn: point!.lsnText, tables: group.tables.length, ...r });
    }
    progress.stop();
    // Large objects belong to no group: the first job to get here copies them, inside its snapshot.
    if (toLoad.length > 0 && (await journal.phaseState(LARGE_OBJECTS))?.state !== 'done') {
      await withStepLock(s.target, LARGE_OBJECTS, async () => {
        if ((await journal.phaseState(LARGE_OBJECTS))?.state === 'done') return;
        const point = toLoad[0].point!;
        const reader = await connect(point.endpoint, { applicationName: 'pgshift large objects' });
        try {
          await point.begin(reader);
          const lo = await copyLargeObjects(reader, s.target, plan.fullLoad.ownership === 'keep');
          await reader.query('COMMIT');
          if (lo.objects) log.info(`large objects: ${lo.objects} copied (${lo.bytes} bytes)`);
          await journal.finishPhase(LARGE_OBJECTS, 'done', lo);
        } finally {
          await reader.end().catch(() => {});
        }
      });
    }
    for (const h of holders.splice(0)) await h.release();
    await paused?.resume();

    // Post-data waits until every group of the plan is loaded: foreign keys cross groups.
    let postData: FullLoadResult['postData'] = 'already-done';
    let sequences = 0;
    const allLoaded = await everyGroupLoaded(journal, plan.groups.map((g) => g.name));
    if ((await journal.phaseState(POST_DATA))?.state !== 'done') {
      postData = 'waiting-for-groups';
      if (allLoaded) {
        await withStepLock(s.target, POST_DATA, async () => {
          if ((await journal.phaseState(POST_DATA))?.state === 'done') return;
          log.info('schema: building indexes, constraints, triggers and foreign keys (post-data)');
          dump ??= await dumpSchema(dumpTool, ctx.source, undefined);
          await restoreSection(restoreTool, ctx.target, dump, 'post-data', { jobs: plan.fullLoad.jobs, keepOwnership: plan.fullLoad.ownership === 'keep' });
          sequences = (await syncSequences(s.source, s.target)).length;
          await refreshMaterializedViews(s, log);
          log.info(`sequences: ${sequences} set from the source`);
          await s.target.query('ANALYZE');
          await journal.finishPhase(POST_DATA, 'done');
          postData = 'done';
        });
      } else {
        log.info('post-data waits until every group of the plan is loaded');
      }
    }

    const rows = results.reduce((n, r) => n + r.rows, 0);
    const bytes = results.reduce((n, r) => n + r.bytes, 0);
    const seconds = (Date.now() - started) / 1000;
    const result: FullLoadResult = { groups: results, rows, bytes, seconds, rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : rows, postData, sequences };
    await journal.finishPhase('full-load', allLoaded ? 'done' : 'partial', result);
    return result;
  } finally {
    // Whatever happened, the replica replays again and the snapshots are let go.
    await paused?.resume();
    for (const h of holders) await h.release();
    dump?.dispose();
    await s.close();
  }
}

interface CopyTask {
  table: TableInfo;
  /** 0 for a whole table; 1…n for the parts of a split one. */
  part: number;
  where?: string;
}

/**
 * The copy tasks of a group, largest first: whole tables, and the parts of the tables above
 * fullLoad.splitTablesLargerThan (key ranges, or block ranges without an integer key).
 */
async function planTasks(ctx: PhaseContext, c: pg.Client, tables: TableInfo[]): Promise<{ tasks: CopyTask[]; split: TableInfo[] }> {
  const { splitTablesLargerThan, maxPartsPerTable } = ctx.plan.fullLoad;
  const tasks: CopyTask[] = [];
  const split: TableInfo[] = [];
  for (const t of tables) {
    const n = partCount(t.bytes, splitTablesLargerThan, maxPartsPerTable);
    let plan: PartPlan = { kind: 'whole' };
    const pk = t.primaryKey.length === 1 ? t.columns.find((col) => col.name === t.primaryKey[0]) : undefined;
    if (n > 1 && pk && ['smallint', 'integer', 'bigint'].includes(pk.type)) {
      const r = await c.query<{ lo: string | null; hi: string | null }>(`SELECT min(${quoteIdent(pk.name)})::text AS lo, max(${quoteIdent(pk.name)})::text AS hi FROM ONLY ${qualify(t)}`);
      if (r.rows[0].lo !== null) plan = { kind: 'key', column: pk.name, type: pk.type, bounds: keyBounds(BigInt(r.rows[0].lo), BigInt(r.rows[0].hi!), n) };
    } else if (n > 1) {
      const r = await c.query<{ blocks: string }>(`SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::text AS blocks`, [qualify(t)]);
      plan = { kind: 'ctid', bounds: blockBounds(Number(r.rows[0].blocks), n) };
    }
    if (plan.kind === 'whole' || plan.bounds.length === 0) {
      tasks.push({ table: t, part: 0 });
      continue;
    }
    split.push(t);
    for (let i = 0; i <= plan.bounds.length; i++) {
      tasks.push({ table: t, part: i + 1, where: partCondition(plan, i, plan.kind === 'key' ? quoteIdent(plan.column) : undefined) });
    }
  }
  return { tasks, split };
}

async function loadGroup(ctx: PhaseContext, journal: Journal, group: ResolvedGroup, point: ReadPoint, progress: CopyProgress, clear: 'truncate' | 'delete') {
  const doneRows = (await journal.tableProgress()).filter((p) => p.group === group.name && p.state === 'done');
  const done = new Set(doneRows.filter((p) => p.part === 0).map((p) => `${p.schema}.${p.name}`));
  let rows = 0;
  let bytes = 0;
  let skipped = 0;
  const pending = group.tables.filter((t) => {
    if (done.has(`${t.schema}.${t.name}`)) {
      skipped++;
      return false;
    }
    return true;
  });
  const planner = await connect(point.endpoint, { applicationName: 'pgshift plan' });
  let plan: Awaited<ReturnType<typeof planTasks>>;
  try {
    plan = await planTasks(ctx, planner, pending);
  } finally {
    await planner.end().catch(() => {});
  }
  // A split table is cleared once, before its parts load side by side.
  if (plan.split.length) {
    const t = await connect(ctx.target, { applicationName: 'pgshift copy' });
    try {
      for (const table of plan.split) {
        await t.query('BEGIN');
        if (clear === 'truncate') await t.query(`TRUNCATE ${qualify(table)}`);
        else {
          await t.query('SET LOCAL session_replication_role = replica');
          await t.query(`DELETE FROM ${qualify(table)}`);
        }
        await t.query(`DELETE FROM ${S}.copy_progress WHERE migration = $1 AND table_schema = $2 AND table_name = $3`, [journal.migration, table.schema, table.name]);
        await t.query('COMMIT');
        ctx.log.info(`${displayName(table)}: split into ${plan.tasks.filter((x) => x.table === table).length} parts`);
      }
    } finally {
      await t.end().catch(() => {});
    }
  }
  const workers: Array<{ source: pg.Client; target: pg.Client } | undefined> = [];
  try {
    await runPool(plan.tasks, ctx.plan.fullLoad.jobs, async (task, id) => {
      let w = workers[id];
      if (!w) {
        const source = await connect(point.endpoint, { applicationName: 'pgshift copy' });
        const target = await connect(ctx.target, { applicationName: 'pgshift copy' }).catch(async (err) => {
          await source.end();
          throw err;
        });
        w = workers[id] = { source, target };
      }
      point.check();
      const r = await copyOneTable(w.source, w.target, journal.migration, group.name, task, point, progress, clear);
      rows += r.rows;
      bytes += r.bytes;
      ctx.log.progress(`table:${displayName(task.table)}:${task.part}`, `copied ${displayName(task.table)}${task.part ? ` part ${task.part}` : ''}: ${r.rows} rows`);
    });
    // A split table is done when all its parts are: record it as a whole.
    for (const table of plan.split) {
      const parts = plan.tasks.filter((x) => x.table === table).length;
      await journal.client.query(
        `INSERT INTO ${S}.copy_progress (migration, group_name, table_schema, table_name, part, state, rows, bytes, finished_at)
         SELECT $1, $2, $3, $4, 0, 'done', sum(rows), sum(bytes), now() FROM ${S}.copy_progress
          WHERE migration = $1 AND table_schema = $3 AND table_name = $4 AND part > 0 AND state = 'done' HAVING count(*) = $5
         ON CONFLICT (migration, table_schema, table_name, part) DO UPDATE SET state = 'done', rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, finished_at = now()`,
        [journal.migration, group.name, table.schema, table.name, parts],
      );
    }
  } finally {
    await Promise.all(workers.filter(Boolean).flatMap((w) => [w!.source.end().catch(() => {}), w!.target.end().catch(() => {})]));
  }
  return { rows, bytes, skipped };
}

/**
 * One table (or one part of a split table), exactly once: the target transaction clears a whole
 * table, loads the rows and marks them done in the journal, so a crash leaves either the rows with
 * their journal row or neither.
 */
async function copyOneTable(
  source: pg.Client,
  target: pg.Client,
  migration: string,
  group: string,
  task: CopyTask,
  point: ReadPoint,
  progress: CopyProgress,
  clear: 'truncate' | 'delete',
) {
  const table = task.table;
  await point.begin(source);
  await target.query('BEGIN');
  try {
    if (task.part === 0) {
      if (clear === 'truncate') await target.query(`TRUNCATE ${qualify(table)}`);
      else {
        // As the apply worker does: no FK triggers while the rows are replaced.
        await target.query('SET LOCAL session_replication_role = replica');
        await target.query(`DELETE FROM ${qualify(table)}`);
      }
    } else if (clear === 'delete') {
      await target.query('SET LOCAL session_replication_role = replica');
    }
    const r = await copyTable(source, target, table, copyColumns(table), (n) => progress.add(n), task.where);
    await target.query(progressSql.upsert, [migration, group, table.schema, table.name, task.part, 'done', r.rows, r.bytes]);
    await target.query('COMMIT');
    await source.query('COMMIT');
    progress.tableDone(r.rows);
    return r;
  } catch (err) {
    await target.query('ROLLBACK').catch(() => {});
    await source.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

class CopyProgress {
  private bytes = 0;
  private rows = 0;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly log: PhaseContext['log'],
    private readonly estimatedBytes: number,
  ) {
    this.timer = setInterval(() => this.report(), 5000);
    this.timer.unref();
  }
  add(n: number) {
    this.bytes += n;
  }
  tableDone(rows: number) {
    this.rows += rows;
  }
  report() {
    const secs = (Date.now() - this.started) / 1000;
    const rate = this.bytes / Math.max(secs, 0.001);
    // On-disk size over-estimates COPY text for indexed tables; the ETA is a rough upper bound.
    const eta = this.estimatedBytes > this.bytes ? Math.round((this.estimatedBytes - this.bytes) / Math.max(rate, 1)) : 0;
    this.log.progress('full-load', `full-load: ${(this.bytes / 1048576).toFixed(1)} MB copied, ${(rate / 1048576).toFixed(1)} MB/s, ${this.rows} rows in finished tables, ETA ≤ ${eta}s`);
  }
  stop() {
    clearInterval(this.timer);
  }
}

async function requireFreeSlots(s: Sessions, ctx: PhaseContext, needed: number) {
  const r = await s.source.query<{ max: string; used: string }>(
    `SELECT current_setting('max_replication_slots') AS max, (SELECT count(*) FROM pg_replication_slots)::text AS used`,
  );
  const free = Number(r.rows[0].max) - Number(r.rows[0].used);
  if (free < needed) {
    throw gateRefused('source.slots', `source ${ctx.source.label}: ${needed} replication slot(s) needed, ${free} free`, 'raise max_replication_slots on the source or drop unused slots');
  }
}

async function requireEmptyTarget(s: Sessions, ctx: PhaseContext, groups: ResolvedGroup[]) {
  const names = groups.flatMap((g) => [...g.tables, ...g.parents]);
  const r = await s.target.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [names.map((t) => t.schema), names.map((t) => t.name)],
  );
  if (r.rowCount) {
    const first = r.rows[0];
    throw gateRefused(
      'target.not-empty',
      `target ${ctx.target.label} already has table ${displayName(first)}${r.rowCount > 1 ? ` and ${r.rowCount - 1} more` : ''} and no pgshift journal says it loaded them`,
      'load into an empty database (create a new one on the target) or drop those tables',
    );
  }
}

async function resetGroup(s: Sessions, ctx: PhaseContext, journal: Journal, group: ResolvedGroup, prior: StreamRecord | undefined) {
  ctx.log.warn(`group ${group.name}: restarting — dropping its slot and reloading its tables`);
  const slot = prior?.slot ?? slotName(ctx.plan.name, group.name);
  await dropSlot(s.source, slot);
  if (prior) await dropPublication(s.source, prior.publication);
  await s.target.query(`DELETE FROM ${S}.copy_progress WHERE migration = $1 AND group_name = $2`, [journal.migration, group.name]);
  await journal.event('full-load', 'warn', `group ${group.name}: restarted from a new slot`);
}

/** Materialized views come from pg_dump without their rows; refresh the ones populated on the source. */
async function refreshMaterializedViews(s: Sessions, log: PhaseContext['log']) {
  const r = await s.source.query<{ schema: string; name: string }>(
    `SELECT schemaname AS schema, matviewname AS name FROM pg_matviews WHERE ispopulated AND schemaname NOT IN ('pg_catalog', 'information_schema')`,
  );
  for (const mv of r.rows) {
    await s.target.query(`REFRESH MATERIALIZED VIEW ${qualify(mv)}`);
    log.info(`materialized view ${displayName(mv)} refreshed on the target`);
  }
}

async function everyGroupLoaded(journal: Journal, names: string[]): Promise<boolean> {
  const streams = new Map((await journal.streams()).map((r) => [r.group, r.state]));
  return names.every((n) => {
    const state = streams.get(n);
    return state !== undefined && state !== 'preparing' && state !== 'loading';
  });
}

/** Serialise a once-only step across concurrent jobs (workflow matrix) with an advisory lock. */
async function withStepLock(c: pg.Client, step: string, fn: () => Promise<void>) {
  await c.query('SELECT pg_advisory_lock(hashtext($1))', [step]);
  try {
    await fn();
  } finally {
    await c.query('SELECT pg_advisory_unlock(hashtext($1))', [step]).catch(() => {});
  }
}
