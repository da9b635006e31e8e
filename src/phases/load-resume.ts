import type pg from 'pg';
import { formatBytes } from '../config/size.js';
import { displayName } from '../core/ident.js';
import { batchStreamName, isResyncOf } from '../core/names.js';
import { planResume, type ResumePlan, type TableFigures } from '../core/resume-plan.js';
import type { Journal, StreamRecord } from '../journal/journal.js';
import type { TableInfo } from '../pg/catalog.js';
import { truncateTables } from '../pg/copy.js';
import { earlyIndexes, IndexQueue, indexesOf } from '../pg/indexes.js';
import { SnapshotHolder } from '../pg/snapshot.js';
import { bridgeRecord, nextBridgeName, tablesNamed, type BridgeEngine } from './bridge.js';
import type { PhaseContext, ResolvedGroup, Sessions } from './context.js';

/**
 * A group's exported-snapshot load resumed after its process died (core/resume-plan.ts has the
 * rule): finished tables are kept at the snapshot they were copied at; the rest are bridged to a
 * new resume stream whose snapshot this run copies them at.
 */
export interface ResumeSummary {
  /** Tables kept from earlier runs, with their rows and bytes. */
  kept: TableFigures & { tables: number };
  /** Finished parts of split tables thrown away (their table is copied again whole). */
  discarded: TableFigures & { tables: string[] };
  /** Bytes an earlier run had streamed for parts that never committed (its last progress snapshot; approximate). */
  inFlightBytes: number;
  /** Tables copied again at the new snapshot. */
  pending: number;
  /** Rows and bytes this run copied for them (set when the load ends). */
  copied: TableFigures;
  /** The resume stream made by this run, and its snapshot LSN. */
  stream?: string;
  snapshotLsn?: string;
  /** Resume streams of earlier runs dropped whole, and streams applied up to the bridge. */
  dropped: string[];
  drained: string[];
}

export interface ResumedGroup {
  summary: ResumeSummary;
  holder?: SnapshotHolder;
  /** The group's bridge streams after the resume (journaled 'loading' until the load ends). */
  bridges: StreamRecord[];
}

type ProgressRow = Awaited<ReturnType<Journal['tableProgress']>>[number];

export async function resumeGroup(
  ctx: PhaseContext,
  s: Sessions,
  journal: Journal,
  group: ResolvedGroup,
  own: StreamRecord,
  progress: ProgressRow[],
  lastSnapshot: { active?: Array<{ table: string; bytes: number }> } | undefined,
  openTarget: () => Promise<pg.Client>,
  engine: BridgeEngine,
): Promise<ResumedGroup> {
  const { done, partial } = finishedFigures(progress, group.name);
  const all = await journal.streams();
  // Its own stream (and on DMS its batch-apply companion), never dropped; then its resume streams.
  const streams = [own, ...all.filter((r) => r.group === batchStreamName(group.name)), ...all.filter((r) => isResyncOf(r.group, group.name))];
  const published = new Map<string, Set<string>>();
  for (const st of streams) published.set(st.group, await engine.carried(st));
  const plan = planResume({
    tables: group.tables.map(displayName),
    done,
    partial,
    streams: streams.map((st) => ({ name: st.group, own: !isResyncOf(st.group, group.name), published: published.get(st.group)! })),
  });
  const inFlightBytes = (lastSnapshot?.active ?? []).filter((a) => plan.pending.includes(a.table)).reduce((n, a) => n + Math.max(0, a.bytes - (partial.get(a.table)?.bytes ?? 0)), 0);
  const summary: ResumeSummary = {
    kept: plan.kept,
    discarded: { rows: plan.discarded.rows, bytes: plan.discarded.bytes, tables: plan.discarded.parts },
    inFlightBytes,
    pending: plan.pending.length,
    copied: { rows: 0, bytes: 0 },
    dropped: plan.drop,
    drained: plan.drain,
  };
  const surviving = streams.filter((st) => isResyncOf(st.group, group.name) && !plan.drop.includes(st.group));
  ctx.log.info(
    `group ${group.name}: resuming — ${plan.kept.tables} table(s) kept at their snapshot (${plan.kept.rows} rows, ${formatBytes(plan.kept.bytes)}), ${plan.pending.length} to copy from a new one` +
      (plan.discarded.parts.length ? `; finished parts discarded with their table: ${plan.discarded.rows} rows, ${formatBytes(plan.discarded.bytes)}` : ''),
  );
  if (!plan.newStream) return { summary, bridges: surviving };
  const finished = group.tables.filter((t) => done.has(displayName(t)));
  return bridgePending({ ctx, s, journal, group, own, openTarget, engine }, plan, streams, surviving, finished, summary);
}

/** Rows and bytes of the group's tables finished whole, and of the finished parts of split ones. */
function finishedFigures(progress: ProgressRow[], group: string): { done: Map<string, TableFigures>; partial: Map<string, TableFigures> } {
  const rows = progress.filter((p) => p.group === group && p.state === 'done');
  const done = new Map<string, TableFigures>();
  const partial = new Map<string, TableFigures>();
  for (const p of rows.filter((r) => r.part === 0)) done.set(displayName(p), { rows: p.rows ?? 0, bytes: p.bytes ?? 0 });
  for (const p of rows.filter((r) => r.part > 0 && !done.has(displayName(r)))) {
    const f = partial.get(displayName(p)) ?? { rows: 0, bytes: 0 };
    f.rows += p.rows ?? 0;
    f.bytes += p.bytes ?? 0;
    partial.set(displayName(p), f);
  }
  return { done, partial };
}

/** What the bridge works with: the group, its own stream, the engine's stream operations. */
interface BridgeInput {
  ctx: PhaseContext;
  s: Sessions;
  journal: Journal;
  group: ResolvedGroup;
  own: StreamRecord;
  openTarget: () => Promise<pg.Client>;
  engine: BridgeEngine;
}

/**
 * The bridge for the pending tables, in its order: finished tables' indexes, pending tables
 * emptied, empty resume streams dropped, (1) the pending tables leave their streams and the new
 * stream's objects are made, (2) every surviving stream drains, (3) the new slot's snapshot.
 */
async function bridgePending(b: BridgeInput, plan: ResumePlan, streams: StreamRecord[], surviving: StreamRecord[], finished: TableInfo[], summary: ResumeSummary): Promise<ResumedGroup> {
  const { ctx, s, journal, group, engine } = b;
  const { log } = ctx;
  const byName = new Map(streams.map((st) => [st.group, st]));
  const pending = tablesNamed(group.tables, plan.pending);
  // The finished tables' indexes before their stream applies: an UPDATE on a table without its key
  // index is a scan of the whole table.
  await buildIndexesOf(s, b.openTarget, ctx.plan.fullLoad.indexJobs, finished);
  // Pending tables are emptied now — their finished parts are discarded — so that what the drain
  // applies to them is cheap; the copy clears them again in its own transaction.
  await truncateTables(s.target, pending, () => journal.forgetTables(pending));
  if (plan.discarded.parts.length) log.warn(`group ${group.name}: ${plan.discarded.parts.join(', ')} had parts finished at the old snapshot; copied again whole`);
  for (const name of plan.drop) {
    await engine.drop(byName.get(name)!);
    log.info(`group ${group.name}: resume stream ${name} held no finished table; dropped`);
  }
  // (1) the pending tables leave their streams; the new stream's objects, before its slot.
  for (const l of plan.leave) await engine.leave(byName.get(l.stream)!, tablesNamed(group.tables, l.tables));
  const record = bridgeRecord(ctx, nextBridgeName(group.name, [...surviving, b.own]), 'loading');
  await engine.open(record, pending);
  // (2) every surviving stream applies up to now.
  const drain = plan.drain.map((n) => byName.get(n)!);
  if (drain.length) log.info(`group ${group.name}: applying ${drain.map((d) => d.group).join(', ')} up to the bridge`);
  await engine.drain(drain);
  // (3) the new snapshot the pending tables are copied at.
  const holder = await SnapshotHolder.createSlot(ctx.source, record.slot, engine.plugin, s.sourceVersion);
  record.snapshotLsn = holder.lsnText;
  await journal.saveStream(record);
  summary.stream = record.group;
  summary.snapshotLsn = holder.lsnText;
  await journal.event('full-load', 'info', `group ${group.name}: resumed; ${plan.kept.tables} table(s) kept, ${plan.pending.length} carried by ${record.group} from ${holder.lsnText}`, summary);
  log.info(`group ${group.name}: resume stream ${record.group} at ${holder.lsnText} carries ${plan.pending.length} table(s)`);
  return { summary, holder, bridges: [...surviving, record] };
}

async function buildIndexesOf(s: Sessions, open: () => Promise<pg.Client>, jobs: number, tables: TableInfo[]): Promise<void> {
  if (!tables.length) return;
  const early = await earlyIndexes(s.source, tables);
  const queue = new IndexQueue(open, jobs, () => {});
  try {
    queue.add(tables.flatMap((t) => indexesOf(early, t)));
    await queue.drain();
  } finally {
    await queue.close();
  }
}

/** Journal phase holding the last resume of a group (its ResumeSummary), read by `pgshift status`. */
export const resumePhase = (group: string) => `full-load:resume:${group}`;
