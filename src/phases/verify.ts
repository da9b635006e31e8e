import { writeFileSync } from 'node:fs';
import type pg from 'pg';
import { failure, gateRefused, inputError } from '../core/errors.js';
import { canonicalTableName, displayName } from '../core/ident.js';
import { batchStreamName, heartbeatTable } from '../core/names.js';
import { runPool } from '../core/pool.js';
import { Journal, type StreamRecord } from '../journal/journal.js';
import { ddlReport, joinNewTables, joinText } from '../pg/ddl.js';
import { ApplyWatch } from '../pg/stream-health.js';
import { listSequences, missingTables, type TableInfo } from '../pg/catalog.js';
import {
  bucketFingerprints,
  bucketScans,
  chunkBoundaries,
  keyedTable,
  keyText,
  leafHashes,
  rangeFingerprint,
  rangesFrom,
  repairScript,
  repairStatements,
  runScript,
  rowHashes,
  rowValues,
  splitRange,
  type Fingerprint,
  type KeyedTable,
  type Range,
} from '../pg/chunks.js';
import { connect } from '../pg/connect.js';
import { cancelOnAbort } from '../pg/cancel.js';
import { sleep, throwIfAborted } from '../core/wait.js';
import { fingerprint, useCanonicalSettings } from '../pg/hash.js';
import { waitForMarker, writeBeat } from '../pg/heartbeat.js';
import { diffSchemas, schemaDiffOptions, type SchemaDifference } from '../pg/schema-diff.js';
import { readSequence, shapeOf } from '../pg/sequences.js';
import { isBehind } from '../core/sequences.js';
import { describeLargeObjectChanges, largeObjectChanges, type LargeObjectChanges } from '../core/large-objects.js';
import { largeObjectDigests } from '../pg/large-objects.js';
import { openSessions, resolveGroups, type PhaseContext, type Sessions } from './context.js';

/**
 * Verify: prove the target equals the source, down to the differing rows.
 *
 *  schema tier  catalogs compared object by object (src/pg/schema-diff.ts);
 *  data tier    per table, key-range chunks fingerprinted (count + sum of 64-bit row hashes) in
 *               each server — no row leaves a server while chunks match; a mismatched chunk is split
 *               (factor 16) down to a few thousand rows, whose (key, hash) pairs are compared, and only
 *               the differing rows are fetched. Tables without a key: one whole-table fingerprint;
 *  sequences    target ≥ source.
 *
 * While changes flow (a group streaming and not --exact), every target read waits for a heartbeat
 * written after the matching source read, so the target has applied at least what the source
 * read saw; each differing key is then re-checked by point lookups, and reported only if the
 * source row held still while the target still disagreed. Keys that change under every check are
 * "unsettled", never "different". With writes fenced and drained (--exact) one pass is exact.
 */
export type TableVerdict = 'equal' | 'different' | 'unsettled';
export type VerifyMode = 'full' | 'quick';

export interface RowDifference {
  key: Record<string, string>;
  kind: 'missing' | 'extra' | 'different';
  source?: Record<string, unknown>;
  target?: Record<string, unknown>;
}

export interface TableCheck {
  table: string;
  group: string;
  method: 'chunks' | 'sampled-chunks' | 'whole-table';
  verdict: TableVerdict;
  sourceRows: number;
  targetRows: number;
  chunks: number;
  mismatchedChunks: number;
  differenceCount: number;
  differences: RowDifference[];
  unsettledKeys: number;
  seconds: number;
}

export interface SequenceCheck {
  sequence: string;
  source: string;
  target: string;
  behind: boolean;
}

export interface VerifyResult {
  verdict: TableVerdict;
  mode: VerifyMode;
  /** Run with --exact: the operator has stopped writes, so one pass without re-checks is final. */
  exact: boolean;
  /** A stream was applying changes to the target while it was read (differences re-checked). */
  streaming: boolean;
  tables: TableCheck[];
  schema: SchemaDifference[];
  sequences: SequenceCheck[];
  /** Large objects that differ (nothing replicates them; the cut-over carries them). */
  largeObjects: LargeObjectChanges;
  differences: string[];
  unsettled: string[];
  /** What the reader should know that is not a difference (sequences before the cut-over). */
  notes: string[];
  repairSql?: { file: string; statements: number; applied: boolean };
  seconds: number;
}

export interface VerifyOptions {
  /** Writes are fenced and drained: one exact pass, no re-checks. */
  exact?: boolean;
  mode?: VerifyMode;
  tables?: string[];
  /** Write SQL that would repair the differing rows to this file. */
  repairSql?: string;
  /** Run that SQL on the target (only with repairSql, never implied). */
  applyRepair?: boolean;
  /** Leave out the schema tier (the cut-over gate has checked it). */
  skipSchema?: boolean;
  /** Do not journal this run as the migration's verify (the cut-over's own final check). */
  quiet?: boolean;
  /** Stop (cancelling the statements running on both servers) when this aborts: a budget, an interrupt. */
  signal?: AbortSignal;
}

const SPLIT_FACTOR = 16;
const LEAF_ROWS = 4000;
const REPORTED_ROWS = 1000;
const SAMPLED_VALUES = 20;
const QUICK_CHUNKS = 4;

interface Sides {
  source: pg.Client;
  target: pg.Client;
}

/** One table to check, with the group whose streams carry it. */
interface VerifyWork {
  group: string;
  table: TableInfo;
}

/** What this run checks, and what it knows of the migration. */
interface VerifyScope {
  /** The migration's journal on the target: absent when pgshift did not load it. */
  found: Journal | undefined;
  /** The journal this run records itself in (none when quiet). */
  journal: Journal | undefined;
  /** The streams applying changes now. */
  records: StreamRecord[];
  /** The tables the operator named (--table), if any. */
  wanted: Set<string> | undefined;
  work: VerifyWork[];
  /** Tables of the work the target lacks (display names). */
  missing: Set<string>;
}

/** The per-worker sessions, and every session verify opens, for cancellation when the signal aborts. */
interface VerifySessions {
  workers: Sides[];
  open: { source: pg.Client[]; target: pg.Client[] };
}

export async function runVerify(outer: PhaseContext, options: VerifyOptions = {}): Promise<VerifyResult> {
  // The caller's signal (the cut-over's step budget) ends verify as well as the process's own.
  const ctx: PhaseContext = options.signal ? { ...outer, signal: AbortSignal.any([options.signal, outer.signal]) } : outer;
  const started = Date.now();
  const mode = options.mode ?? 'full';
  if (options.applyRepair && !options.repairSql) throw inputError('verify.repair', '--apply-repair needs --repair-sql FILE', 'name the file the repair SQL is written to (and review it)');
  const s = await openSessions(ctx);
  const sessions: VerifySessions = { workers: [], open: { source: [s.source], target: [s.target] } };
  const stopCancelling = cancelOnAbort(ctx.signal, [
    { ep: ctx.source, clients: sessions.open.source },
    { ep: ctx.target, clients: sessions.open.target },
  ]);
  try {
    await useCanonicalSettings(s.source);
    await useCanonicalSettings(s.target);
    const scope = await verifyScope(ctx, s, options);
    await scope.journal?.startPhase('verify', { tables: scope.work.length, exact: options.exact ?? false, mode });
    const watch = await watchStreams(ctx, s, scope.records, options);
    const schema = scope.wanted || options.skipSchema ? [] : await diffSchemas(s.source, s.target, schemaDiffOptions(ctx.plan));
    const { checks, repair } = await checkTables(ctx, s, sessions, scope, watch, options, mode);
    const result = await summarize(ctx, s, scope, checks, schema, options, mode, started);
    if (options.repairSql) result.repairSql = await writeRepair(s.target, scope.journal, options.repairSql, repair, options.applyRepair);
    await scope.journal?.finishPhase('verify', result.verdict === 'different' ? 'failed' : result.verdict === 'equal' ? 'done' : 'partial', {
      verdict: result.verdict,
      mode,
      exact: result.exact,
      differences: result.differences,
      unsettled: result.unsettled,
      schemaDifferences: schema.length,
      tables: checks.length,
      differingRows: checks.reduce((n, c) => n + c.differenceCount, 0),
    });
    return result;
  } finally {
    stopCancelling();
    await Promise.all(sessions.workers.flatMap((w) => [w.source.end().catch(() => {}), w.target.end().catch(() => {})]));
    await s.close();
  }
}

/** The tables to check (the plan's groups, less exclusions, or the ones named) and the streams applying now. */
async function verifyScope(ctx: PhaseContext, s: Sessions, options: VerifyOptions): Promise<VerifyScope> {
  const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
  const found = await Journal.find(s.target, ctx.plan.name);
  const records = found ? (await found.streams()).filter((r) => r.state === 'streaming') : [];
  const excluded = new Set(ctx.plan.verify.excludeTables.map(canonicalTableName));
  const wanted = options.tables ? new Set(options.tables.map(canonicalTableName)) : undefined;
  const work = groups.flatMap((g) =>
    g.tables
      .filter((t) => !excluded.has(displayName(t)) && !t.name.startsWith('awsdms_') && (!wanted || wanted.has(displayName(t))))
      .map((t) => ({ group: g.name, table: t })),
  );
  if (wanted) {
    const known = new Set(work.map((w) => displayName(w.table)));
    const unknown = [...wanted].filter((t) => !known.has(t));
    if (unknown.length) throw inputError('verify.table', `table ${unknown[0]} is in no group of the plan`, 'name tables as schema.table, as the report prints them');
  }
  // A table the target lacks cannot be hashed there: before any load that is a refusal (nothing
  // to compare yet); after it, a difference in its own right, reported without reading it.
  const missing = await missingTables(s.target, work.map((w) => w.table));
  if (missing.size && !found) {
    const [first] = missing;
    throw gateRefused('verify.not-loaded', `target ${ctx.target.label} has no table ${first}${missing.size > 1 ? ` (and ${missing.size - 1} more)` : ''} and no pgshift journal: nothing was loaded there yet`, 'run pgshift full-load first');
  }
  return { found, journal: options.quiet ? undefined : found, records, wanted, work, missing };
}

/**
 * While changes flow, every read of the target waits for the stream: a stream that stands still is
 * reported at once, with its likely cause, rather than waited for. Tables that joined a stream are
 * settled first.
 */
async function watchStreams(ctx: PhaseContext, s: Sessions, records: StreamRecord[], options: VerifyOptions): Promise<ApplyWatch | undefined> {
  if (options.exact || !records.length || ctx.plan.cdc.engine !== 'native') return undefined;
  const watch = await ApplyWatch.start(s.target, s.targetVersion, records.map((r) => ({ stream: r.group, subscription: r.subscription })), (problem, stream) => stoppedStream(ctx, s, records, problem, stream), ctx.signal);
  await settleJoins(ctx, s, records, watch);
  return watch;
}

/** The streams that carry a group's tables: its own, the resync streams split from it, and on DMS its batch-apply stream. */
function streamsOf(records: StreamRecord[], group: string): string[] {
  const streaming = new Set(records.map((r) => r.group));
  return [...streaming].filter((x) => x === group || x === batchStreamName(group) || x.startsWith(`${group}_r`));
}

/** The data tier: every table checked by a pool of workers; the repair statements of the differing keyed ones. */
async function checkTables(ctx: PhaseContext, s: Sessions, sessions: VerifySessions, scope: VerifyScope, watch: ApplyWatch | undefined, options: VerifyOptions, mode: VerifyMode): Promise<{ checks: TableCheck[]; repair: string[] }> {
  const checks: TableCheck[] = [];
  const repair: string[] = [];
  const isMissing = (w: VerifyWork) => scope.missing.has(displayName(w.table));
  for (const w of scope.work.filter(isMissing)) {
    checks.push({ table: displayName(w.table), group: w.group, method: 'whole-table', verdict: 'different', sourceRows: 0, targetRows: 0, chunks: 0, mismatchedChunks: 0, differenceCount: 0, differences: [], unsettledKeys: 0, seconds: 0 });
  }
  await runPool(scope.work.filter((x) => !isMissing(x)), ctx.plan.verify.jobs, async ({ group, table }, id) => {
    throwIfAborted(ctx.signal);
    const w = await workerSides(ctx, sessions, id);
    const streams = streamsOf(scope.records, group);
    const moving = streams.length > 0 && !options.exact;
    // Both sides hash with the same expression: the one the older server supports.
    const checker = new TableChecker(ctx, w, Math.min(s.sourceVersion, s.targetVersion), group, table, moving, mode, streams, watch);
    const check = await checker.run();
    checks.push(check);
    if (options.repairSql && checker.keyed && check.verdict === 'different') repair.push(...(await checker.repair()));
    ctx.log.progress(`verify ${check.table}: ${check.verdict} (${check.sourceRows} rows, ${check.chunks} chunk(s)${check.differenceCount ? `, ${check.differenceCount} differing row(s)` : ''})`);
  });
  checks.sort((a, b) => a.table.localeCompare(b.table));
  return { checks, repair };
}

/** A pool worker's two sessions, opened on its first table under the canonical settings. */
async function workerSides(ctx: PhaseContext, sessions: VerifySessions, id: number): Promise<Sides> {
  const existing = sessions.workers[id];
  if (existing) return existing;
  const w = (sessions.workers[id] = { source: await connect(ctx.source, { applicationName: 'pgshift verify' }), target: await connect(ctx.target, { applicationName: 'pgshift verify' }) });
  sessions.open.source.push(w.source);
  sessions.open.target.push(w.target);
  await useCanonicalSettings(w.source);
  await useCanonicalSettings(w.target);
  return w;
}

/** The verdict over every tier: tables, schema, sequences and large objects (the last two only notes before the cut-over). */
async function summarize(ctx: PhaseContext, s: Sessions, scope: VerifyScope, checks: TableCheck[], schema: SchemaDifference[], options: VerifyOptions, mode: VerifyMode, started: number): Promise<VerifyResult> {
  const sequences = await checkSequences(s.source, s.target);
  // Only the operator can say that writes are stopped (--exact); a pass with no stream applying
  // is a single pass too, but the source may still be written.
  const exact = Boolean(options.exact);
  const differences = checks.filter((c) => c.verdict === 'different').map((c) => c.table);
  const unsettled = checks.filter((c) => c.verdict === 'unsettled').map((c) => c.table);
  // Nothing replicates sequences: the cut-over carries them. Before it has (streaming, paused,
  // stopped), a sequence behind the source is a note; after it, or for a target pgshift did not
  // load (no journal), it is a difference.
  const carried = !scope.found || (await scope.found.phaseState('cutover'))?.state === 'done';
  const behind = sequences.filter((q) => q.behind);
  const seqProblem = carried && behind.length > 0;
  const notes = !carried && behind.length ? [`${behind.length} sequence(s) behind the source: expected before the cut-over, which sets every sequence from the source`] : [];
  // Large objects, the same way: the cut-over carries their changes.
  const keepOwners = ctx.plan.fullLoad.ownership === 'keep';
  const largeObjects = scope.wanted || options.skipSchema ? { copy: [], remove: [] } : largeObjectChanges(await largeObjectDigests(s.source, keepOwners), await largeObjectDigests(s.target, keepOwners));
  const loDiffer = largeObjects.copy.length + largeObjects.remove.length > 0;
  if (!carried && loDiffer) notes.push(`large objects: ${describeLargeObjectChanges(largeObjects)} — expected before the cut-over, which carries them`);
  const loProblem = carried && loDiffer;
  const schemaProblem = schema.length > 0;
  return {
    verdict: differences.length || seqProblem || schemaProblem || loProblem ? 'different' : unsettled.length ? 'unsettled' : 'equal',
    mode,
    exact,
    streaming: scope.records.length > 0,
    tables: checks,
    schema,
    sequences,
    largeObjects,
    differences,
    unsettled,
    notes,
    seconds: (Date.now() - started) / 1000,
  };
}

/** The repair SQL written to its file, and run on the target only when asked (and there is any). */
async function writeRepair(target: pg.Client, journal: Journal | undefined, file: string, repair: string[], apply: boolean | undefined): Promise<NonNullable<VerifyResult['repairSql']>> {
  const text = repairScript(repair);
  writeFileSync(file, text);
  let applied = false;
  if (apply && repair.length) {
    await runScript(target, text);
    applied = true;
    await journal?.event('verify', 'warn', `repair applied on the target: ${repair.length} statement(s)`);
  }
  return { file, statements: repair.length, applied };
}

/**
 * A stream that stands still, with what pgshift can tell of the cause: DDL not carried, or the
 * first way the target's catalog lacks what the source has (the apply error itself is only in the
 * target's server log).
 */
async function stoppedStream(ctx: PhaseContext, s: Sessions, records: StreamRecord[], problem: string, stream: string): Promise<Error> {
  const causes: string[] = [];
  const ddl = await ddlReport(ctx.plan, s, records).catch(() => undefined);
  const uncarried = ddl?.entries.find((e) => e.state !== 'applied' && e.state !== 'in flight');
  if (uncarried) causes.push(`DDL #${uncarried.id} ${uncarried.state} (${uncarried.command} ${uncarried.object}: ${uncarried.detail})`);
  const drift = (await diffSchemas(s.source, s.target, schemaDiffOptions(ctx.plan)).catch(() => [])).find((d) => (d.kind === 'table' || d.kind === 'column') && d.problem !== 'extra on target');
  if (drift) causes.push(`${drift.kind} ${drift.object} is ${drift.problem}${drift.source ? ` (source: ${drift.source}${drift.target ? `; target: ${drift.target}` : ''})` : ''}`);
  return failure(
    'verify.stream-stopped',
    `group ${stream} is not applying changes: ${problem}${causes.length ? `; likely cause: ${causes.join('; ')}` : ''}`,
    'pgshift cdc status shows the streams and the target server log has the apply error; fix it (a schema change: apply it on the target), then verify again',
  );
}

/** Tables that joined a stream on the source: into the subscription, and their copy waited for. */
async function settleJoins(ctx: PhaseContext, s: Sessions, records: StreamRecord[], watch: ApplyWatch): Promise<void> {
  const deadline = Date.now() + Math.max(60, ctx.plan.cdc.maxLagSeconds) * 1000;
  for (;;) {
    const refreshed = await joinNewTables(ctx.plan, s, records);
    for (const r of refreshed) ctx.log.info(`verify: table ${r} joined its subscription on the target; waiting for its rows`);
    const joins = (await ddlReport(ctx.plan, s, records)).joins;
    if (joins.length === 0) return;
    if (Date.now() > deadline) {
      ctx.log.warn(`verify: ${joins.map(joinText).join('; ')}`);
      return;
    }
    await watch.assertApplying();
    await sleep(500, ctx.signal);
  }
}

async function checkSequences(source: pg.Client, target: pg.Client): Promise<SequenceCheck[]> {
  const out: SequenceCheck[] = [];
  for (const q of await listSequences(source)) {
    const a = await readSequence(source, q);
    const b = await readSequence(target, q).catch(() => undefined);
    out.push({
      sequence: displayName(q),
      source: a.lastValue.toString(),
      target: b ? b.lastValue.toString() : 'missing',
      behind: isBehind(shapeOf(q), a, b),
    });
  }
  return out;
}

class TableChecker {
  readonly keyed: KeyedTable | null;
  private readonly name: string;
  private readonly candidates = new Map<string, { key: string[]; kind: RowDifference['kind'] }>();
  private confirmed: Array<{ key: string[]; kind: RowDifference['kind'] }> = [];
  private chunks = 0;
  private mismatched = 0;
  private sourceRows = 0;
  private targetRows = 0;

  constructor(
    private readonly ctx: PhaseContext,
    private readonly w: Sides,
    /** Server version the row hash is written for (the lower of the two). */
    private readonly hashVersion: number,
    private readonly group: string,
    private readonly table: TableInfo,
    private readonly moving: boolean,
    private readonly mode: VerifyMode,
    private readonly streams: string[],
    /** The native apply workers, checked while a read waits for them. */
    private readonly watch: ApplyWatch | undefined,
  ) {
    this.keyed = keyedTable(table);
    this.name = displayName(table);
  }

  /**
   * Wait until the target has applied everything committed on the source so far, on each stream
   * that carries the group's tables (a resync moves some of them to a stream of their own).
   */
  private async bridge(): Promise<void> {
    if (!this.moving) return;
    const timeoutMs = Math.max(60, this.ctx.plan.cdc.maxLagSeconds) * 1000;
    for (const stream of this.streams) {
      const hb = heartbeatTable(stream);
      const beat = await writeBeat(this.w.source, hb, stream);
      if (this.watch) {
        await this.watch.waitApplied(this.w.target, hb, stream, beat, timeoutMs);
      } else if ((await waitForMarker(this.w.target, hb, stream, beat, timeoutMs)) === null) {
        throw failure('verify.lag', `group ${stream}: a heartbeat written ${timeoutMs / 1000} s ago is not applied on the target`, 'pgshift cdc status shows why the stream does not apply; verify again once it caught up');
      }
    }
  }

  /**
   * Fingerprints of many ranges on both sides. Moving: every source read first, then one heartbeat,
   * then every target read, so one wait covers the whole batch. Exact: both sides at once.
   */
  private async pairs(ranges: Range[]): Promise<Array<[Fingerprint, Fingerprint]>> {
    const keyed = this.keyed!;
    const side = async (c: pg.Client, v: number) => {
      const out: Fingerprint[] = [];
      for (const r of ranges) out.push(await rangeFingerprint(c, keyed, r, v));
      return out;
    };
    const [a, b] = await this.bothSides(side);
    return ranges.map((_, i) => [a[i], b[i]]);
  }

  /**
   * The same read on both sides: at once when nothing moves; on a moving target the source first,
   * then the target only once it has applied past the source's read (bridge).
   */
  private async bothSides<T>(read: (c: pg.Client, versionNum: number) => Promise<T>): Promise<[T, T]> {
    if (!this.moving) return Promise.all([read(this.w.source, this.hashVersion), read(this.w.target, this.hashVersion)]);
    const a = await read(this.w.source, this.hashVersion);
    await this.bridge();
    return [a, await read(this.w.target, this.hashVersion)];
  }

  /** Every chunk of a full pass in one sequential scan per side (moving: source, heartbeat, target). */
  private async buckets(bounds: string[]): Promise<Array<[Fingerprint, Fingerprint]>> {
    const keyed = this.keyed!;
    const [a, b] = await this.bothSides((c, v) => bucketFingerprints(c, keyed, bounds, v));
    return a.map((fp, i) => [fp, b[i]]);
  }

  async run(): Promise<TableCheck> {
    const started = Date.now();
    if (!this.keyed) return this.wholeTable(started);
    const keyed = this.keyed;
    const bounds = await chunkBoundaries(this.w.source, keyed, this.ctx.plan.verify.chunkRows, this.table.rowEstimate);
    let ranges = rangesFrom(bounds);
    if (this.mode === 'quick' && ranges.length > QUICK_CHUNKS) {
      // First and last chunks (where inserts and deletes cluster) and two picked at random.
      const middle = ranges.slice(1, -1).sort(() => Math.random() - 0.5).slice(0, QUICK_CHUNKS - 2);
      ranges = [ranges[0], ...middle, ranges[ranges.length - 1]];
    }
    this.chunks = ranges.length;
    const t0 = Date.now();
    const first = this.mode === 'full' && ranges.length > 1 && bucketScans(this.hashVersion) ? await this.buckets(bounds) : await this.pairs(ranges);
    this.ctx.log.debug(`verify ${this.name}: ${ranges.length} chunk(s) fingerprinted in ${Date.now() - t0} ms`);
    for (const [a, b] of first) {
      this.sourceRows += a.rows;
      this.targetRows += b.rows;
    }
    let suspects = ranges.map((r, i) => ({ r, fp: first[i] })).filter((x) => !same(...x.fp));
    // While changes flow a chunk may differ only because a change was in flight: read it again.
    if (this.moving && suspects.length) {
      const again = await this.pairs(suspects.map((x) => x.r));
      suspects = suspects.map((x, i) => ({ r: x.r, fp: again[i] })).filter((x) => !same(...x.fp));
    }
    this.mismatched = suspects.length;
    const t1 = Date.now();
    for (const x of suspects) await this.drill(x.r, Math.max(x.fp[0].rows, x.fp[1].rows), 0);
    const t2 = Date.now();
    await this.settle();
    this.ctx.log.debug(`verify ${this.name}: ${suspects.length} mismatched chunk(s) searched in ${t2 - t1} ms, ${this.confirmed.length} row(s) confirmed in ${Date.now() - t2} ms`);
    return this.result(started, this.mode === 'quick' && bounds.length + 1 > ranges.length ? 'sampled-chunks' : 'chunks');
  }

  private async drill(range: Range, rows: number, depth: number): Promise<void> {
    const keyed = this.keyed!;
    if (rows > LEAF_ROWS && depth < 8) {
      const inner = await splitRange(this.w.source, keyed, range, SPLIT_FACTOR);
      if (inner.length > 0) {
        const subs = rangesFrom(inner, range);
        const fps = await this.pairs(subs);
        for (let i = 0; i < subs.length; i++) {
          const [a, b] = fps[i];
          if (!same(a, b)) await this.drill(subs[i], Math.max(a.rows, b.rows), depth + 1);
        }
        return;
      }
    }
    // Leaf: compare (key, hash) pairs; only these few thousand rows leave the servers.
    const [src, tgt] = await this.bothSides((c, v) => leafHashes(c, keyed, range, v));
    for (const [k, h] of src) {
      const other = tgt.get(k);
      if (other === undefined) this.candidates.set(k, { key: JSON.parse(k), kind: 'missing' });
      else if (other !== h) this.candidates.set(k, { key: JSON.parse(k), kind: 'different' });
    }
    for (const k of tgt.keys()) if (!src.has(k)) this.candidates.set(k, { key: JSON.parse(k), kind: 'extra' });
  }

  /**
   * Re-check candidate keys by point lookups on both sides. Exact mode: once, to drop rows that a
   * collation difference placed in another chunk. Moving: until the source row holds still.
   */
  private async settle(): Promise<void> {
    const keyed = this.keyed!;
    let pending = [...this.candidates.values()];
    let previous = new Map<string, string | undefined>();
    const attempts = this.moving ? 5 : 1;
    for (let attempt = 1; attempt <= attempts && pending.length; attempt++) {
      const keys = pending.map((p) => p.key);
      const src = await rowHashes(this.w.source, keyed, keys, this.hashVersion);
      await this.bridge();
      const tgt = await rowHashes(this.w.target, keyed, keys, this.hashVersion);
      const next: typeof pending = [];
      const seen = new Map<string, string | undefined>();
      for (const p of pending) {
        const k = keyText(p.key);
        const a = src.get(k);
        const b = tgt.get(k);
        seen.set(k, a);
        if (a === b) continue; // equal after all: it was in flight (or misplaced by collation order)
        const kind: RowDifference['kind'] = a === undefined ? 'extra' : b === undefined ? 'missing' : 'different';
        if (!this.moving || (previous.has(k) && previous.get(k) === a)) this.confirmed.push({ key: p.key, kind });
        else next.push({ key: p.key, kind });
      }
      previous = seen;
      pending = next;
      if (pending.length && attempt < attempts) await sleep(250 * attempt, this.ctx.signal);
    }
    this.candidates.clear();
    for (const p of pending) this.candidates.set(keyText(p.key), p);
  }

  private async result(started: number, method: TableCheck['method']): Promise<TableCheck> {
    const keyed = this.keyed!;
    const reported = this.confirmed.slice(0, REPORTED_ROWS);
    const sampleKeys = reported.slice(0, SAMPLED_VALUES).map((d) => d.key);
    const [srcRows, tgtRows] = await Promise.all([rowValues(this.w.source, keyed, sampleKeys), rowValues(this.w.target, keyed, sampleKeys)]);
    const differences = reported.map((d) => {
      const k = keyText(d.key);
      return {
        key: Object.fromEntries(keyed.key.map((c, i) => [c, d.key[i]])),
        kind: d.kind,
        ...(srcRows.has(k) ? { source: JSON.parse(srcRows.get(k)!) as Record<string, unknown> } : {}),
        ...(tgtRows.has(k) ? { target: JSON.parse(tgtRows.get(k)!) as Record<string, unknown> } : {}),
      };
    });
    const unsettledKeys = this.candidates.size;
    return {
      table: this.name,
      group: this.group,
      method,
      verdict: this.confirmed.length ? 'different' : unsettledKeys ? 'unsettled' : 'equal',
      sourceRows: this.sourceRows,
      targetRows: this.targetRows,
      chunks: this.chunks,
      mismatchedChunks: this.mismatched,
      differenceCount: this.confirmed.length,
      differences,
      unsettledKeys,
      seconds: (Date.now() - started) / 1000,
    };
  }

  /** A table without a usable key: one multiset fingerprint of the whole table. */
  private async wholeTable(started: number): Promise<TableCheck> {
    let verdict: TableVerdict = 'equal';
    let prev: Fingerprint | undefined;
    let a: Fingerprint = { rows: 0, hash: '0' };
    let b: Fingerprint = { rows: 0, hash: '0' };
    for (let attempt = 1; attempt <= (this.moving ? 4 : 1); attempt++) {
      a = await fingerprint(this.w.source, this.table, this.hashVersion);
      await this.bridge();
      b = await fingerprint(this.w.target, this.table, this.hashVersion);
      if (same(a, b)) {
        verdict = 'equal';
        break;
      }
      verdict = !this.moving || (prev && same(prev, a)) ? 'different' : 'unsettled';
      if (verdict === 'different') break;
      prev = a;
      await sleep(250 * attempt, this.ctx.signal);
    }
    return {
      table: this.name,
      group: this.group,
      method: 'whole-table',
      verdict,
      sourceRows: a.rows,
      targetRows: b.rows,
      chunks: 1,
      mismatchedChunks: verdict === 'equal' ? 0 : 1,
      differenceCount: 0,
      differences: [],
      unsettledKeys: 0,
      seconds: (Date.now() - started) / 1000,
    };
  }

  /** Statements that make the target rows equal the source rows for every confirmed difference. */
  async repair(): Promise<string[]> {
    const keyed = this.keyed!;
    const out: string[] = [];
    const identityAlways = this.table.columns.some((c) => c.identity === 'a');
    for (let i = 0; i < this.confirmed.length; i += 1000) {
      const batch = this.confirmed.slice(i, i + 1000);
      const rows = await rowValues(this.w.source, keyed, batch.filter((d) => d.kind !== 'extra').map((d) => d.key));
      const deletes = batch.filter((d) => d.kind !== 'missing').map((d) => d.key);
      out.push(...repairStatements(keyed, deletes, [...rows.values()], identityAlways));
    }
    return out;
  }
}

function same(a: Fingerprint, b: Fingerprint): boolean {
  return a.rows === b.rows && a.hash === b.hash;
}
