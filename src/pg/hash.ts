import type pg from 'pg';
import { qualify, quoteIdent, type QualifiedName } from '../core/ident.js';

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

/** A row's 64-bit hash: hashtextextended from PostgreSQL 11, md5 folded to 64 bits before. */
export function rowHashExpr(columns: string[], versionNum: number): string {
  const row = `ROW(${columns.map(quoteIdent).join(', ')})::text`;
  return versionNum >= 110000 ? `hashtextextended(${row}, 0)` : `('x' || substr(md5(${row}), 1, 16))::bit(64)::bigint`;
}

/** count + sum of row hashes of a whole table (or of the rows matching `where`). */
export async function fingerprint(c: pg.Client, table: QualifiedName, columns: string[], versionNum: number, where = 'true', params: unknown[] = []): Promise<TableFingerprint> {
  const r = await c.query<{ rows: string; hash: string }>(
    `SELECT count(*)::text AS rows, coalesce(sum(${rowHashExpr(columns, versionNum)}), 0)::text AS hash FROM ${qualify(table)} WHERE ${where}`,
    params,
  );
  return { rows: Number(r.rows[0].rows), hash: r.rows[0].hash };
}
