import type pg from 'pg';
import { displayName } from '../core/ident.js';
import { heartbeatTable } from '../core/names.js';
import { runPool } from '../core/pool.js';
import { Journal } from '../journal/journal.js';
import { copyColumns, type TableInfo } from '../pg/catalog.js';
import { connect } from '../pg/connect.js';
import { fingerprint, useCanonicalSettings, type TableFingerprint } from '../pg/hash.js';
import { waitForMarker, writeBeat } from '../pg/heartbeat.js';
import { openSessions, resolveGroups, type PhaseContext } from './context.js';

/**
 * Verify: per table, exact row count and an order-independent content hash on both sides.
 *
 * While changes flow, a table is read on the source first; then a heartbeat written after that
 * read is waited for on the target, so the target has applied at least everything the source read
 * saw. A mismatch is re-checked; it is a difference only when the source did not change between
 * two checks and the sides still disagree. A table that keeps changing under every check is
 * "unsettled" — inside the cut-over window (writes fenced, stream drained) the check is exact.
 */
export type TableVerdict = 'equal' | 'different' | 'unsettled';

export interface TableCheck {
  table: string;
  group: string;
  verdict: TableVerdict;
  source: TableFingerprint;
  target: TableFingerprint;
  attempts: number;
}

export interface VerifyResult {
  verdict: TableVerdict;
  tables: TableCheck[];
  differences: string[];
  unsettled: string[];
  seconds: number;
}

export interface VerifyOptions {
  /** Writes are fenced and drained: one exact pass, no re-checks. */
  exact?: boolean;
  attempts?: number;
  tables?: string[];
}

export async function runVerify(ctx: PhaseContext, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = Date.now();
  const s = await openSessions(ctx);
  const workers: Array<{ source: pg.Client; target: pg.Client }> = [];
  try {
    const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
    const journal = await Journal.find(s.target, ctx.plan.name);
    const streaming = new Set(journal ? (await journal.streams()).filter((r) => r.state === 'streaming').map((r) => r.group) : []);
    const excluded = new Set(ctx.plan.verify.excludeTables);
    const wanted = options.tables ? new Set(options.tables) : undefined;
    const work = groups.flatMap((g) =>
      g.tables.filter((t) => !excluded.has(displayName(t)) && (!wanted || wanted.has(displayName(t)))).map((t) => ({ group: g.name, table: t })),
    );
    await journal?.startPhase('verify', { tables: work.length, exact: options.exact ?? false });
    const checks: TableCheck[] = [];
    await runPool(work, Math.min(ctx.plan.fullLoad.jobs, 4), async ({ group, table }, id) => {
      let w = workers[id];
      if (!w) {
        w = workers[id] = { source: await connect(ctx.source, { applicationName: 'pgshift verify' }), target: await connect(ctx.target, { applicationName: 'pgshift verify' }) };
        await useCanonicalSettings(w.source);
        await useCanonicalSettings(w.target);
      }
      const check = await checkTable(ctx, w, s.sourceVersion, s.targetVersion, group, table, streaming.has(group) && !options.exact, options.attempts ?? 4);
      checks.push(check);
      ctx.log.progress(`verify:${check.table}`, `verify ${check.table}: ${check.verdict} (${check.source.rows} rows)`);
    });
    checks.sort((a, b) => a.table.localeCompare(b.table));
    const differences = checks.filter((c) => c.verdict === 'different').map((c) => c.table);
    const unsettled = checks.filter((c) => c.verdict === 'unsettled').map((c) => c.table);
    const result: VerifyResult = {
      verdict: differences.length ? 'different' : unsettled.length ? 'unsettled' : 'equal',
      tables: checks,
      differences,
      unsettled,
      seconds: (Date.now() - started) / 1000,
    };
    await journal?.finishPhase('verify', result.verdict === 'different' ? 'failed' : result.verdict === 'equal' ? 'done' : 'partial', {
      verdict: result.verdict,
      differences,
      unsettled,
      tables: checks.length,
      exact: options.exact ?? false,
    });
    return result;
  } finally {
    await Promise.all(workers.flatMap((w) => [w.source.end().catch(() => {}), w.target.end().catch(() => {})]));
    await s.close();
  }
}

async function checkTable(
  ctx: PhaseContext,
  w: { source: pg.Client; target: pg.Client },
  sourceVersion: number,
  targetVersion: number,
  group: string,
  table: TableInfo,
  moving: boolean,
  maxAttempts: number,
): Promise<TableCheck> {
  const columns = copyColumns(table);
  const hb = heartbeatTable(group);
  let previousSource: TableFingerprint | undefined;
  let src: TableFingerprint = { rows: 0, hash: '0' };
  let tgt: TableFingerprint = { rows: 0, hash: '0' };
  const attempts = moving ? maxAttempts : 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    src = await fingerprint(w.source, table, columns, sourceVersion);
    if (moving) {
      // Everything the source read saw is committed before this heartbeat: once it is applied, the
      // target has caught up at least to the source's read.
      const beat = await writeBeat(w.source, hb, group);
      await waitForMarker(w.target, hb, group, beat, 30_000);
    }
    tgt = await fingerprint(w.target, table, columns, targetVersion);
    if (same(src, tgt)) return { table: displayName(table), group, verdict: 'equal', source: src, target: tgt, attempts: attempt };
    // Not moving (or the source held still between two checks) and the sides still differ: a real difference.
    if (!moving || (previousSource && same(previousSource, src))) {
      return { table: displayName(table), group, verdict: 'different', source: src, target: tgt, attempts: attempt };
    }
    previousSource = src;
    await new Promise((r) => setTimeout(r, 200 * attempt));
  }
  return { table: displayName(table), group, verdict: 'unsettled', source: src, target: tgt, attempts };
}

function same(a: TableFingerprint, b: TableFingerprint): boolean {
  return a.rows === b.rows && a.hash === b.hash;
}
