import type pg from 'pg';
import { qualify, quoteIdent } from '../core/ident.js';
import type { ColumnInfo, TableInfo } from './catalog.js';

/**
 * Content hashing in the server: no row leaves it. Every row is rendered as text under the same
 * session settings on both sides (so a 13 and a 17 print a float, a timestamp or a bytea the same
 * way) and hashed to 64 bits; the sum of the hashes is order-independent, so the two sides can
 * scan in any order. Count and sum together make a multiset fingerprint of the table.
 */
export const CANONICAL_SETTINGS = [
  `SET extra_float_digits = 1`,
  `SET DateStyle = 'ISO, YMD'`,
  `SET IntervalStyle = 'postgres'`,
  `SET TimeZone = 'UTC'`,
  `SET bytea_output = 'hex'`,
];

export async function useCanonicalSettings(c: pg.Client): Promise<void> {
  for (const s of CANONICAL_SETTINGS) await c.query(s);
}

export interface TableFingerprint {
  rows: number;
  hash: string;
}

/**
 * Types whose own hash function is hashed instead of their text (PostgreSQL 14+, both sides): the
 * hash of these types is the same in every major (hash partitioning depends on it) and equal values
 * print equally, so nothing is lost. Left out on purpose, hashed as text: numeric (1.0 and 1.00 hash
 * alike), float (0 and -0), interval ('1 day' and '24 hours'), json (no hash), enums and composites
 * (their hashes involve OIDs that differ between servers), domains and everything else.
 */
const NATIVE_HASH = new Set(['smallint', 'integer', 'bigint', 'boolean', 'date', 'timestamp without time zone', 'timestamp with time zone', 'uuid', 'bytea', 'jsonb', 'oid']);
const COLLATABLE = /^(text|character varying(\(\d+\))?|character(\(\d+\))?)$/;

function hashable(col: ColumnInfo): string {
  const name = quoteIdent(col.name);
  const base = col.type.replace(/\[\]$/, '');
  // Text under the "C" collation hashes its bytes whatever the column's collation.
  if (COLLATABLE.test(base)) return `${name} COLLATE "C"`;
  if (NATIVE_HASH.has(base)) return name;
  return `${name}::text`;
}

/**
 * A row's 64-bit hash. From PostgreSQL 14 on both sides: hash_record_extended over the columns, each
 * by its own hash function where that is safe (above), else by its text — about a third cheaper
 * than printing the whole row. Before: the row printed as text (ROW(…)::text) and hashed with
 * hashtextextended (11+) or md5 folded to 64 bits. `versionNum` is the lower of the two servers', so
 * that both sides compute the same expression.
 */
export function rowHashExpr(table: { columns: ColumnInfo[] }, versionNum: number): string {
  const columns = table.columns.filter((c) => !c.generated);
  if (versionNum >= 140000) return `hash_record_extended(ROW(${columns.map(hashable).join(', ')}), 0)`;
  const row = `ROW(${columns.map((c) => quoteIdent(c.name)).join(', ')})::text`;
  return versionNum >= 110000 ? `hashtextextended(${row}, 0)` : `('x' || substr(md5(${row}), 1, 16))::bit(64)::bigint`;
}

/** count + sum of row hashes of a whole table (or of the rows matching `where`). */
export async function fingerprint(c: pg.Client, table: TableInfo, versionNum: number, where = 'true', params: unknown[] = []): Promise<TableFingerprint> {
  const r = await c.query<{ rows: string; hash: string }>(
    `SELECT count(*)::text AS rows, coalesce(sum(${rowHashExpr(table, versionNum)}), 0)::text AS hash FROM ${qualify(table)} WHERE ${where}`,
    params,
  );
  return { rows: Number(r.rows[0].rows), hash: r.rows[0].hash };
}
