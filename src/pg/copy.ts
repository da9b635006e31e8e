import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { qualify, quoteIdent, quoteLiteral, type QualifiedName } from '../core/ident.js';
import { copyColumns, type TableInfo } from './catalog.js';

/**
 * Streaming COPY from the source straight into the target: no intermediate file, and memory
 * bounded by the stream buffers whatever the table size.
 *
 * Binary when every copied column's type allows it (types whose binary form holds no OID: see
 * ColumnInfo.binaryCopy), text otherwise. Binary spares both servers the printing and parsing of
 * numbers, timestamps, numerics and arrays (on the benchmark's tables the target's COPY takes
 * 15–28% less time); text is the form that any two servers agree on whatever the types — binary
 * COPY of a composite or an array of a user type embeds type OIDs that differ between two servers.
 */
export interface CopyResult {
  rows: number;
  bytes: number;
}

/** fullLoad.copyFormat: 'auto' picks binary where the column types allow it, 'text' forces text. */
export type CopyFormatChoice = 'auto' | 'text';

export interface CopyOptions {
  /** Called with the size of every chunk that passes. */
  onBytes?: (bytes: number) => void;
  /** A part of the table: a WHERE condition on the source (key or ctid range). */
  where?: string;
  /**
   * COPY … FREEZE: the rows are written frozen, so the index builds and ANALYZE that read them
   * next do not set hint bits (and rewrite every page). Only valid in the transaction that
   * truncated the table.
   */
  freeze?: boolean;
  format?: CopyFormatChoice;
}

export function copyFormatOf(table: TableInfo, format: CopyFormatChoice = 'auto'): 'binary' | 'text' {
  return format === 'auto' && table.columns.every((c) => c.generated || c.binaryCopy) ? 'binary' : 'text';
}

/**
 * Text COPY carries each value as the source prints it, for the target to parse, so both sessions
 * get the settings pg_dump uses, whatever the databases' own defaults: ISO dates (readable under
 * any DateStyle; 'SQL, DMY' on one side and MDY on the other would swap day and month), intervals
 * in the postgres style, and extra_float_digits = 3 — before PostgreSQL 12 a float prints with
 * only 15 significant digits unless told otherwise (from 12 on, any positive value gives the
 * shortest text that reads back exactly), and money in the C locale (it prints and parses with
 * lc_monetary: '1.234,56 €' on a German source means nothing to an English target). Once per
 * session, outside a transaction, before the first copyTable on it.
 */
export async function useCopySettings(c: pg.Client): Promise<void> {
  await c.query(`SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET lc_monetary = 'C'`);
}

/** Both sessions must have had useCopySettings. */
export async function copyTable(source: pg.Client, target: pg.Client, table: TableInfo, options: CopyOptions = {}): Promise<CopyResult> {
  const cols = copyColumns(table).map(quoteIdent).join(', ');
  // A table without columns (CREATE TABLE t ()) still holds rows: COPY takes no column list then
  // (`t ()` is a syntax error) and carries one empty line per row; `SELECT FROM` reads them.
  const list = cols ? ` (${cols})` : '';
  const format = copyFormatOf(table, options.format);
  const outOptions = format === 'binary' ? ' (FORMAT binary)' : '';
  const inOptions = [format === 'binary' ? 'FORMAT binary' : '', options.freeze ? 'FREEZE' : ''].filter(Boolean).join(', ');
  const out = source.query(
    copyTo(
      options.where
        ? `COPY (SELECT ${cols} FROM ONLY ${qualify(table)} WHERE ${options.where}) TO STDOUT${outOptions}`
        : `COPY ${qualify(table)}${list} TO STDOUT${outOptions}`,
    ),
  );
  const into = target.query(copyFrom(`COPY ${qualify(table)}${list} FROM STDIN${inOptions ? ` WITH (${inOptions})` : ''}`));
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      options.onBytes?.(chunk.length);
      done(null, chunk);
    },
  });
  await pipeline(out, meter, into);
  return { rows: Number(into.rowCount ?? 0), bytes };
}

/**
 * `work` inside a target transaction, the source's transaction (begun by the caller: a snapshot,
 * a repeatable read) ending with it: both committed, or both rolled back on any error.
 */
export async function withCopyTransaction<T>(source: pg.Client, target: pg.Client, work: () => Promise<T>): Promise<T> {
  await target.query('BEGIN');
  try {
    const result = await work();
    await target.query('COMMIT');
    await source.query('COMMIT');
    return result;
  } catch (err) {
    await target.query('ROLLBACK').catch(() => {});
    await source.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Replace a table's rows on the target with the source's, in one target transaction: the source
 * session is already in the snapshot's transaction (importSnapshot), and both commit together.
 * Foreign keys are in place by then, so the target session runs as a replica (no FK triggers) and
 * deletes rather than truncates, as a subscription's apply worker would. Returns the rows copied.
 */
export async function replaceTableRows(source: pg.Client, target: pg.Client, table: TableInfo, options: CopyOptions = {}): Promise<number> {
  return (await copyPartOnce(source, target, table, { whole: true, clear: 'delete', copy: options, record: async () => {} })).rows;
}

/**
 * Load one part (0: a whole table) in one target transaction: a whole table is cleared first
 * (TRUNCATE, which lets COPY … FREEZE skip the hint-bit rewrite, or — once foreign keys exist —
 * DELETE as a replica, as the apply worker does), the rows copied, `record` run in the same
 * transaction (the journal's row), then both sides commit. A crash leaves all of it or none.
 * The source session is already in its snapshot's transaction.
 */
export async function copyPartOnce(
  source: pg.Client,
  target: pg.Client,
  table: TableInfo,
  o: { whole: boolean; clear: 'truncate' | 'delete'; copy: CopyOptions; record: (r: CopyResult) => Promise<void> },
): Promise<CopyResult> {
  return withCopyTransaction(source, target, async () => {
    if (o.whole && o.clear === 'truncate') await target.query(`TRUNCATE ONLY ${qualify(table)}`);
    if (o.clear === 'delete') await target.query('SET LOCAL session_replication_role = replica');
    if (o.whole && o.clear === 'delete') await target.query(`DELETE FROM ONLY ${qualify(table)}`);
    const r = await copyTable(source, target, table, { ...o.copy, freeze: o.whole && o.clear === 'truncate' });
    await o.record(r);
    return r;
  });
}

/** Clear a table (this table's rows only) and, in the same transaction, run `alongside`. */
export async function clearTable(c: pg.Client, table: QualifiedName, clear: 'truncate' | 'delete', alongside: () => Promise<void>): Promise<void> {
  await c.query('BEGIN');
  try {
    if (clear === 'truncate') await c.query(`TRUNCATE ONLY ${qualify(table)}`);
    else {
      await c.query('SET LOCAL session_replication_role = replica');
      await c.query(`DELETE FROM ONLY ${qualify(table)}`);
    }
    await alongside();
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

export async function truncateTables(c: pg.Client, tables: QualifiedName[], alongside: () => Promise<void>): Promise<void> {
  await c.query('BEGIN');
  try {
    if (tables.length) await c.query(`TRUNCATE ONLY ${tables.map(qualify).join(', ')}`);
    await alongside();
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Settings of the load's target sessions: index builds get this much memory; and (14+) a dead client's statement is cancelled within a second instead of running to its end. */
export async function useLoadSettings(c: pg.Client, maintenanceWorkMem: string): Promise<void> {
  await c.query(`DO $$ BEGIN IF current_setting('server_version_num')::int >= 140000 THEN SET client_connection_check_interval = 1000; END IF; END $$`);
  await c.query(`SET maintenance_work_mem = ${quoteLiteral(maintenanceWorkMem)}`);
}
