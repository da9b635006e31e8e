import { gateRefused, inputError } from '../core/errors.js';
import { canonicalTableName, displayName } from '../core/ident.js';
import { isResyncOf } from '../core/names.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import { bridgeRecord, drainStreams, leaveStream, nextBridgeName, openBridgeStream } from './bridge.js';
import type { TableInfo } from '../pg/catalog.js';
import { connect, majorOf } from '../pg/connect.js';
import { replaceTableRows, useCopySettings } from '../pg/copy.js';
import { createSubscription, dropSubscription, publishedTables } from '../pg/replication.js';
import { dropSlot, importSnapshot, SnapshotHolder } from '../pg/snapshot.js';
import { prepareDdlApply } from '../pg/ddl.js';
import { nativeCdcStatus, requireNativeEngine, startNativeCdc, type AnyCdcStatus, type CdcStatus } from './cdc.js';
import { restartDmsCdc } from './cdc-dms.js';
import { writeFailureBundle } from './failure-bundle.js';
import { openSessions, resolveGroups, type PhaseContext, type Sessions } from './context.js';
import { preflightSubscription, requirePublishable, requireReplicationRoute, subscriptionConninfo } from './preflight.js';
import { runFullLoad } from './full-load.js';

/**
 * Repairs of a running migration (native engine).
 *
 * resync  Chosen tables are copied again while everything else keeps streaming. The bridge:
 *         (1) a new publication for just those tables; (2) the tables leave the group's
 *         publication at LSN L3; (3) a heartbeat written after that is waited for, so the old
 *         stream has applied every change to them up to L3 and sends no more; (4) a new slot
 *         exports a snapshot at L2 > L3; (5) the tables are cleared on the target and copied at L2
 *         — which contains every change up to L2, the ones between L3 and L2 included; (6) a new
 *         subscription applies from L2. No change is lost or applied twice.
 * restart A group (partial) or everything (full) loaded again from new slots; a full restart first
 *         writes the failure state (journal, status, events) to a JSON bundle for the artifact.
 */
export interface ResyncResult {
  stream: string;
  tables: string[];
  snapshotLsn: string;
  rows: number;
  status: CdcStatus;
}

export async function resyncTables(ctx: PhaseContext, names: string[]): Promise<ResyncResult> {
  requireNativeEngine(ctx, 'cdc resync', `a DMS task reads its whole slot: reload the tables' group with pgshift cdc restart --group GROUP`);
  if (names.length === 0) throw inputError('resync.tables', 'resync needs at least one table', 'pass --table schema.table …');
  names = names.map(canonicalTableName);
  const s = await openSessions(ctx);
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    if (!journal) throw gateRefused('resync.no-journal', 'there is no migration to resync', 'run full-load and cdc start first');
    const { owner, tables, streams } = await resyncScope(ctx, s, journal, names);
    // The resync's publication must not make the application's UPDATE and DELETE fail either.
    requirePublishable(ctx, tables);
    await preflightSubscription(ctx, s);
    await requireReplicationRoute(ctx);
    const pending = await pendingResync(journal, streams, owner, names);
    const name = pending?.group ?? nextBridgeName(owner, streams);
    const record = bridgeRecord(ctx, name, 'resyncing');
    await journal.startPhase('cdc:resync', { stream: name, tables: names });
    if (pending) {
      // What the interrupted run made reads nothing yet, or reads a slot this run replaces.
      await dropSubscription(s.target, record.subscription);
      await dropSlot(s.source, record.slot);
    }
    // (2) + (3): the tables leave the streams that carry them now (the group's, or an earlier
    // resync's), each of which then applies everything up to that point.
    const drained = await leaveCarriers(s, streams, owner, tables);
    await openBridgeStream(ctx, s, journal, record, tables);
    await drainStreams(ctx, s, drained, { start: false });
    // (4) + (5): a snapshot after that, and the tables copied again at it.
    const rows = await recopyAtNewSlot(ctx, s, record, tables);
    // (6): the new stream from the snapshot's LSN.
    await prepareDdlApply(s.target, ctx.plan, [record]);
    const conninfo = subscriptionConninfo(ctx);
    await createSubscription(s.target, {
      name: record.subscription,
      conninfo,
      publication: record.publication,
      slot: record.slot,
      streaming: majorOf(s.sourceVersion) >= 14 && majorOf(s.targetVersion) >= 14,
    }, ctx.log);
    record.state = 'streaming';
    await journal.saveStream(record);
    await journal.finishPhase('cdc:resync', 'done', { stream: name, tables: names, snapshotLsn: record.snapshotLsn, rows });
    ctx.log.info(`resync: ${names.join(', ')} copied again at ${record.snapshotLsn} (${rows} rows), now streaming as ${name}`);
    return { stream: name, tables: names, snapshotLsn: record.snapshotLsn!, rows, status: await nativeCdcStatus(ctx, 10_000) };
  } finally {
    await s.close();
  }
}

/** The group that holds every named table (one group for all), its tables, and the journal's streams — the group's own streaming. */
async function resyncScope(ctx: PhaseContext, s: Sessions, journal: Journal, names: string[]): Promise<{ owner: string; tables: TableInfo[]; streams: StreamRecord[] }> {
  const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
  const wanted = new Set(names);
  const owner = groups.find((g) => g.tables.some((t) => wanted.has(displayName(t))));
  const tables = owner ? owner.tables.filter((t) => wanted.has(displayName(t))) : [];
  const unknown = names.filter((n) => !tables.some((t) => displayName(t) === n));
  if (!owner || unknown.length) {
    throw inputError('resync.table', `table ${unknown[0] ?? names[0]} is not in one group of the plan with the others`, 'resync tables of one group at a time, named schema.table as verify prints them');
  }
  const streams = await journal.streams();
  const base = streams.find((r) => r.group === owner.name);
  if (!base || base.state !== 'streaming') throw gateRefused('resync.not-streaming', `group ${owner.name} is not streaming`, 'run pgshift cdc start first');
  return { owner: owner.name, tables, streams };
}

/**
 * A resync that was interrupted is finished by running it again with the same tables: its tables
 * left their stream already and are carried by nothing until it completes. Its stream, if any;
 * refused when other tables are named.
 */
async function pendingResync(journal: Journal, streams: StreamRecord[], owner: string, names: string[]): Promise<StreamRecord | undefined> {
  const wanted = new Set(names);
  const journaled = await journal.phaseState('cdc:resync');
  const pending = streams.find((r) => isResyncOf(r.group, owner) && r.state === 'resyncing');
  const pendingTables = pending ? ((journaled?.detail as { stream?: string; tables?: string[] } | null)?.stream === pending.group ? ((journaled!.detail as { tables: string[] }).tables ?? []) : []) : [];
  if (pending && (pendingTables.length !== names.length || pendingTables.some((t) => !wanted.has(t)))) {
    throw gateRefused('resync.pending', `an interrupted resync of ${pendingTables.join(', ') || pending.group} has not finished`, `run pgshift cdc resync -t ${pendingTables.join(' ') || '…'} first: its tables are carried by no stream until it completes`);
  }
  return pending;
}

/** The tables leave every streaming carrier of the group that publishes one of them; returns those carriers, to be drained. */
async function leaveCarriers(s: Sessions, streams: StreamRecord[], owner: string, tables: TableInfo[]): Promise<StreamRecord[]> {
  const carriers = streams.filter((r) => r.state === 'streaming' && (r.group === owner || isResyncOf(r.group, owner)));
  const drained: StreamRecord[] = [];
  for (const carrier of carriers) {
    const published = await publishedTables(s.source, carrier.publication);
    if (!tables.some((t) => published.has(displayName(t)))) continue;
    await leaveStream(s, carrier, tables);
    drained.push(carrier);
  }
  return drained;
}

/** The bridge's slot made with an exported snapshot, the tables copied again at it; the snapshot's LSN goes into the record. */
async function recopyAtNewSlot(ctx: PhaseContext, s: Sessions, record: StreamRecord, tables: TableInfo[]): Promise<number> {
  const holder = await SnapshotHolder.createSlot(ctx.source, record.slot, 'pgoutput', s.sourceVersion);
  try {
    const rows = await recopy(ctx, tables, holder.snapshotName);
    record.snapshotLsn = holder.lsnText;
    return rows;
  } finally {
    await holder.release();
  }
}

/**
 * Clear and copy tables on the target at an exported snapshot. Foreign keys are in place by now:
 * the target session runs as a replica (no FK triggers) and deletes rather than truncates, in one
 * transaction per table, as the subscription's apply worker does.
 */
async function recopy(ctx: PhaseContext, tables: TableInfo[], snapshotName: string): Promise<number> {
  const source = await connect(ctx.source, { applicationName: 'pgshift resync' });
  const target = await connect(ctx.target, { applicationName: 'pgshift resync' });
  let rows = 0;
  try {
    await Promise.all([useCopySettings(source), useCopySettings(target)]);
    for (const t of tables) {
      await importSnapshot(source, snapshotName);
      rows += await replaceTableRows(source, target, t, { format: ctx.plan.fullLoad.copyFormat });
    }
  } finally {
    await Promise.all([source.end().catch(() => {}), target.end().catch(() => {})]);
  }
  return rows;
}

export interface RestartResult {
  groups: string[];
  bundle?: string;
  status: AnyCdcStatus;
}

export async function restartCdc(ctx: PhaseContext, options: { group?: string; bundleFile?: string }): Promise<RestartResult> {
  if (ctx.plan.cdc.engine === 'dms') return restartDmsCdc(ctx, options);
  const s = await openSessions(ctx);
  let affected: StreamRecord[];
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    if (!journal) throw gateRefused('restart.no-journal', 'there is no migration to restart', 'run pgshift full-load');
    const streams = await journal.streams();
    if (options.group && !streams.some((r) => r.group === options.group)) throw inputError('restart.group', `group ${options.group} has no stream`, `use one of: ${streams.map((r) => r.group).join(', ')}`);
    affected = streams.filter((r) => !options.group || r.group === options.group || isResyncOf(r.group, options.group));
    if (!options.group) {
      // The failure state first: what an engineer needs to understand what went wrong.
      options.bundleFile = await writeFailureBundle(ctx, journal, options.bundleFile, { status: await statusOrError(ctx) });
    }
    await journal.event('cdc', 'warn', `restart of ${options.group ? `group ${options.group}` : 'every group'}`);
  } finally {
    await s.close();
  }
  // The reload drops each group's subscription and resync streams before its slot (resetGroup).
  const groups = options.group ? [options.group] : undefined;
  if (groups) await runFullLoad(ctx, { group: groups[0], restart: true });
  else await runFullLoad(ctx, { restart: true });
  const status = await startNativeCdc(ctx);
  return { groups: groups ?? affected.map((r) => r.group), bundle: options.bundleFile, status };
}

async function statusOrError(ctx: PhaseContext): Promise<unknown> {
  try {
    return await nativeCdcStatus(ctx, 2_000);
  } catch (err) {
    return { error: (err as Error).message };
  }
}
