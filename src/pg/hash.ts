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
  // From 12 on any positive value prints the shortest exact text; before 12, 3 gives 17 digits,
  // enough for a float to read back exactly (the repair SQL carries printed values).
  `SET extra_float_digits = 3`,
  `SET DateStyle = 'ISO, YMD'`,
  `SET IntervalStyle = 'postgres'`,
  `SET TimeZone = 'UTC'`,
  `SET bytea_output = 'hex'`,
  // money prints with lc_monetary, which each server (or database, or role) may set otherwise.
  `SET lc_monetary = 'C'`,
];

export async function useCanonicalSettings(c: pg.Client): Promise<void> {
  for (const s of CANONICAL_SETTINGS) await c.query(s);
}

export interface TableFingerprint {
  rows: number;
  hash: string;
}

/**
 * Per type, the hash function (PostgreSQL 11+) that hashes a value without printing it. These are
 * the functions of the types' hash operator classes, the same in every major (hash partitioning
 * depends on it), and chosen only where equal values always print equally, so nothing is lost.
 * Left out on purpose, hashed as text: numeric (1.0 and 1.00 hash alike), float (0 and -0),
 * interval ('1 day' and '24 hours'), json (no hash), date (no callable hash), bytea, enums and
 * composites (their hashes involve OIDs that differ between servers), domains, arrays, the rest.
 */
const NATIVE_HASH: Record<string, (v: string, seed: number) => string> = {
  smallint: (v, s) => `hashint2extended(${v}, ${s})`,
  integer: (v, s) => `hashint4extended(${v}, ${s})`,
  bigint: (v, s) => `hashint8extended(${v}, ${s})`,
  boolean: (v, s) => `hashint4extended(${v}::int, ${s})`,
  uuid: (v, s) => `uuid_hash_extended(${v}, ${s})`,
  jsonb: (v, s) => `jsonb_hash_extended(${v}, ${s})`,
  'timestamp without time zone': (v, s) => `timestamp_hash_extended(${v}, ${s})`,
  // Under the canonical TimeZone (UTC) the cast is one-to-one.
  'timestamp with time zone': (v, s) => `timestamp_hash_extended(${v}::timestamp, ${s})`,
  text: (v, s) => `hashtextextended(${v} COLLATE "C", ${s})`,
};

/**
 * Before PostgreSQL 12 a float prints with 15 + extra_float_digits significant digits; from 12 on,
 * with any positive extra_float_digits, as the shortest text that reads back exactly. 0.1 + 0.2
 * prints 0.3 on an 11 and 0.30000000000000004 on a 17, so when either side is older than 12 the
 * types made of floats — float4, float8 and the geometric types — and their arrays are hashed by
 * their binary form instead, which every major shares and which holds no OID.
 */
const FLOAT_SEND: Record<string, string> = {
  'double precision': 'float8send',
  real: 'float4send',
  point: 'point_send',
  lseg: 'lseg_send',
  line: 'line_send',
  box: 'box_send',
  path: 'path_send',
  polygon: 'poly_send',
  circle: 'circle_send',
};

function floatBits(type: string, value: string, versionNum: number): string | undefined {
  if (versionNum >= 120000) return undefined;
  const send = type.endsWith('[]') && FLOAT_SEND[type.slice(0, -2)] ? 'array_send' : FLOAT_SEND[type];
  return send ? `encode(${send}(${value}), 'hex')` : undefined;
}

/** A column's value as the type it is hashed by: a domain's as the type it is over (a cast, not a conversion). */
function hashedValue(col: ColumnInfo): string {
  const v = quoteIdent(col.name);
  return col.baseType === col.type ? v : `(${v}::${col.baseType})`;
}

function columnHash(col: ColumnInfo, seed: number, versionNum: number): string {
  const type = col.baseType;
  const value = hashedValue(col);
  const bits = floatBits(type, value, versionNum);
  if (bits) return `hashtextextended(${bits}, ${seed})`;
  const unsized = type.replace(/\(\d+\)$/, '');
  // varchar(n) hashes as text; char(n) by its own function, which ignores the padding it compares without.
  if (unsized === 'character varying') return NATIVE_HASH.text(value, seed);
  if (unsized === 'character') return `hashbpcharextended(${value} COLLATE "C", ${seed})`;
  const native = NATIVE_HASH[type];
  return native ? native(value, seed) : `hashtextextended(${value}::text, ${seed})`;
}

/**
 * A row's 64-bit hash. From PostgreSQL 11 on both sides: each column hashed by its own function
 * with its position as the seed (so swapped values change the result), a NULL by the seed itself,
 * all combined with XOR — no row is built or printed, which costs less than COPY's own output.
 * Before 11: the row printed as text (floats as their binary form, see floatBits) and md5 folded
 * to 64 bits. `versionNum` is the lower of the two servers', so that both sides compute the same
 * expression.
 */
export function rowHashExpr(table: { columns: ColumnInfo[] }, versionNum: number): string {
  const columns = table.columns.filter((c) => !c.generated);
  if (versionNum >= 110000) return `(${columns.map((c, i) => `coalesce(${columnHash(c, i + 1, versionNum)}, ${i + 1})`).join(' # ') || '0'})`;
  const values = columns.map((c) => floatBits(c.baseType, hashedValue(c), versionNum) ?? quoteIdent(c.name));
  return `('x' || substr(md5(ROW(${values.join(', ')})::text), 1, 16))::bit(64)::bigint`;
}

/** count + sum of row hashes of a whole table (or of the rows matching `where`). */
export async function fingerprint(c: pg.Client, table: TableInfo, versionNum: number, where = 'true', params: unknown[] = []): Promise<TableFingerprint> {
  const r = await c.query<{ rows: string; hash: string }>(
    `SELECT count(*)::text AS rows, coalesce(sum(${rowHashExpr(table, versionNum)}), 0)::text AS hash FROM ONLY ${qualify(table)} WHERE ${where}`,
    params,
  );
  return { rows: Number(r.rows[0].rows), hash: r.rows[0].hash };
}
