import type pg from 'pg';
import { qualify } from '../core/ident.js';
import type { TableInfo } from './catalog.js';
import { copyTable, useCopySettings, withCopyTransaction } from './copy.js';

/** unlogged.mode: make-logged — on the source, before its slot: a rewrite under an ACCESS EXCLUSIVE lock. */
export async function setLogged(source: pg.Client, t: TableInfo): Promise<void> {
  await source.query(`ALTER TABLE ${qualify(t)} SET LOGGED`);
}

/**
 * unlogged.mode: copy-at-cutover — inside the window, writes fenced: the target's copies emptied
 * together (a foreign key between two unlogged tables does not stop it) and each table copied in
 * one target transaction, with triggers and foreign-key checks off for the copy
 * (session_replication_role = replica, as a subscription's apply does). Run again after a failed
 * attempt, it starts from empty again.
 */
export async function copyUnloggedTables(source: pg.Client, target: pg.Client, tables: TableInfo[]): Promise<Array<{ table: TableInfo; rows: number; bytes: number }>> {
  if (!tables.length) return [];
  await useCopySettings(source);
  await useCopySettings(target);
  const out: Array<{ table: TableInfo; rows: number; bytes: number }> = [];
  await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  await withCopyTransaction(source, target, async () => {
    await target.query(`SET LOCAL session_replication_role = replica`);
    await target.query(`TRUNCATE ONLY ${tables.map(qualify).join(', ')}`);
    for (const t of tables) out.push({ table: t, ...(await copyTable(source, target, t, { format: 'text' })) });
  });
  return out;
}
