import type pg from 'pg';
import { displayName, qualify, quoteIdent, type QualifiedName } from '../core/ident.js';

/**
 * Catalog reads shared by every phase. Queries adapt to the server's version (generated columns
 * exist from 12, wal_status from 13) rather than failing on older sources.
 */

/** Schemas that are never migrated: the system's, and pgshift's own control schema. */
export const CONTROL_SCHEMA = 'pgshift';
export const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema', '${CONTROL_SCHEMA}') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
/** Relations created by an extension come with the extension, not with the data. */
export const NOT_EXTENSION_MEMBER = `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

export interface ColumnInfo {
  name: string;
  type: string;
  /** For a domain, the type it is over (one level); otherwise the type itself. Verify hashes by it. */
  baseType: string;
  generated: boolean;
  identity: '' | 'a' | 'd';
  notNull: boolean;
  /**
   * The type travels in binary COPY between any two majors: a built-in type (same OID everywhere)
   * with send and receive functions, whose binary form holds no OID (not a reg* type or an array
   * of one); an enum (its binary form is the label); citext and hstore (see
   * BINARY_EXTENSION_TYPES); a domain over one of those (it sends and receives as its base type).
   * Not: composites and arrays of user types (their binary forms hold type OIDs, which differ
   * between servers), other extension types (their binary forms are their own business).
   */
  binaryCopy: boolean;
}

export interface TableInfo extends QualifiedName {
  oid: number;
  /** r: ordinary table (partition leaves included), p: partitioned parent (holds no rows). */
  kind: 'r' | 'p';
  isPartition: boolean;
  persistence: 'p' | 'u' | 't';
  columns: ColumnInfo[];
  primaryKey: string[];
  /** The primary key is DEFERRABLE: it does not serve as the replica identity. */
  primaryKeyDeferrable: boolean;
  /** Columns that identify a row: the primary key, else the replica identity index, else a unique index on NOT NULL columns. */
  keyColumns: string[];
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  /** REPLICA IDENTITY USING INDEX names an index that exists and is valid. */
  replicaIdentityIndex: boolean;
  bytes: number;
  rowEstimate: number;
}

export interface SequenceInfo extends QualifiedName {
  dataType: string;
  maxValue: string;
  minValue: string;
  /** Negative for a descending sequence. */
  increment: string;
  cycle: boolean;
  ownedBy?: string;
}

/**
 * Extension types whose binary form is known and holds no OID, so it reads back on another server
 * with the same extension: citext (its text's bytes) and hstore (counted key/value strings, the
 * same since hstore 1.0). Each named for the extension and the type alike.
 */
const BINARY_EXTENSION_TYPES = ['citext', 'hstore'].map((t) => `'${t}'`).join(', ');

export async function listTables(c: pg.Client, versionNum: number): Promise<TableInfo[]> {
  const generated = versionNum >= 120000 ? "a.attgenerated <> ''" : 'false';
  const r = await c.query<TableRow>(`
    SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
           c.relispartition AS is_partition, c.relpersistence AS persistence,
           c.relreplident AS replident,
           EXISTS (SELECT 1 FROM pg_index ri WHERE ri.indrelid = c.oid AND ri.indisreplident AND ri.indisvalid) AS replident_index,
           pg_total_relation_size(c.oid)::text AS bytes, c.reltuples::text AS reltuples,
           COALESCE((SELECT json_agg(json_build_object(
                        'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                        'baseType', CASE WHEN base.oid IS NULL THEN format_type(a.atttypid, a.atttypmod) ELSE format_type(base.oid, ty.typtypmod) END,
                        'generated', ${generated}, 'identity', a.attidentity::text, 'notNull', a.attnotnull,
                        'binaryCopy', ty.typtype = 'e' OR (
                          coalesce(base.oid, ty.oid) < 16384 AND coalesce(base.typsend, ty.typsend)::oid <> 0 AND coalesce(base.typreceive, ty.typreceive)::oid <> 0
                          AND coalesce(el.typname, base.typname, ty.typname)::text !~ '^reg')
                          OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                                      WHERE d.classid = 'pg_type'::regclass AND d.objid = coalesce(base.oid, ty.oid) AND d.deptype = 'e'
                                        AND e.extname = coalesce(base.typname, ty.typname) AND e.extname IN (${BINARY_EXTENSION_TYPES})))
                      ORDER BY a.attnum)
                     FROM pg_attribute a
                     JOIN pg_type ty ON ty.oid = a.atttypid
                     LEFT JOIN pg_type base ON ty.typtype = 'd' AND base.oid = ty.typbasetype
                     LEFT JOIN pg_type el ON el.oid = coalesce(base.typelem, ty.typelem)
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
           (SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_index i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND NOT i.indimmediate) AS pk_deferrable,
           (SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM (SELECT i.* FROM pg_index i
                     WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                       AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) u JOIN pg_attribute ua ON ua.attrelid = c.oid AND ua.attnum = u WHERE NOT ua.attnotnull)
                     ORDER BY i.indisprimary DESC, i.indisreplident DESC, i.indnatts, i.indexrelid LIMIT 1) i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS key_columns
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMAS} AND ${NOT_EXTENSION_MEMBER}
     ORDER BY n.nspname, c.relname`);
  return r.rows.map(tableInfo);
}

/** A row of listTables' statement. */
interface TableRow {
  oid: number;
  schema: string;
  name: string;
  kind: 'r' | 'p';
  is_partition: boolean;
  persistence: 'p' | 'u' | 't';
  replident: 'd' | 'n' | 'f' | 'i';
  replident_index: boolean;
  bytes: string;
  reltuples: string;
  columns: ColumnInfo[];
  pk: string[] | null;
  pk_deferrable: boolean;
  key_columns: string[] | null;
}

/** A row of listTables' statement as TableInfo. */
function tableInfo(row: TableRow): TableInfo {
  return {
    oid: row.oid,
    schema: row.schema,
    name: row.name,
    kind: row.kind,
    isPartition: row.is_partition,
    persistence: row.persistence,
    replicaIdentity: row.replident,
    replicaIdentityIndex: row.replident_index,
    bytes: Number(row.bytes),
    rowEstimate: Math.max(0, Number(row.reltuples)),
    columns: row.columns,
    primaryKey: row.pk ?? [],
    primaryKeyDeferrable: row.pk_deferrable,
    keyColumns: row.key_columns ?? [],
  };
}

export async function listSequences(c: pg.Client): Promise<SequenceInfo[]> {
  const r = await c.query<{ schema: string; name: string; data_type: string; max_value: string; min_value: string; increment: string; cycle: boolean; owned_by: string | null }>(`
    SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS data_type, s.seqmax::text AS max_value,
           s.seqmin::text AS min_value, s.seqincrement::text AS increment, s.seqcycle AS cycle,
           (SELECT quote_ident(tn.nspname) || '.' || quote_ident(t.relname) || '.' || quote_ident(a.attname)
              FROM pg_depend d
              JOIN pg_class t ON t.oid = d.refobjid
              JOIN pg_namespace tn ON tn.oid = t.relnamespace
              JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') LIMIT 1) AS owned_by
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_sequence s ON s.seqrelid = c.oid
     WHERE c.relkind = 'S' AND ${USER_SCHEMAS}
     ORDER BY 1, 2`);
  return r.rows.map((row) => ({
    schema: row.schema,
    name: row.name,
    dataType: row.data_type,
    maxValue: row.max_value,
    minValue: row.min_value,
    increment: row.increment,
    cycle: row.cycle,
    ownedBy: row.owned_by ?? undefined,
  }));
}

/** Columns that COPY and hashing carry: everything but generated columns (the target computes those). */
export function copyColumns(t: TableInfo): string[] {
  return t.columns.filter((col) => !col.generated).map((col) => col.name);
}

export async function setting(c: pg.Client, name: string): Promise<string | undefined> {
  const r = await c.query<{ v: string | null }>('SELECT current_setting($1, true) AS v', [name]);
  return r.rows[0]?.v ?? undefined;
}

/** The tables (schema.table) of this list that this server does not have. */
export async function missingTables(c: pg.Client, tables: QualifiedName[]): Promise<Set<string>> {
  const r = await c.query<{ schema: string; name: string }>(
    `SELECT t.schema, t.name FROM unnest($1::text[], $2::text[]) AS t(schema, name)
      WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = t.schema AND c.relname = t.name)`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return new Set(r.rows.map(displayName));
}

/** Whether a table (or any relation) of this name exists. */
export async function relationExists(c: pg.Client, t: QualifiedName): Promise<boolean> {
  const r = await c.query('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [t.schema, t.name]);
  return (r.rowCount ?? 0) > 0;
}

/** Indexes a failed CREATE INDEX CONCURRENTLY (or a crash) left invalid, outside the system schemas. */
export async function invalidIndexes(c: pg.Client): Promise<string[]> {
  const r = await c.query<{ i: string }>(
    `SELECT i.indexrelid::regclass::text AS i FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
  );
  return r.rows.map((x) => x.i);
}

/** Fresh planner statistics for every table of the database (before the application arrives). */
export async function analyzeDatabase(c: pg.Client): Promise<void> {
  await c.query('ANALYZE');
}

/** The role this session runs as, and whether it is a superuser. */
export async function currentRole(c: pg.Client): Promise<{ name: string; superuser: boolean; canSubscribe: boolean }> {
  const r = await c.query<{ name: string; superuser: boolean; subscribe: boolean }>(
    `SELECT current_user AS name, r.rolsuper AS superuser,
            r.rolsuper OR EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname IN ('rds_superuser', 'pg_create_subscription') AND pg_has_role(r.oid, g.oid, 'MEMBER')) AS subscribe
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  return { name: r.rows[0].name, superuser: r.rows[0].superuser, canSubscribe: r.rows[0].subscribe };
}

/** The lowest and highest value of an integer key column (null on an empty table), this table's rows only. */
export async function keyRange(c: pg.Client, t: QualifiedName, column: string): Promise<{ lo: bigint; hi: bigint } | null> {
  const r = await c.query<{ lo: string | null; hi: string | null }>(`SELECT min(${quoteIdent(column)})::text AS lo, max(${quoteIdent(column)})::text AS hi FROM ONLY ${qualify(t)}`);
  return r.rows[0].lo === null ? null : { lo: BigInt(r.rows[0].lo), hi: BigInt(r.rows[0].hi!) };
}

/** A table's size in blocks (the range its ctid parts divide). */
export async function relationBlocks(c: pg.Client, t: QualifiedName): Promise<number> {
  const r = await c.query<{ blocks: string }>(`SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::text AS blocks`, [qualify(t)]);
  return Number(r.rows[0].blocks);
}

/** The tables of this list that exist on this server (schema.table pairs). */
export async function existingRelations(c: pg.Client, tables: QualifiedName[]): Promise<QualifiedName[]> {
  const r = await c.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return r.rows;
}

/** ANALYZE every user table never analyzed (by hand or by autovacuum), then these tables. */
export async function analyzeUnanalyzed(c: pg.Client, alsoThese: QualifiedName[]): Promise<void> {
  const unanalyzed = await c.query<{ t: string }>(
    `SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS t FROM pg_stat_user_tables WHERE last_analyze IS NULL AND last_autoanalyze IS NULL AND schemaname <> '${CONTROL_SCHEMA}'`,
  );
  for (const r of unanalyzed.rows) await c.query(`ANALYZE ${r.t}`);
  for (const t of alsoThese) await c.query(`ANALYZE ${qualify(t)}`);
}
