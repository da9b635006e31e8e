import type pg from 'pg';
import { qualify, quoteIdent, quoteLiteral } from '../core/ident.js';
import { dedupe, subdivide } from '../core/chunk-bounds.js';
import { copyColumns, type TableInfo } from './catalog.js';
import { fingerprint, rowHashExpr } from './hash.js';

/**
 * Key-range chunks of a table and their fingerprints, computed inside each server.
 *
 * A chunk is a half-open range [lo, hi) of the table's leading key column; the same boundaries are
 * used on both sides, so the two fingerprints cover the same rows. Boundaries come from the
 * source's histogram (no scan) or, without statistics, from one index-ordered pass. A full pass
 * fingerprints every chunk in one sequential scan per side (width_bucket over the boundaries, the
 * same [lo, hi) buckets), which reads a table the way COPY does and needs no warm cache; the few
 * ranges that are examined again (re-checks, splits, quick mode) use the key's index. Values travel
 * as text and are cast back to the column type on each side.
 */
export interface KeyedTable {
  table: TableInfo;
  /** Row identity: primary key, else replica identity index, else a unique NOT NULL index. */
  key: string[];
  keyTypes: string[];
  /** Hashed columns: everything but generated columns. */
  columns: string[];
}

export interface Range {
  lo: string | null;
  hi: string | null;
}

export interface Fingerprint {
  rows: number;
  hash: string;
}

export function keyedTable(t: TableInfo): KeyedTable | null {
  if (t.keyColumns.length === 0) return null;
  const typeOf = (name: string) => t.columns.find((c) => c.name === name)!.type;
  return { table: t, key: t.keyColumns, keyTypes: t.keyColumns.map(typeOf), columns: copyColumns(t) };
}

/** WHERE clause for a range of the leading key column, with its parameters. */
export function rangeWhere(keyed: KeyedTable, range: Range, params: unknown[]): string {
  const k = quoteIdent(keyed.key[0]);
  const type = keyed.keyTypes[0];
  const parts: string[] = [];
  if (range.lo !== null) {
    params.push(range.lo);
    parts.push(`${k} >= $${params.length}::${type}`);
  }
  if (range.hi !== null) {
    params.push(range.hi);
    parts.push(`${k} < $${params.length}::${type}`);
  }
  return parts.length ? parts.join(' AND ') : 'true';
}

export async function chunkBoundaries(source: pg.Client, keyed: KeyedTable, chunkRows: number, rowEstimate: number): Promise<string[]> {
  if (rowEstimate <= chunkRows) return [];
  const k = quoteIdent(keyed.key[0]);
  const type = keyed.keyTypes[0];
  try {
    const h = await source.query<{ v: string }>(
      `SELECT b::text AS v FROM (SELECT DISTINCT unnest(histogram_bounds::text::${type}[]) AS b FROM pg_stats
         WHERE schemaname = $1 AND tablename = $2 AND attname = $3) s ORDER BY b`,
      [keyed.table.schema, keyed.table.name, keyed.key[0]],
    );
    // Interior bounds only; the open first and last ranges take the rest.
    if (h.rows.length > 2) return subdivide(h.rows.map((r) => r.v), type, rowEstimate, chunkRows).slice(1, -1);
  } catch {
    /* a type without an array cast from text: compute the boundaries instead */
  }
  const r = await source.query<{ v: string }>(
    `SELECT v FROM (SELECT ${k}::text AS v, ${k} AS k, row_number() OVER (ORDER BY ${k}) AS rn FROM ONLY ${qualify(keyed.table)}) s
      WHERE rn % $1 = 0 ORDER BY k`,
    [chunkRows],
  );
  return dedupe(r.rows.map((x) => x.v));
}



/** Split a range into about `parts` pieces by the source's keys inside it (each a lower bound). */
export async function splitRange(source: pg.Client, keyed: KeyedTable, range: Range, parts: number): Promise<string[]> {
  const k = quoteIdent(keyed.key[0]);
  const params: unknown[] = [];
  const where = rangeWhere(keyed, range, params);
  params.push(parts);
  const r = await source.query<{ v: string }>(
    `SELECT v FROM (SELECT ${k}::text AS v, ${k} AS k, row_number() OVER (ORDER BY ${k}) AS rn, count(*) OVER () AS n
                      FROM ONLY ${qualify(keyed.table)} WHERE ${where}) s
      WHERE rn % greatest(n / $${params.length}, 1) = 0 ORDER BY k`,
    params,
  );
  return dedupe(r.rows.map((x) => x.v)).filter((v) => v !== range.lo);
}

/**
 * Every chunk's fingerprint in one sequential scan: bucket i of width_bucket(key, bounds) is the
 * range [bounds[i-1], bounds[i]) — the i-th range of rangesFrom(bounds).
 *
 * The planner takes the bucket for as many groups as the key has values (10 M for a 10 M-row
 * table, where there are bounds.length + 1), and left to itself sorts every row on disk before
 * aggregating: on 10 M rows an external sort of 1 GB, three times the scan. With sorting
 * discouraged for this one query it hashes into a table of a few hundred entries (PostgreSQL 13+
 * plans a hash aggregate whatever its estimate, as it can spill; hence bucketScans).
 */
export const bucketScans = (versionNum: number) => versionNum >= 130000;

export async function bucketFingerprints(c: pg.Client, keyed: KeyedTable, bounds: string[], versionNum: number): Promise<Fingerprint[]> {
  const k = quoteIdent(keyed.key[0]);
  await c.query('SET enable_sort = off');
  let r: pg.QueryResult<{ b: number; rows: string; hash: string }>;
  try {
    r = await c.query<{ b: number; rows: string; hash: string }>(
      `SELECT width_bucket(${k}, $1::${keyed.keyTypes[0]}[]) AS b, count(*)::text AS rows, sum(${rowHashExpr(keyed.table, versionNum)})::text AS hash
         FROM ONLY ${qualify(keyed.table)} GROUP BY 1`,
      [bounds],
    );
  } finally {
    await c.query('RESET enable_sort').catch(() => {}); // a broken session must not hide the query's own error
  }
  const out: Fingerprint[] = Array.from({ length: bounds.length + 1 }, () => ({ rows: 0, hash: '0' }));
  for (const row of r.rows) out[row.b] = { rows: Number(row.rows), hash: row.hash };
  return out;
}

export function rangesFrom(bounds: string[], outer: Range = { lo: null, hi: null }): Range[] {
  const edges = [outer.lo, ...bounds, outer.hi];
  const out: Range[] = [];
  for (let i = 0; i < edges.length - 1; i++) out.push({ lo: edges[i], hi: edges[i + 1] });
  return out;
}

export function rangeFingerprint(c: pg.Client, keyed: KeyedTable, range: Range, versionNum: number): Promise<Fingerprint> {
  const params: unknown[] = [];
  const where = rangeWhere(keyed, range, params);
  return fingerprint(c, keyed.table, versionNum, where, params);
}

export function keyText(values: string[]): string {
  return JSON.stringify(values);
}

/** (key, row hash) of every row in a range: the leaf of the search, a few thousand rows. */
export async function leafHashes(c: pg.Client, keyed: KeyedTable, range: Range, versionNum: number): Promise<Map<string, string>> {
  const params: unknown[] = [];
  const where = rangeWhere(keyed, range, params);
  const keys = keyed.key.map((k) => `${quoteIdent(k)}::text`).join(', ');
  const r = await c.query<{ k: string[]; h: string }>(
    `SELECT ARRAY[${keys}] AS k, ${rowHashExpr(keyed.table, versionNum)}::text AS h FROM ONLY ${qualify(keyed.table)} WHERE ${where}`,
    params,
  );
  return new Map(r.rows.map((x) => [keyText(x.k), x.h]));
}

function keyMatch(keyed: KeyedTable, keys: string[][], params: unknown[]): string {
  const arrays = keyed.key.map((_, i) => {
    params.push(keys.map((k) => k[i]));
    return `$${params.length}::text[]`;
  });
  const cols = keyed.key.map(quoteIdent).join(', ');
  const casts = keyed.key.map((_, i) => `u.c${i}::${keyed.keyTypes[i]}`).join(', ');
  return `(${cols}) IN (SELECT ${casts} FROM unnest(${arrays.join(', ')}) AS u(${keyed.key.map((_, i) => `c${i}`).join(', ')}))`;
}

/** One value per chosen key (point lookups through the key's index), keyed by keyText. */
async function lookup<T>(c: pg.Client, keyed: KeyedTable, keys: string[][], valueSql: string): Promise<Map<string, T>> {
  if (keys.length === 0) return new Map();
  const params: unknown[] = [];
  const match = keyMatch(keyed, keys, params);
  const keyCols = keyed.key.map((k) => `${quoteIdent(k)}::text`).join(', ');
  const r = await c.query<{ k: string[]; v: T }>(`SELECT ARRAY[${keyCols}] AS k, ${valueSql} AS v FROM ONLY ${qualify(keyed.table)} WHERE ${match}`, params);
  return new Map(r.rows.map((x) => [keyText(x.k), x.v]));
}

/** Row hashes of chosen keys. */
export function rowHashes(c: pg.Client, keyed: KeyedTable, keys: string[][], versionNum: number): Promise<Map<string, string>> {
  return lookup<string>(c, keyed, keys, `${rowHashExpr(keyed.table, versionNum)}::text`);
}

/**
 * The rows themselves as JSON text, for a report sample or a repair. Text, not parsed: a numeric
 * or a bigint beyond 2^53 would lose digits as a JavaScript number, and the repair must restore
 * the value exactly.
 */
export function rowValues(c: pg.Client, keyed: KeyedTable, keys: string[][]): Promise<Map<string, string>> {
  return lookup<string>(c, keyed, keys, `(SELECT row_to_json(x)::text FROM (SELECT ${keyed.columns.map(quoteIdent).join(', ')}) x)`);
}

/** SQL that makes the target's rows for these keys equal the source's (never run without a flag). */
/** The repair statements as one script the operator reviews: a single transaction. */
export function repairScript(statements: string[]): string {
  return ['-- pgshift verify: repair of the differing rows on the target. Review before running.', 'BEGIN;', ...statements, 'COMMIT;', ''].join('\n');
}

/** Run a script of several statements (simple protocol: it holds its own BEGIN and COMMIT). */
export async function runScript(c: pg.Client, script: string): Promise<void> {
  await c.query(script);
}

export function repairStatements(keyed: KeyedTable, deleteKeys: string[][], insertRows: string[], identityAlways: boolean): string[] {
  const out: string[] = [];
  const t = qualify(keyed.table);
  for (const key of deleteKeys) {
    const cond = keyed.key.map((k, i) => `${quoteIdent(k)} = ${quoteLiteral(key[i])}::${keyed.keyTypes[i]}`).join(' AND ');
    out.push(`DELETE FROM ONLY ${t} WHERE ${cond};`);
  }
  const cols = keyed.columns.map(quoteIdent).join(', ');
  for (const row of insertRows) {
    out.push(
      `INSERT INTO ${t} (${cols})${identityAlways ? ' OVERRIDING SYSTEM VALUE' : ''} SELECT ${cols} FROM json_populate_record(NULL::${t}, ${quoteLiteral(row)});`,
    );
  }
  return out;
}
