import type pg from 'pg';
import { gateRefused } from '../core/errors.js';
import { displayName, quoteIdent } from '../core/ident.js';
import { formatLsn } from '../core/lsn.js';
import { batchStreamName, heartbeatTable, isResyncOf, loadSessionName, postDataSessionName } from '../core/names.js';
import { runPool } from '../core/pool.js';
import { blockBounds, INTEGER_TYPES, keyBounds, partCondition, partCount, type PartPlan } from '../core/parts.js';
import { forgetGroupProgress, forgetTableProgress, Journal, recordPartDone, recordSplitTableDone, type StreamRecord } from '../journal/journal.js';
import { analyzeUnanalyzed, existingRelations, keyRange, relationBlocks, type TableInfo } from '../pg/catalog.js';
import { endSessionsNamed } from '../pg/cancel.js';
import { groupLockFree, tryGroupLock, withStepLock } from '../pg/lease.js';
import { abandon, connect, endpointFor, majorOf, type Endpoint } from '../pg/connect.js';
import { abortReason, throwIfAborted } from '../core/wait.js';
import { clearTable, copyPartOnce, useCopySettings, useLoadSettings, type CopyFormatChoice } from '../pg/copy.js';
import { analyzeStep, earlyIndexes, IndexQueue, indexesOf, isAnalyze, postDataList, type IndexBuild } from '../pg/indexes.js';
import { copyLargeObjects } from '../pg/large-objects.js';
import { PausedReplica } from '../pg/paused-replica.js';
import { dropSubscription, ensureHeartbeat, replicaIdentityOf, setReplicaIdentity } from '../pg/replication.js';
import { decideGroupLoad, type GroupLoadAction } from '../core/load-decision.js';
import { preflightLoad, type LoadPreflight } from './preflight.js';
import { journaledDmsTasks, newStreamRecord, setDmsCarried, streamSource, type StreamPart, type StreamSource } from './stream-source.js';
import { dumpSchema, preDataList, restoreSection, type SchemaDump } from '../pg/schema.js';
import { extensionSchemasOnTarget, installExtensions, readSourceExtensions, type ExtensionInstall } from '../pg/extensions.js';
import { copyRoles, readMissingRoles, type RoleCopyResult } from '../pg/roles.js';
import { syncSequences } from '../pg/sequences.js';
import { setLogged } from '../pg/unlogged.js';
import { populatedMatviews, refreshMatviews, type MatviewRefresh } from '../pg/matviews.js';
import { beginReadOnly, dropSlot, endRead, ensureSlot, existingSlotCount, importSnapshot, SnapshotHolder } from '../pg/snapshot.js';
import { findTool, requireDumpForSource, type PgTool } from '../pg/tools.js';
import { openSessions, requireLogicalSource, resolveGroups, type PhaseContext, type ResolvedGroup, type Sessions } from './context.js';
import { LoadProgress, type TableProgress } from './load-progress.js';
import { resumeGroup, resumePhase, type ResumeSummary } from './load-resume.js';
import { nativeBridge } from './bridge.js';
import { dmsBridge } from './bridge-dms.js';
import { formatBytes } from '../config/size.js';

/**
 * Full load: a consistent copy of each group at a known LSN.
 *
 *   per group: the CDC engine's objects on the source — heartbeat table plus a publication, or
 *   pglogical replication sets (stream-source.ts) — before the slot, so that the slot's decoding
 *   finds them in its catalog snapshot → the snapshot: a slot with an exported snapshot (L = its
 *   consistent point), or slots on the primary then the replica paused at L → schema pre-data from
 *   pg_dump → the copy: every table (or part of a split table) of every selected group in one pool
 *   of workers, largest first, each part's rows and its journal row committed in one target
 *   transaction → each table's indexes as soon as its last part lands, beside the copies → when
 *   every group of the plan is loaded: the rest of post-data (constraints, triggers, foreign keys),
 *   sequences, ANALYZE.
 *
 * Resuming: finished parts are skipped; parts in flight died with their transaction. A group whose
 * snapshot is gone (exported mode after a crash) is refused with the consistent options.
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
  /** Set when the group was resumed after its load died: what was kept, redone and created. */
  resumed?: ResumeSummary;
}

export interface FullLoadResult {
  groups: GroupLoadResult[];
  /** Per table, largest first: parts, rows, bytes, copy seconds and early-built indexes. */
  tables: TableProgress[];
  rows: number;
  bytes: number;
  seconds: number;
  rowsPerSecond: number;
  indexesBuiltEarly: number;
  postData: 'done' | 'waiting-for-groups' | 'already-done';
  sequences: number;
  /** Materialized views whose refresh on the target failed, each with its error (the load itself is complete). */
  failedViews: MatviewRefresh['failed'];
  /** Each extension of the source as installed on the target by this run (pre-data), with its version. */
  extensions: ExtensionInstall[];
  /** roles: copy — the roles this run created on the target, their memberships and settings. */
  roles?: RoleCopyResult;
}

const PRE_DATA = 'full-load:pre-data';
/** What the load did to the target beyond the schema: extensions installed, roles created (journaled for teardown and status). */
const EXTENSIONS = 'full-load:extensions';
export const ROLES = 'full-load:roles';
const LARGE_OBJECTS = 'full-load:large-objects';
const POST_DATA = 'full-load:post-data';
/** The replica paused for the load: running (with its LSN) while paused by pgshift. */
const REPLICA = 'full-load:replica';
/** Replica identities pgshift changed on the source with the plan's consent: table → the previous one. */
export const REPLICA_IDENTITY = 'source:replica-identity';
const progressPhase = (group: string | undefined) => `full-load:progress:${group ?? '*'}`;

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

/**
 * A resumed group with nothing left to copy still reads the source for large objects, which no
 * stream carries: a plain repeatable-read transaction.
 */
function plainPoint(ctx: PhaseContext): ReadPoint {
  return { endpoint: ctx.source, lsnText: '', begin: (c) => beginReadOnly(c), check: () => {} };
}

function replicaPoint(endpoint: Endpoint, paused: PausedReplica): ReadPoint {
  return {
    endpoint,
    lsnText: paused.lsn,
    begin: async (c) => {
      await beginReadOnly(c);
      await paused.requireAt(c);
    },
    check: () => paused.check(),
  };
}

interface GroupToLoad {
  group: ResolvedGroup;
  /** The group's own stream record (parts[0].record). */
  record: StreamRecord;
  /** Its streams: its own and any companion (DMS batch apply), which follow its LSN and state. */
  parts: StreamPart[];
  point?: ReadPoint;
  /** Resumed after its exported snapshot died (load-resume.ts). */
  resuming?: boolean;
  resumed?: ResumeSummary;
  /** Its bridge streams (resume streams), marked loaded with it. */
  bridges: StreamRecord[];
}

/** Set the group's snapshot LSN and state on each of its streams and journal them. */
async function saveStreams(journal: Journal, load: GroupToLoad, state: string, lsn = load.record.snapshotLsn): Promise<void> {
  for (const { record } of load.parts) {
    record.state = state;
    record.snapshotLsn = lsn;
    await journal.saveStream(record);
  }
  // Bridge streams keep their own snapshot LSN.
  for (const b of load.bridges) await journal.setStreamState(b.group, state);
}

/** What the full load decided before creating anything: the groups, what to do with each, the tools. */
interface LoadDecision {
  groups: ResolvedGroup[];
  actions: Map<ResolvedGroup, GroupLoadAction>;
  /** The journal's stream records of an earlier run, by group. */
  existing: Map<string, StreamRecord>;
  priorProgress: ProgressRows;
  preDataDone: boolean;
  pausedMode: boolean;
  stream: StreamSource;
  dumpTool: PgTool;
  restoreTool: PgTool;
  /** The groups that load something in this run (every action but skip). */
  loading: ResolvedGroup[];
  preflight: LoadPreflight;
}

type ProgressRows = Awaited<ReturnType<Journal['tableProgress']>>;
type GroupTotals = { rows: number; bytes: number; skipped: number };

/**
 * What the load holds until it ends — snapshots, the paused replica, the schema dump, the live
 * progress line and the index queue — let go whatever happened: the replica replays again (unless
 * another job still reads it) and the snapshots end.
 */
class LoadResources {
  holders: SnapshotHolder[] = [];
  paused?: PausedReplica;
  dump?: SchemaDump;
  progress?: LoadProgress;
  indexes?: IndexQueue;

  /** Once the rows are copied: the snapshots and the replica are no longer needed. */
  async releaseSnapshots(journal: Journal): Promise<void> {
    for (const h of this.holders.splice(0)) await h.release();
    if (this.paused && (await this.paused.release())) await journal.finishPhase(REPLICA, 'done', { lsn: this.paused.lsn });
  }

  async release(): Promise<void> {
    this.progress?.stop();
    await this.indexes?.close();
    await this.paused?.release();
    for (const h of this.holders) await h.release();
    this.dump?.dispose();
  }
}

export async function runFullLoad(ctx: PhaseContext, options: FullLoadOptions = {}): Promise<FullLoadResult> {
  const started = Date.now();
  const s = await openSessions(ctx);
  const held = new LoadResources();
  try {
    // Everything that can refuse does so before anything is created on either server.
    const decision = await decideLoad(ctx, s, options);

    // From here on, things are created.
    const journal = await Journal.open(s.target, ctx.plan.name, {
      source: ctx.source.label,
      target: ctx.target.label,
      sourceVersion: s.sourceVersion,
      targetVersion: s.targetVersion,
    });
    await journal.startPhase('full-load', { groups: decision.groups.map((g) => g.name) });
    const roles = await prepareSource(ctx, s, journal, decision);
    const { toLoad, skipped } = await groupsToLoad(ctx, s, journal, decision);
    await takeSnapshots(ctx, s, journal, decision, toLoad, held, options);
    const extensions = await restorePreData(ctx, s, journal, decision, toLoad, held);
    for (const { record } of toLoad.flatMap((load) => load.parts)) await ensureHeartbeat(s.target, heartbeatTable(record.group), record.group);
    const totals = await copyGroups(ctx, s, journal, toLoad, held, options.group);
    const results = [...skipped, ...(await markGroupsLoaded(ctx, journal, toLoad, totals))];
    await copyLargeObjectsOnce(ctx, s, journal, toLoad);
    await held.releaseSnapshots(journal);
    const post = await postDataOnceAllLoaded(ctx, s, journal, decision, held, options);

    const rows = results.reduce((n, r) => n + r.rows, 0);
    const seconds = (Date.now() - started) / 1000;
    const result: FullLoadResult = {
      groups: results,
      tables: held.progress!.results(),
      rows,
      bytes: results.reduce((n, r) => n + r.bytes, 0),
      seconds,
      rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : rows,
      indexesBuiltEarly: held.indexes!.built,
      postData: post.state,
      failedViews: post.failedViews,
      sequences: post.sequences,
      extensions,
      roles,
    };
    await journal.finishPhase('full-load', post.allLoaded ? 'done' : 'partial', { ...result, tables: undefined });
    return result;
  } finally {
    await held.release();
    await s.close();
  }
}

/**
 * Every check and decision of the load before it creates anything: the source can decode, the
 * tools can dump it, no other process loads these groups, the target is empty or ours, each
 * group's action after any earlier run (core/load-decision.ts), and the preflight of what would be
 * created (preflight.ts, the same rules as assess).
 */
async function decideLoad(ctx: PhaseContext, s: Sessions, options: FullLoadOptions): Promise<LoadDecision> {
  const { plan } = ctx;
  await requireLogicalSource(s, ctx);
  const stream = streamSource(ctx);
  await stream.require(s.source);
  const dumpTool = await findTool('pg_dump', plan.fullLoad.pgBinDir);
  requireDumpForSource(dumpTool, majorOf(s.sourceVersion));
  const restoreTool = await findTool('pg_restore', plan.fullLoad.pgBinDir);
  const groups = await resolveGroups(ctx, s.source, s.sourceVersion, options.group);
  // One process per group (advisory locks held by this session): takes nothing, changes nothing.
  await claimGroups(s.target, plan.name, groups.map((g) => g.name));
  const prior = await Journal.find(s.target, plan.name);
  const existing = new Map((prior ? await prior.streams() : []).map((r) => [r.group, r]));
  const preDataDone = (await prior?.phaseState(PRE_DATA))?.state === 'done';
  if (!preDataDone) await requireEmptyTarget(s, ctx, groups);
  const pausedMode = plan.snapshot === 'paused-replica';
  const priorProgress = prior ? await prior.tableProgress() : [];
  const actions = await decideGroups(prior, existing, groups, priorProgress, pausedMode, options);
  const loading = groups.filter((g) => actions.get(g) !== 'skip');
  const streamsToLoad = loading.flatMap((g) => stream.parts(g, newStreamRecord(plan, g.name)).map((p) => p.record.slot));
  // A resumed group needs one more slot: its resume stream's.
  const resuming = [...actions.values()].filter((a) => a === 'resume').length;
  const slotsNeeded = streamsToLoad.length - (await existingSlotCount(s.source, streamsToLoad)) + resuming;
  const preflight = loading.length ? await preflightLoad(ctx, s, loading, slotsNeeded) : { setReplicaIdentityFull: [] };
  return { groups, actions, existing, priorProgress, preDataDone, pausedMode, stream, dumpTool, restoreTool, loading, preflight };
}

/** Each group's action (core/load-decision.ts), and the refusals among them, named with their way out. */
async function decideGroups(
  prior: Journal | undefined,
  existing: Map<string, StreamRecord>,
  groups: ResolvedGroup[],
  priorProgress: ProgressRows,
  pausedMode: boolean,
  options: FullLoadOptions,
): Promise<Map<ResolvedGroup, GroupLoadAction>> {
  const copied = new Set(priorProgress.filter((p) => p.state === 'done' && p.part === 0).map((p) => p.group));
  // A DMS task reads the slot a restart would drop (cdc restart deletes the task first), and has
  // applied changes a resume could not bridge (bridge-dms.ts: a loading group has none).
  const withTasks = new Set((await journaledDmsTasks(prior)).map((t) => t.group));
  const decide = (g: ResolvedGroup) =>
    decideGroupLoad(existing.get(g.name), { restart: Boolean(options.restart), pausedReplicaPlan: pausedMode, copied: copied.has(g.name), canBridge: !withTasks.has(g.name) });
  const actions = new Map(groups.map((g) => [g, decide(g)]));
  if (options.restart) {
    const busy = groups.find((g) => existing.has(g.name) && withTasks.has(g.name));
    if (busy) throw gateRefused('full-load.dms-tasks', `group ${busy.name} has DMS tasks reading its slot`, `run pgshift cdc restart --group ${busy.name}: it deletes them, reloads the group and creates new ones`);
  }
  for (const [group, action] of actions) {
    if (action === 'refuse-cut-over') {
      throw gateRefused('full-load.cut-over', `group ${group.name} is ${existing.get(group.name)!.state}: the target is the application's database now, and a reload would clear its tables`, 'nothing to restart; pgshift teardown removes what is left of the migration');
    }
    if (action !== 'refuse-interrupted') continue;
    throw gateRefused(
      'full-load.interrupted',
      `group ${group.name}: an earlier full load stopped while loading; its ${existing.get(group.name)!.snapshotMode === 'exported' ? `exported snapshot ended with that process, and ${pausedMode ? 'a paused-replica plan' : `its DMS tasks (which have applied changes from the group's slot)`} cannot carry the rest from a newer one` : "replica snapshot is not the plan's snapshot mode"}`,
      `set the plan back to the mode it was loaded with and run the same command (it resumes), or run pgshift full-load --restart${options.group ? ` --group ${group.name}` : ''} to load the group again from a new slot`,
    );
  }
  return actions;
}

/**
 * What the load changes before any slot exists: roles: copy first (a role the target refuses
 * stops the load with nothing to undo on the source), then the replica identities and SET LOGGED
 * the plan consented to.
 */
async function prepareSource(ctx: PhaseContext, s: Sessions, journal: Journal, d: LoadDecision): Promise<RoleCopyResult | undefined> {
  const roles = d.loading.length && ctx.plan.roles === 'copy' ? await copyMissingRoles(ctx, s, journal) : undefined;
  await applyReplicaIdentityConsent(ctx, s, journal, d.preflight.setReplicaIdentityFull);
  await makeLogged(ctx, s, journal, d.loading.flatMap((g) => g.tables).filter((t) => t.persistence === 'u'));
  return roles;
}

/** The groups this run loads, each with its stream record, and the result of each it skips. */
async function groupsToLoad(ctx: PhaseContext, s: Sessions, journal: Journal, d: LoadDecision): Promise<{ toLoad: GroupToLoad[]; skipped: GroupLoadResult[] }> {
  const toLoad: GroupToLoad[] = [];
  const skipped: GroupLoadResult[] = [];
  for (const [group, action] of d.actions) {
    const priorRecord = d.existing.get(group.name);
    if (action === 'skip') {
      ctx.log.info(`group ${group.name}: already loaded at ${priorRecord!.snapshotLsn} (state ${priorRecord!.state}); nothing to do`);
      skipped.push({ group: group.name, slot: priorRecord!.slot, publication: priorRecord!.publication, snapshotLsn: priorRecord!.snapshotLsn ?? '', tables: group.tables.length, rows: 0, bytes: 0, skipped: group.tables.length });
      continue;
    }
    // Restarting, or a run that stopped before any row was copied (state preparing): start clean.
    if (action === 'reset') await resetGroup(s, ctx, journal, d.stream, group, d.existing);
    const record = action === 'continue' || action === 'resume' ? priorRecord! : newStreamRecord(ctx.plan, group.name);
    toLoad.push({ group, record, parts: d.stream.parts(group, record), resuming: action === 'resume', bridges: [] });
  }
  return { toLoad, skipped };
}

/** Each group's read point: the paused replica, a new slot's exported snapshot, or a resume's bridge. */
async function takeSnapshots(ctx: PhaseContext, s: Sessions, journal: Journal, d: LoadDecision, toLoad: GroupToLoad[], held: LoadResources, options: FullLoadOptions): Promise<void> {
  if (toLoad.length === 0) return;
  if (d.pausedMode) return pauseForGroups(ctx, s, journal, d, toLoad, held, options);
  const lastSnapshot = (await journal.phaseState(progressPhase(options.group)))?.detail as { active?: Array<{ table: string; bytes: number }> } | undefined;
  for (const load of toLoad) {
    if (load.resuming) {
      const engine = ctx.plan.cdc.engine === 'dms' ? dmsBridge(ctx, s, journal, d.stream, load.group, load.record) : nativeBridge(ctx, s, journal);
      const sessionName = loadSessionName(ctx.plan.name, options.group ?? '*');
      const r = await resumeGroup(ctx, s, journal, load.group, load.record, d.priorProgress, lastSnapshot, () => openTarget(ctx, sessionName), engine);
      if (r.holder) held.holders.push(r.holder);
      load.bridges = r.bridges;
      load.resumed = r.summary;
      await journal.setPhaseDetail(resumePhase(load.group.name), 'running', r.summary);
      load.point = r.holder ? exportedPoint(ctx, r.holder) : plainPoint(ctx);
      continue;
    }
    await prepareGroupObjects(s, journal, d.stream, load);
    // A companion's slot first: the snapshot's LSN is then at or after its confirmed_flush_lsn.
    for (const part of load.parts.slice(1)) await ensureSlot(s.source, part.record.slot, d.stream.plugin);
    const holder = await SnapshotHolder.createSlot(ctx.source, load.record.slot, d.stream.plugin, s.sourceVersion);
    held.holders.push(holder);
    await saveStreams(journal, load, 'loading', holder.lsnText);
    await journal.event('full-load', 'info', `group ${load.group.name}: slot ${load.record.slot} at ${holder.lsnText}, snapshot ${holder.snapshotName}`);
    ctx.log.info(`group ${load.group.name}: slot ${load.record.slot} created, snapshot at LSN ${formatLsn(holder.lsn)}`);
    load.point = exportedPoint(ctx, holder);
  }
}

/** paused-replica: every group reads the replica paused (or adopted) at one LSN. */
async function pauseForGroups(ctx: PhaseContext, s: Sessions, journal: Journal, d: LoadDecision, toLoad: GroupToLoad[], held: LoadResources, options: FullLoadOptions): Promise<void> {
  const { plan } = ctx;
  const replicaEp = endpointFor('replica', { url: plan.source.replicaUrl!, tls: plan.source.tls });
  const paused = (held.paused = await pauseOrAdoptReplica(ctx, s, journal, d.stream, replicaEp, toLoad, options));
  const mine = new Set(d.groups.map((g) => g.name));
  paused.shouldResume = async () => !(await anotherGroupLoading(s.target, journal, plan.groups.map((g) => g.name).filter((g) => !mine.has(g))));
  const point = replicaPoint(replicaEp, paused);
  for (const load of toLoad) {
    load.point = point;
    await saveStreams(journal, load, 'loading', paused.lsn);
    await journal.event('full-load', 'info', `group ${load.group.name}: slot ${load.record.slot}, replica paused at ${paused.lsn}`);
  }
}

/** Pre-data once for the whole plan (the first job to get here), inside the first group's snapshot; the extensions installed with it. */
async function restorePreData(ctx: PhaseContext, s: Sessions, journal: Journal, d: LoadDecision, toLoad: GroupToLoad[], held: LoadResources): Promise<ExtensionInstall[]> {
  let extensions: ExtensionInstall[] = [];
  if (toLoad.length === 0 || d.preDataDone) return extensions;
  await withStepLock(s.target, PRE_DATA, async () => {
    if ((await journal.phaseState(PRE_DATA))?.state === 'done') return;
    ctx.log.info('schema: restoring pre-data (types, tables, functions) on the target');
    held.dump ??= await dumpSchema(d.dumpTool, toLoad[0].point!.endpoint, toLoad[0].point!.snapshotName);
    extensions = await installSourceExtensions(ctx, s, journal);
    const listFile = await preDataList(d.restoreTool, held.dump, await extensionSchemasOnTarget(s.source, s.target));
    await restoreSection(d.restoreTool, ctx.target, held.dump, 'pre-data', { keepOwnership: ctx.plan.fullLoad.ownership === 'keep', listFile });
    await journal.finishPhase(PRE_DATA, 'done');
  });
  return extensions;
}

/** The copy: every part of every group in one pool, largest first, each table's indexes built as its last part lands. */
async function copyGroups(ctx: PhaseContext, s: Sessions, journal: Journal, toLoad: GroupToLoad[], held: LoadResources, scope: string | undefined): Promise<Map<string, GroupTotals>> {
  const { plan, log } = ctx;
  const sessionName = loadSessionName(plan.name, scope ?? '*');
  const progress = (held.progress = new LoadProgress(log, (snap) => journal.setPhaseDetail(progressPhase(scope), 'running', snap)));
  const early = await earlyIndexes(s.source, toLoad.flatMap((load) => load.group.tables));
  const indexes = (held.indexes = new IndexQueue(() => openTarget(ctx, sessionName), plan.fullLoad.indexJobs, (step, ms, built) => {
    if (isAnalyze(step)) return;
    progress.indexBuilt(step.table);
    logIndexBuilt(log, step, ms, built);
  }));
  const stopIndexes = () => indexes.abandon(abortReason(ctx.signal));
  ctx.signal.addEventListener('abort', stopIndexes, { once: true });
  // Reloading after post-data (a restart): foreign keys exist, so rows are deleted, not truncated.
  const clear = (await journal.phaseState(POST_DATA))?.state === 'done' ? 'delete' : 'truncate';
  const planned = await planCopy(ctx, journal, toLoad, s.sourceVersion, clear, sessionName, early, progress, indexes);
  progress.start();
  for (const { group, table, parts } of planned.completeSplits) {
    await recordSplitTableDone(s.target, journal.migration, group, table, parts);
    indexes.add(indexesOf(early, table));
  }
  await copyTasks(ctx, journal.migration, planned.tasks, sessionName, clear, progress, async (task, copied, target) => {
    const totals = planned.totals.get(task.group)!;
    totals.rows += copied.rows;
    totals.bytes += copied.bytes;
    if (!progress.partDone(task.table, copied.rows)) return;
    // The table's last part landed: record it whole, and build its indexes beside the copies.
    if (task.parts > 1) await recordSplitTableDone(target, journal.migration, task.group, task.table, task.parts);
    indexes.add([...indexesOf(early, task.table), analyzeStep(task.table)]);
  });
  await indexes.drain();
  ctx.signal.removeEventListener('abort', stopIndexes);
  throwIfAborted(ctx.signal);
  progress.stop();
  await journal.setPhaseDetail(progressPhase(scope), 'done', progress.snapshot());
  return planned.totals;
}

/** Every group's copy tasks, largest first; what earlier runs finished is tracked as skipped (its indexes queued again). */
async function planCopy(
  ctx: PhaseContext,
  journal: Journal,
  toLoad: GroupToLoad[],
  sourceVersion: number,
  clear: 'truncate' | 'delete',
  sessionName: string,
  early: Map<string, IndexBuild[]>,
  progress: LoadProgress,
  indexes: IndexQueue,
): Promise<{ tasks: CopyTask[]; completeSplits: Array<{ group: string; table: TableInfo; parts: number }>; totals: Map<string, GroupTotals> }> {
  const tasks: CopyTask[] = [];
  const completeSplits: Array<{ group: string; table: TableInfo; parts: number }> = [];
  const totals = new Map<string, GroupTotals>();
  const finished = (await journal.tableProgress()).filter((p) => p.state === 'done');
  const indexCount = (t: TableInfo) => indexesOf(early, t).length;
  for (const load of toLoad) {
    const planned = await planGroup(ctx, journal, finished, load, sourceVersion, clear, sessionName);
    totals.set(load.group.name, { rows: 0, bytes: 0, skipped: planned.skipped.length });
    for (const t of planned.skipped) {
      progress.track(load.group.name, t, t.bytes, 1, indexCount(t), 'skipped');
      indexes.add(indexesOf(early, t)); // a crash may have come between a table's copy and its indexes
    }
    for (const [table, parts] of planned.parts) progress.track(load.group.name, table, table.bytes, parts.total, indexCount(table), 'waiting', parts.done);
    for (const c of planned.complete) {
      progress.track(load.group.name, c.table, c.table.bytes, c.parts, indexCount(c.table), 'skipped');
      completeSplits.push({ group: load.group.name, ...c });
    }
    tasks.push(...planned.tasks);
  }
  tasks.sort((a, b) => b.estimatedBytes - a.estimatedBytes);
  return { tasks, completeSplits, totals };
}

/** Each loaded group's streams marked loaded, a resume's summary completed, and its result. */
async function markGroupsLoaded(ctx: PhaseContext, journal: Journal, toLoad: GroupToLoad[], totalsByGroup: Map<string, GroupTotals>): Promise<GroupLoadResult[]> {
  const results: GroupLoadResult[] = [];
  for (const load of toLoad) {
    const { group, record, point } = load;
    await saveStreams(journal, load, 'loaded');
    const totals = totalsByGroup.get(group.name)!;
    if (load.resumed) {
      load.resumed.copied = { rows: totals.rows, bytes: totals.bytes };
      await journal.setPhaseDetail(resumePhase(group.name), 'done', load.resumed);
      ctx.log.info(`group ${group.name}: resumed — kept ${load.resumed.kept.rows} rows (${formatBytes(load.resumed.kept.bytes)}), copied ${totals.rows} rows (${formatBytes(totals.bytes)}) from ${load.resumed.snapshotLsn ?? 'no new snapshot'}`);
    }
    results.push({ group: group.name, slot: record.slot, publication: record.publication, snapshotLsn: load.resumed ? record.snapshotLsn ?? '' : point!.lsnText, tables: group.tables.length, ...totals, ...(load.resumed ? { resumed: load.resumed } : {}) });
  }
  return results;
}

/** Large objects belong to no group: the first job to get here copies them, inside its snapshot. */
async function copyLargeObjectsOnce(ctx: PhaseContext, s: Sessions, journal: Journal, toLoad: GroupToLoad[]): Promise<void> {
  if (toLoad.length === 0 || (await journal.phaseState(LARGE_OBJECTS))?.state === 'done') return;
  await withStepLock(s.target, LARGE_OBJECTS, async () => {
    if ((await journal.phaseState(LARGE_OBJECTS))?.state === 'done') return;
    const point = toLoad[0].point!;
    const reader = await connect(point.endpoint, { applicationName: 'pgshift large objects' });
    try {
      await point.begin(reader);
      const lo = await copyLargeObjects(reader, s.target, ctx.plan.fullLoad.ownership === 'keep');
      await endRead(reader);
      if (lo.objects) ctx.log.info(`large objects: ${lo.objects} copied (${lo.bytes} bytes)`);
      await journal.finishPhase(LARGE_OBJECTS, 'done', lo);
    } finally {
      await reader.end().catch(() => {});
    }
  });
}

/** Post-data waits until every group of the plan is loaded (foreign keys cross groups); the first job to see them all runs it. */
async function postDataOnceAllLoaded(
  ctx: PhaseContext,
  s: Sessions,
  journal: Journal,
  d: LoadDecision,
  held: LoadResources,
  options: FullLoadOptions,
): Promise<{ state: FullLoadResult['postData']; allLoaded: boolean; sequences: number; failedViews: MatviewRefresh['failed'] }> {
  const out = { state: 'already-done' as FullLoadResult['postData'], allLoaded: await everyGroupLoaded(journal, ctx.plan.groups.map((g) => g.name)), sequences: 0, failedViews: [] as MatviewRefresh['failed'] };
  if ((await journal.phaseState(POST_DATA))?.state === 'done') return out;
  out.state = 'waiting-for-groups';
  if (!out.allLoaded) {
    ctx.log.info('post-data waits until every group of the plan is loaded');
    return out;
  }
  await withStepLock(s.target, POST_DATA, async () => {
    if ((await journal.phaseState(POST_DATA))?.state === 'done') return;
    const allGroups = options.group ? await resolveGroups(ctx, s.source, s.sourceVersion) : d.groups;
    held.dump ??= await dumpSchema(d.dumpTool, ctx.source, undefined);
    const post = await runPostData(ctx, s, journal, d.restoreTool, held.dump, allGroups);
    out.sequences = post.sequences;
    out.failedViews = post.failedViews;
    await journal.finishPhase(POST_DATA, 'done', { sequences: post.sequences, failedViews: post.failedViews });
    out.state = 'done';
  });
  return out;
}

interface CopyTask {
  group: string;
  table: TableInfo;
  point: ReadPoint;
  /** 0 for a whole table; 1…n for the parts of a split one. */
  part: number;
  /** How many parts the table has (1 for a whole table). */
  parts: number;
  where?: string;
  estimatedBytes: number;
}

const tableKey = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;

/**
 * The copy tasks of one group's tables: whole tables, and the parts of the tables above
 * fullLoad.splitTablesLargerThan. From PostgreSQL 14 a part is a range of blocks (ctid), read by a
 * TID Range Scan that visits only its own pages, as cheap per row as the whole table's COPY. Before
 * 14 a ctid condition is a filter on a scan of the whole table, so an integer primary key's ranges
 * (index scans) are used instead when there is one.
 */
async function planTasks(
  ctx: PhaseContext,
  c: pg.Client,
  sourceVersion: number,
  group: string,
  point: ReadPoint,
  tables: TableInfo[],
): Promise<CopyTask[]> {
  const { splitTablesLargerThan, maxPartsPerTable } = ctx.plan.fullLoad;
  const tidRangeScans = sourceVersion >= 140000;
  const tasks: CopyTask[] = [];
  for (const t of tables) {
    const n = partCount(t.bytes, splitTablesLargerThan, maxPartsPerTable);
    let plan: PartPlan = { kind: 'whole' };
    const pk = t.primaryKey.length === 1 ? t.columns.find((col) => col.name === t.primaryKey[0]) : undefined;
    if (n > 1 && !tidRangeScans && pk && INTEGER_TYPES.includes(pk.type)) {
      const range = await keyRange(c, t, pk.name);
      if (range) plan = { kind: 'key', column: pk.name, type: pk.type, bounds: keyBounds(range.lo, range.hi, n) };
    } else if (n > 1) {
      plan = { kind: 'ctid', bounds: blockBounds(await relationBlocks(c, t), n) };
    }
    if (plan.kind === 'whole' || plan.bounds.length === 0) {
      tasks.push({ group, table: t, point, part: 0, parts: 1, estimatedBytes: t.bytes });
      continue;
    }
    const parts = plan.bounds.length + 1;
    for (let i = 0; i < parts; i++) {
      const where = partCondition(plan, i, plan.kind === 'key' ? quoteIdent(plan.column) : undefined);
      tasks.push({ group, table: t, point, part: i + 1, parts, where, estimatedBytes: t.bytes / parts });
    }
  }
  return tasks;
}

interface GroupPlan {
  tasks: CopyTask[];
  /** Tables finished by an earlier run. */
  skipped: TableInfo[];
  /** Split tables whose every part an earlier run finished, not yet recorded as a whole. */
  complete: Array<{ table: TableInfo; parts: number }>;
  /** Tables to copy: how many parts, and how many an earlier run finished. */
  parts: Map<TableInfo, { total: number; done: number }>;
}

/**
 * What is left of a group: tables an earlier run finished are skipped; of a split table, the
 * finished parts are kept only when they are exactly the ranges planned now (same snapshot, same
 * bounds), otherwise the table is cleared and copied whole again. A part in flight when a run
 * died left nothing: its rows and its journal row were one transaction.
 */
async function planGroup(
  ctx: PhaseContext,
  journal: Journal,
  finishedInJournal: Awaited<ReturnType<Journal['tableProgress']>>,
  load: GroupToLoad,
  sourceVersion: number,
  clear: 'truncate' | 'delete',
  sessionName: string,
): Promise<GroupPlan> {
  const finished = finishedInJournal.filter((p) => p.group === load.group.name);
  const wholeDone = new Set(finished.filter((p) => p.part === 0).map(tableKey));
  const partsDone = new Map<string, Map<number, string | null>>();
  for (const p of finished.filter((f) => f.part > 0)) {
    const m = partsDone.get(tableKey(p)) ?? new Map<number, string | null>();
    m.set(p.part, p.condition);
    partsDone.set(tableKey(p), m);
  }
  const skipped = load.group.tables.filter((t) => wholeDone.has(tableKey(t)));
  const pending = load.group.tables.filter((t) => !wholeDone.has(tableKey(t)));
  const planner = await connect(load.point!.endpoint, { applicationName: 'pgshift plan' });
  let planned: CopyTask[];
  try {
    planned = await planTasks(ctx, planner, sourceVersion, load.group.name, load.point!, pending);
  } finally {
    await planner.end().catch(() => {});
  }
  const result: GroupPlan = { tasks: [], skipped, complete: [], parts: new Map() };
  const toClear: TableInfo[] = [];
  for (const t of pending) {
    const mine = planned.filter((task) => task.table === t);
    if (mine[0].part === 0) {
      result.tasks.push(mine[0]);
      result.parts.set(t, { total: 1, done: 0 });
      continue;
    }
    const done = partsDone.get(tableKey(t)) ?? new Map<number, string | null>();
    const reusable = done.size > 0 && [...done].every(([part, condition]) => mine.some((m) => m.part === part && m.where === condition));
    if (!reusable) toClear.push(t);
    const remaining = reusable ? mine.filter((m) => !done.has(m.part)) : mine;
    if (remaining.length === 0) result.complete.push({ table: t, parts: mine.length });
    else {
      result.tasks.push(...remaining);
      result.parts.set(t, { total: mine.length, done: mine.length - remaining.length });
    }
    ctx.log.info(`${displayName(t)}: split into ${mine.length} parts${reusable ? `, ${mine.length - remaining.length} already copied` : ''}`);
  }
  // A split table starting over is cleared once, before its parts load side by side.
  if (toClear.length) {
    const t = await openTarget(ctx, sessionName);
    try {
      for (const table of toClear) await clearTable(t, table, clear, () => forgetTableProgress(t, journal.migration, table));
    } finally {
      await t.end().catch(() => {});
    }
  }
  return result;
}

/** Run the copy tasks in one pool of `fullLoad.jobs` workers, each with a source and a target session. */
async function copyTasks(
  ctx: PhaseContext,
  migration: string,
  tasks: CopyTask[],
  sessionName: string,
  clear: 'truncate' | 'delete',
  progress: LoadProgress,
  onDone: (task: CopyTask, copied: { rows: number; bytes: number }, target: pg.Client) => Promise<void>,
): Promise<void> {
  const workers: Array<{ source: pg.Client; target: pg.Client } | undefined> = [];
  // SIGINT/SIGTERM: every worker's sessions are dropped at once; their open parts roll back.
  const stop = () => {
    for (const w of workers) if (w) for (const c of [w.source, w.target]) abandon(c);
  };
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    await runPool(tasks, ctx.plan.fullLoad.jobs, async (task, id) => {
      throwIfAborted(ctx.signal);
      let w = workers[id];
      if (!w) {
        const source = await connect(task.point.endpoint, { applicationName: 'pgshift copy' });
        const target = await openTarget(ctx, sessionName).catch(async (err) => {
          await source.end();
          throw err;
        });
        w = workers[id] = { source, target };
        if (ctx.signal.aborted) stop();
        await Promise.all([useCopySettings(source), useCopySettings(target)]);
      }
      task.point.check();
      try {
        const r = await copyOnePart(w.source, w.target, migration, task, progress, clear, ctx.plan.fullLoad.copyFormat);
        await onDone(task, r, w.target);
      } catch (err) {
        throwIfAborted(ctx.signal);
        throw err;
      }
    });
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    await Promise.all(workers.filter(Boolean).flatMap((w) => [w!.source.end().catch(() => {}), w!.target.end().catch(() => {})]));
  }
}

/**
 * One table (or one part of a split table), exactly once: the target transaction clears a whole
 * table, loads the rows and marks them done in the journal, so a crash leaves either the rows with
 * their journal row or neither.
 */
async function copyOnePart(
  source: pg.Client,
  target: pg.Client,
  migration: string,
  task: CopyTask,
  progress: LoadProgress,
  clear: 'truncate' | 'delete',
  format: CopyFormatChoice,
) {
  const table = task.table;
  await task.point.begin(source);
  return copyPartOnce(source, target, table, {
    whole: task.part === 0,
    clear,
    copy: { onBytes: progress.copying(table), where: task.where, format },
    record: (r) => recordPartDone(target, migration, { group: task.group, table, part: task.part, rows: r.rows, bytes: r.bytes, where: task.where }),
  });
}


/**
 * The rest of post-data, once every group is loaded: first the early indexes a stopped job did
 * not build, then pg_restore's post-data without them (constraints, triggers, foreign keys, the
 * indexes of partitioned tables) in one transaction — a crash leaves all of it or none, and the
 * next run does it again — then sequences, materialized views and ANALYZE.
 */
async function runPostData(ctx: PhaseContext, s: Sessions, journal: Journal, restoreTool: PgTool, dump: SchemaDump, groups: ResolvedGroup[]): Promise<{ sequences: number; failedViews: MatviewRefresh['failed'] }> {
  const { plan, log } = ctx;
  const sessionName = postDataSessionName(plan.name);
  await endSessionsNamed(s.target, [sessionName]);
  const early = [...(await earlyIndexes(s.source, groups.flatMap((g) => g.tables))).values()].flat();
  const queue = new IndexQueue(() => openTarget(ctx, sessionName), plan.fullLoad.indexJobs, (step, ms, built) => {
    if (!isAnalyze(step)) logIndexBuilt(log, step, ms, built);
  });
  try {
    queue.add(early);
    await queue.drain();
  } finally {
    await queue.close();
  }
  log.info('schema: constraints, triggers, foreign keys and the remaining indexes (post-data)');
  const listFile = await postDataList(restoreTool, dump, early);
  await restoreSection(restoreTool, ctx.target, dump, 'post-data', { keepOwnership: plan.fullLoad.ownership === 'keep', listFile, sessionName });
  const sequences = (await syncSequences(s.source, s.target)).length;
  log.info(`sequences: ${sequences} set from the source`);
  const views = await refreshMatviews(s.target, await populatedMatviews(s.source), (v) => log.info(`materialized view ${v} refreshed on the target`));
  for (const f of views.failed) {
    log.warn(`materialized view ${f.view} could not be refreshed on the target: ${f.error} (the load is complete; fix the cause, then REFRESH MATERIALIZED VIEW ${f.view} on the target — verify and the cut-over gate name it until then)`);
    await journal.event('full-load', 'warn', `materialized view ${f.view} not refreshed: ${f.error}`, f);
  }
  // Tables analyzed as they landed are skipped; the rest (loaded by a job that stopped early,
  // partitioned parents, tables without rows) are analyzed now.
  await analyzeUnanalyzed(s.target, groups.flatMap((g) => g.parents));
  return { sequences, failedViews: views.failed };
}

/**
 * roles: copy — the roles the migrated objects need and the target lacks, created as they are on
 * the source (src/pg/roles.ts), journaled in the same transaction.
 */
async function copyMissingRoles(ctx: PhaseContext, s: Sessions, journal: Journal): Promise<RoleCopyResult | undefined> {
  const { plan, log } = ctx;
  // Jobs of a matrix may get here at once: one creates, the others then find nothing missing.
  return withStepLock(s.target, ROLES, async () => {
    const missing = await readMissingRoles(s.source, s.target, s.sourceVersion, plan.fullLoad.ownership === 'keep');
    if (!missing.length) return undefined;
    const earlier = ((await journal.phaseState(ROLES))?.detail ?? undefined) as RoleCopyResult | undefined;
    const versions = { source: s.sourceVersion, target: s.targetVersion };
    const result = await copyRoles(s.source, s.target, missing.map((m) => m.role), versions, log, async (r) => {
      const all: RoleCopyResult = earlier
        ? { created: [...earlier.created, ...r.created], memberships: [...earlier.memberships, ...r.memberships], settings: [...earlier.settings, ...r.settings], skipped: [...earlier.skipped, ...r.skipped] }
        : r;
      await journal.setPhaseDetail(ROLES, 'done', all);
    });
    for (const c of result.created) {
      const notes = [
        c.dropped.length ? `without ${c.dropped.join(', ')} (not allowed on the target)` : '',
        c.granted.length ? `granted ${c.granted.join(', ')}` : '',
        c.password === 'copied' ? 'password hash copied' : c.password === 'not readable' ? 'no password (the source does not expose password hashes): set one' : '',
      ].filter(Boolean);
      log.info(`role ${c.role} created on the target${notes.length ? `: ${notes.join('; ')}` : ''}`);
    }
    for (const k of result.skipped) log.warn(`roles: skipped ${k}`);
    const level = result.skipped.length || result.created.some((c) => c.dropped.length) ? 'warn' : 'info';
    await journal.event('full-load', level, `roles created on the target: ${result.created.map((c) => c.role).join(', ')}`, result);
    return result;
  });
}

/** The source's extensions on the target at the source's version where it has it (src/pg/extensions.ts), each reported. */
async function installSourceExtensions(ctx: PhaseContext, s: Sessions, journal: Journal): Promise<ExtensionInstall[]> {
  const installs = await installExtensions(s.target, await readSourceExtensions(s.source), ctx.plan.fullLoad.ownership === 'keep');
  for (const e of installs) {
    if (e.action === 'unavailable') ctx.log.warn(`extension ${e.name} ${e.source}: the target offers no version of it`);
    else if (e.action === 'left to the restore') ctx.log.warn(`extension ${e.name} ${e.source}: the target cannot list its extension versions, so the schema restore creates its default version`);
    else if (e.relation === 'same') ctx.log.info(`extension ${e.name} ${e.target} (${e.action}, the source's version)`);
    else if (e.action === 'already there') ctx.log.warn(`extension ${e.name}: already on the target at ${e.target}, ${e.source} on the source`);
    else ctx.log.warn(`extension ${e.name}: ${e.target} on the target (${e.action}), ${e.source} on the source — the target does not offer ${e.source}${e.relation === 'newer' ? '; verify accepts the newer version with extensions.acceptNewer' : ''}`);
  }
  await journal.setPhaseDetail(EXTENSIONS, 'done', installs);
  return installs;
}

/** Index builds worth a line (a second or more); the rest only with --debug. */
function logIndexBuilt(log: PhaseContext['log'], b: IndexBuild, ms: number, built: boolean): void {
  if (!built) return;
  const line = `index ${b.index} on ${displayName(b.table)} built in ${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) log.info(line);
  else log.debug(line);
}

/** Each stream's objects on the source, before its snapshot: journal row, heartbeat table, the engine's objects. */
async function prepareGroupObjects(s: Sessions, journal: Journal, stream: StreamSource, load: { parts: StreamPart[] }): Promise<void> {
  for (const part of load.parts) {
    await journal.saveStream(part.record);
    await ensureHeartbeat(s.source, heartbeatTable(part.record.group), part.record.group);
    await stream.prepare(s.source, part);
  }
}

/**
 * paused-replica: every group of the plan not loaded yet gets its publication and slot on the
 * primary first — so that matrix jobs starting later read the same paused replica — then the
 * replica is paused, or, when an earlier run or another job paused it, adopted at its LSN. A group
 * that already copied rows can only continue at the LSN it copied them at.
 */
async function pauseOrAdoptReplica(ctx: PhaseContext, s: Sessions, journal: Journal, stream: StreamSource, replicaEp: Endpoint, toLoad: GroupToLoad[], options: FullLoadOptions): Promise<PausedReplica> {
  const { plan, log } = ctx;
  return withStepLock(s.target, REPLICA, async () => {
    const streams = new Map((await journal.streams()).map((r) => [r.group, r]));
    const mine = new Set(toLoad.map((load) => load.group.name));
    const othersPending = plan.groups.map((g) => g.name).filter((g) => !mine.has(g) && (!streams.has(g) || streams.get(g)!.state === 'preparing'));
    const others = othersPending.length ? (await resolveGroups(ctx, s.source, s.sourceVersion)).filter((g) => othersPending.includes(g.name)) : [];
    const prepare = [
      ...toLoad,
      ...others.map((group) => {
        const record = streams.get(group.name) ?? newStreamRecord(plan, group.name);
        return { group, record, parts: stream.parts(group, record) };
      }),
    ];
    for (const load of prepare) {
      if (load.record.state === 'preparing') await prepareGroupObjects(s, journal, stream, load);
      for (const part of load.parts) await ensureSlot(s.source, part.record.slot, stream.plugin);
    }
    const slots = prepare.flatMap((load) => load.parts.map((p) => p.record.slot));
    const limits = plan.fullLoad.pausedReplica;
    const copied = await groupsWithCopiedRows(journal, toLoad.map((load) => load.group.name));
    const refuse = (load: GroupToLoad, why: string) =>
      gateRefused(
        'full-load.replica-moved',
        `group ${load.group.name} was partly loaded from the replica paused at ${load.record.snapshotLsn}, but ${why}`,
        `run pgshift full-load --restart${options.group ? ` --group ${load.group.name}` : ''} to load the group again from a new slot`,
      );
    const held = await journal.phaseState(REPLICA);
    const heldAt = held?.state === 'running' ? (held.detail as { lsn?: string } | null)?.lsn : undefined;
    let why = 'the replica has been resumed since';
    if (heldAt) {
      const adopted = await PausedReplica.adopt(replicaEp, s.source, slots, limits, log, heldAt);
      if (typeof adopted !== 'string') {
        const stale = toLoad.find((load) => copied.has(load.group.name) && load.record.snapshotLsn !== adopted.lsn);
        if (stale) {
          await adopted.detach();
          throw refuse(stale, `the replica is now paused at ${adopted.lsn}`);
        }
        return adopted;
      }
      why = adopted;
    }
    // A fresh pause gives a new LSN: only groups that copied nothing yet may take it.
    const stale = toLoad.find((load) => copied.has(load.group.name));
    if (stale) throw refuse(stale, why);
    const p = await PausedReplica.pause(replicaEp, s.source, slots, limits, log, ctx.signal);
    await journal.startPhase(REPLICA, { lsn: p.lsn });
    return p;
  });
}

async function groupsWithCopiedRows(journal: Journal, groups: string[]): Promise<Set<string>> {
  return new Set((await journal.tableProgress()).filter((p) => p.state === 'done' && groups.includes(p.group)).map((p) => p.group));
}

/**
 * One process per group at a time: a session-level advisory lock on the journal's connection,
 * held until the process ends (a kill -9 included). Holding the lock proves no live process loads
 * the group, so leftover target sessions of a dead run (an index build or a COPY the server has not
 * noticed is orphaned) are ended before anything starts again.
 */
async function claimGroups(c: pg.Client, migration: string, groups: string[]): Promise<void> {
  for (const g of groups) {
    if (!(await tryGroupLock(c, migration, g))) {
      throw gateRefused('full-load.running', `group ${g} is being loaded by another pgshift process right now`, 'wait for it to finish (pgshift status shows its progress) or stop that process first');
    }
  }
  // A process without --group held every group's lock, so its leftovers are safe to end too.
  await endSessionsNamed(c, [loadSessionName(migration, '*'), ...groups.map((g) => loadSessionName(migration, g))]);
}

/** Whether a live process (one holding its lock) still loads one of these groups. */
async function anotherGroupLoading(c: pg.Client, journal: Journal, groups: string[]): Promise<boolean> {
  const streams = new Map((await journal.streams()).map((r) => [r.group, r.state]));
  for (const g of groups) {
    const state = streams.get(g);
    if (state !== 'preparing' && state !== 'loading') continue;
    if (!(await groupLockFree(c, journal.migration, g))) return true;
  }
  return false;
}

/** A target session of the load, named so that a later run can find it if this process dies. */
async function openTarget(ctx: PhaseContext, sessionName: string): Promise<pg.Client> {
  const c = await connect(ctx.target, { applicationName: sessionName });
  await useLoadSettings(c, ctx.plan.fullLoad.maintenanceWorkMem);
  return c;
}

/**
 * cdc.replicaIdentityFull: the operator consented to REPLICA IDENTITY FULL for these tables, which
 * publishing would otherwise break. Their previous identity is journaled first, so that teardown
 * puts it back.
 */
async function applyReplicaIdentityConsent(ctx: PhaseContext, s: Sessions, journal: Journal, tables: TableInfo[]): Promise<void> {
  if (!tables.length) return;
  const before = ((await journal.phaseState(REPLICA_IDENTITY))?.detail ?? {}) as Record<string, unknown>;
  for (const t of tables) before[displayName(t)] ??= await replicaIdentityOf(s.source, t);
  await journal.setPhaseDetail(REPLICA_IDENTITY, 'done', before);
  for (const t of tables) {
    await setReplicaIdentity(s.source, t, 'full');
    ctx.log.info(`${displayName(t)}: REPLICA IDENTITY FULL on the source (cdc.replicaIdentityFull), so that publishing it leaves its UPDATE and DELETE working`);
  }
  await journal.event('full-load', 'warn', `REPLICA IDENTITY FULL set on ${tables.map(displayName).join(', ')} (cdc.replicaIdentityFull); teardown restores the previous identity`);
}

/** unlogged.mode: make-logged, with the plan's consent: before the slots, so the table publishes like any other. */
async function makeLogged(ctx: PhaseContext, s: Sessions, journal: Journal, tables: TableInfo[]): Promise<void> {
  for (const t of tables) {
    const started = Date.now();
    await setLogged(s.source, t);
    t.persistence = 'p';
    ctx.log.info(`${displayName(t)}: SET LOGGED on the source in ${((Date.now() - started) / 1000).toFixed(1)} s (unlogged.mode: make-logged)`);
  }
  if (tables.length) await journal.event('full-load', 'warn', `made logged on the source (SET LOGGED): ${tables.map(displayName).join(', ')} (unlogged.mode: make-logged); it stays logged`);
}

async function requireEmptyTarget(s: Sessions, ctx: PhaseContext, groups: ResolvedGroup[]) {
  const names = groups.flatMap((g) => [...g.tables, ...g.parents]);
  const present = await existingRelations(s.target, names);
  if (present.length) {
    const first = present[0];
    throw gateRefused(
      'target.not-empty',
      `target ${ctx.target.label} already has table ${displayName(first)}${present.length > 1 ? ` and ${present.length - 1} more` : ''} and no pgshift journal says it loaded them`,
      'load into an empty database (create a new one on the target) or drop those tables',
    );
  }
}

/**
 * Start a group over: what reads its slot goes first — its subscription (an enabled one would
 * attach to the new slot of the same name and apply changes onto a table being reloaded) and the
 * streams a resync split from it, whose tables the reload covers again — then the slot and the
 * engine's objects, then its copy progress.
 */
async function resetGroup(s: Sessions, ctx: PhaseContext, journal: Journal, stream: StreamSource, group: ResolvedGroup, existing: Map<string, StreamRecord>) {
  ctx.log.warn(`group ${group.name}: restarting — dropping its stream and reloading its tables`);
  // Its own stream and a companion, as journaled (the plan may have changed since) or as planned.
  const companion = batchStreamName(group.name);
  const names = ctx.plan.groups.some((g) => g.name === companion) ? [group.name] : [group.name, companion];
  const records = names.map((g) => existing.get(g) ?? newStreamRecord(ctx.plan, g));
  const resyncs = [...existing.values()].filter((r) => isResyncOf(r.group, group.name));
  for (const record of [...records, ...resyncs]) await dropSubscription(s.target, record.subscription);
  for (const record of resyncs) {
    await dropSlot(s.source, record.slot);
    await stream.drop(s.source, record);
    await journal.deleteStream(record.group);
  }
  // DMS: what resumes moved between the group's streams is forgotten with them.
  if (ctx.plan.cdc.engine === 'dms') await setDmsCarried(journal, Object.fromEntries([...records, ...resyncs].map((r) => [r.group, null])));
  for (const record of records) {
    await dropSlot(s.source, record.slot);
    await stream.drop(s.source, record);
    if (record.group !== group.name) await journal.deleteStream(record.group);
  }
  await forgetGroupProgress(s.target, journal.migration, group.name);
  await journal.event('full-load', 'warn', `group ${group.name}: restarted from a new slot`);
}

async function everyGroupLoaded(journal: Journal, names: string[]): Promise<boolean> {
  const streams = new Map((await journal.streams()).map((r) => [r.group, r.state]));
  return names.every((n) => {
    const state = streams.get(n);
    return state !== undefined && state !== 'preparing' && state !== 'loading';
  });
}

