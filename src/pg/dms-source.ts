import type pg from 'pg';
import { noteChange } from '../core/changes.js';
import { failure, gateRefused } from '../core/errors.js';
import { sleep } from '../core/wait.js';
import { displayName, qualify, type QualifiedName } from '../core/ident.js';
import type { Logger } from '../core/log.js';
import { formatLsn, parseLsn } from '../core/lsn.js';

/**
 * The source side of a DMS CDC-only task (reference: shared/reference/aws-dms.md §2.3–2.4).
 *
 *   pglogical: the extension, one node, and per slot two replication sets named as DMS expects:
 *   `<slot>` (updates, deletes) and `i<slot>` (inserts, truncates), holding exactly the group's
 *   tables — leaf partitions, never parents; a table without a primary key stays out of the
 *   update/delete set (pglogical refuses it there; DMS ignores its updates and deletes anyway).
 *   test_decoding: nothing but the slot; DMS filters by the task's table mapping.
 *
 * The start LSN is checked against the slot with a bounded peek (never get_changes, which would
 * consume): it must not be older than the slot's confirmed_flush_lsn, and when it is not itself a
 * change position the next change's LSN is used — DMS fails a CDC-only task, an hour later, on
 * an LSN it cannot find.
 */
export type DmsPlugin = 'pglogical' | 'test_decoding';

export interface DmsSets {
  updates: string;
  inserts: string;
  /** Tables left out of the update/delete set (no primary key). */
  keyless: QualifiedName[];
}

export function replicationSetNames(slot: string): { updates: string; inserts: string } {
  return { updates: slot, inserts: `i${slot}` };
}

/** The node name pgshift gives the source (one per database). */
export const PGLOGICAL_NODE = 'pgshift_source';

/** Refuse, before anything is created, when pglogical cannot be used on the source. */
export async function requirePglogical(c: pg.Client, label: string): Promise<void> {
  const r = await c.query<{ available: boolean; preloaded: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pglogical') AS available,
            'pglogical' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded`,
  );
  if (!r.rows[0].available) {
    throw gateRefused('source.pglogical', `source ${label}: the pglogical extension is not installed`, 'install pglogical on the source (Debian: postgresql-<major>-pglogical) or set cdc.dms.plugin: test_decoding');
  }
  if (!r.rows[0].preloaded) {
    throw gateRefused('source.pglogical', `source ${label}: pglogical is not in shared_preload_libraries`, "add pglogical to shared_preload_libraries and restart the source, or set cdc.dms.plugin: test_decoding");
  }
}

/** Extension and node, idempotent. `dsn` is how the node names itself (pglogical stores it). */
export async function ensurePglogicalNode(c: pg.Client, dsn: string): Promise<void> {
  noteChange('pglogical node on the source');
  await c.query('CREATE EXTENSION IF NOT EXISTS pglogical');
  const node = await c.query(`SELECT 1 FROM pglogical.node WHERE node_name = $1`, [PGLOGICAL_NODE]);
  if (!node.rowCount) await c.query('SELECT pglogical.create_node(node_name := $1, dsn := $2)', [PGLOGICAL_NODE, dsn]);
}

/**
 * The two replication sets of one slot with exactly these tables (created, or corrected: tables
 * no longer in the group are removed). synchronize_data is false: the rows come from the full load.
 */
export async function ensureReplicationSets(c: pg.Client, slot: string, tables: Array<QualifiedName & { primaryKey: string[] }>, log: Logger): Promise<DmsSets> {
  const { updates, inserts } = replicationSetNames(slot);
  noteChange(`replication sets ${updates}, ${inserts} on the source`);
  const existing = new Set((await c.query<{ n: string }>('SELECT set_name AS n FROM pglogical.replication_set WHERE set_name = ANY($1)', [[updates, inserts]])).rows.map((r) => r.n));
  // create_replication_set(name, replicate_insert, replicate_update, replicate_delete, replicate_truncate)
  if (!existing.has(updates)) await c.query('SELECT pglogical.create_replication_set($1, false, true, true, false)', [updates]);
  if (!existing.has(inserts)) await c.query('SELECT pglogical.create_replication_set($1, true, false, false, true)', [inserts]);
  const keyless = tables.filter((t) => t.primaryKey.length === 0);
  // Compared by OID: one table has several spellings (quoted or not).
  const oids = await c.query<{ oid: string }>('SELECT x::regclass::oid::text AS oid FROM unnest($1::text[]) WITH ORDINALITY u(x, i) ORDER BY i', [tables.map(qualify)]);
  const oidOf = new Map(tables.map((t, i) => [t, oids.rows[i].oid]));
  const want = new Map<string, Set<string>>([
    [inserts, new Set(tables.map((t) => oidOf.get(t)!))],
    [updates, new Set(tables.filter((t) => t.primaryKey.length > 0).map((t) => oidOf.get(t)!))],
  ]);
  for (const [set, wanted] of want) {
    const have = await c.query<{ oid: string }>(
      `SELECT st.set_reloid::oid::text AS oid FROM pglogical.replication_set_table st JOIN pglogical.replication_set s ON s.set_id = st.set_id WHERE s.set_name = $1`,
      [set],
    );
    const present = new Set(have.rows.map((r) => r.oid));
    for (const oid of wanted) if (!present.has(oid)) await c.query('SELECT pglogical.replication_set_add_table($1, $2::oid::regclass, false)', [set, oid]);
    for (const oid of present) if (!wanted.has(oid)) await c.query('SELECT pglogical.replication_set_remove_table($1, $2::oid::regclass)', [set, oid]);
  }
  for (const t of keyless) {
    log.warn(`${displayName(t)} has no primary key: it is left out of replication set ${updates}, so DMS applies its inserts but not its updates and deletes — add a primary key before the migration`);
  }
  return { updates, inserts, keyless };
}

/**
 * Tables leave both replication sets of a slot (a resumed load moves them to a newer stream); a
 * table that is not in a set is skipped. Returns how many memberships were removed.
 */
export async function removeFromReplicationSets(c: pg.Client, slot: string, tables: QualifiedName[]): Promise<number> {
  if (!tables.length) return 0;
  const { updates, inserts } = replicationSetNames(slot);
  noteChange(`tables out of replication sets ${updates}, ${inserts} on the source`);
  const r = await c.query<{ set: string; oid: string }>(
    `SELECT s.set_name AS set, st.set_reloid::oid::text AS oid FROM pglogical.replication_set_table st JOIN pglogical.replication_set s ON s.set_id = st.set_id
      WHERE s.set_name = ANY($1) AND st.set_reloid::oid IN (SELECT x::regclass::oid FROM unnest($2::text[]) x)`,
    [[updates, inserts], tables.map(qualify)],
  );
  for (const row of r.rows) await c.query('SELECT pglogical.replication_set_remove_table($1, $2::oid::regclass)', [row.set, row.oid]);
  return r.rowCount ?? 0;
}

export async function dropReplicationSets(c: pg.Client, slot: string): Promise<boolean> {
  const ext = await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'pglogical'`);
  if (!ext.rowCount) return false;
  const { updates, inserts } = replicationSetNames(slot);
  let dropped = false;
  for (const set of [updates, inserts]) {
    const r = await c.query('SELECT 1 FROM pglogical.replication_set WHERE set_name = $1', [set]);
    if (r.rowCount) {
      await c.query('SELECT pglogical.drop_replication_set($1)', [set]);
      dropped = true;
    }
  }
  return dropped;
}

/** Drop the node once no replication set of pgshift's is left (teardown). */
export async function dropPglogicalNodeIfUnused(c: pg.Client): Promise<boolean> {
  const ext = await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'pglogical'`);
  if (!ext.rowCount) return false;
  const sets = await c.query(`SELECT 1 FROM pglogical.replication_set WHERE set_name NOT IN ('default', 'default_insert_only', 'ddl_sql')`);
  if (sets.rowCount) return false;
  const node = await c.query('SELECT 1 FROM pglogical.node WHERE node_name = $1', [PGLOGICAL_NODE]);
  if (!node.rowCount) return false;
  await c.query('SELECT pglogical.drop_node($1)', [PGLOGICAL_NODE]);
  return true;
}

/** The output plugin's options for a peek, as DMS would decode the slot. */
export function peekOptions(plugin: DmsPlugin, slot: string): string[] {
  if (plugin === 'test_decoding') return [];
  const { updates, inserts } = replicationSetNames(slot);
  return [
    'min_proto_version', '1',
    'max_proto_version', '1',
    'startup_params_format', '1',
    'proto_format', 'json',
    'pglogical.replication_set_names', `${updates},${inserts}`,
  ];
}

export interface StartPosition {
  /** The LSN to give DMS: the captured one, or the next change position after it. */
  lsn: string;
  captured: string;
  confirmedFlush: string;
  /** True when the captured LSN was itself a change position. */
  exact: boolean;
}

/**
 * Check (and if needed move forward) the CDC start position for one slot, reading the slot with a
 * bounded peek. `beat` writes a change the slot will carry (a heartbeat row of the group) for an
 * idle source, where no change after the captured LSN exists yet.
 */
export async function verifyStartLsn(
  c: pg.Client,
  options: { slot: string; plugin: DmsPlugin; captured: string; serverVersionNum: number; maxChanges: number; beat?: () => Promise<void>; signal?: AbortSignal },
): Promise<StartPosition> {
  const slot = await c.query<{ plugin: string; confirmed: string | null }>('SELECT plugin, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [options.slot]);
  if (!slot.rowCount) throw failure('dms.slot-missing', `replication slot ${options.slot} does not exist on the source`, 'run pgshift full-load --restart for this group to create it again');
  const expected = options.plugin === 'pglogical' ? ['pglogical', 'pglogical_output'] : ['test_decoding'];
  if (!expected.includes(slot.rows[0].plugin)) {
    throw failure('dms.slot-plugin', `replication slot ${options.slot} uses the ${slot.rows[0].plugin} plugin, not ${options.plugin}`, 'set cdc.dms.plugin to match, or restart the group');
  }
  const confirmed = slot.rows[0].confirmed ?? '0/0';
  if (parseLsn(options.captured) < parseLsn(confirmed)) {
    throw gateRefused(
      'dms.lsn-too-old',
      `start LSN ${options.captured} of slot ${options.slot} is older than its confirmed_flush_lsn ${confirmed}: changes in between would be skipped silently`,
      'restart the group (pgshift full-load --restart): the snapshot must be taken after the slot was created',
    );
  }
  const column = options.serverVersionNum < 100000 ? 'location' : 'lsn';
  const opts = peekOptions(options.plugin, options.slot);
  const args = opts.map((_, i) => `$${i + 4}`).join(', ');
  const peek = async () => {
    const r = await c.query<{ lsn: string | null }>(
      // pglogical's first row is its startup message, which carries no change. ORDER BY … LIMIT 1,
      // not min(): pg_lsn has no min/max aggregates before PostgreSQL 13.
      `SELECT ${column}::text AS lsn FROM pg_logical_slot_peek_changes($1, NULL, $2${args ? `, ${args}` : ''})
        WHERE ${column} >= $3::pg_lsn${options.plugin === 'pglogical' ? ` AND data::jsonb->>'action' IS DISTINCT FROM 'S'` : ''}
        ORDER BY ${column} LIMIT 1`,
      [options.slot, options.maxChanges, options.captured, ...opts],
    );
    return r.rows[0]?.lsn ?? null;
  };
  // Decoding reads only flushed WAL: a commit made with synchronous_commit off shows up once the
  // WAL writer has flushed it (within 3 × wal_writer_delay), so an empty peek is retried briefly.
  const peekSettled = async () => {
    for (let i = 0; ; i++) {
      const lsn = await peek();
      if (lsn !== null || i >= 10) return lsn;
      await sleep(200, options.signal);
    }
  };
  let next = await peekSettled();
  if (next === null && options.beat) {
    await options.beat();
    next = await peekSettled();
  }
  if (next === null) {
    throw failure(
      'dms.lsn-not-found',
      `no change at or after ${options.captured} in the first ${options.maxChanges} changes of slot ${options.slot}`,
      'raise cdc.dms.peekMaxChanges (the slot holds more changes before that position), or write to a table of the group and run again',
    );
  }
  return { lsn: formatLsn(parseLsn(next)), captured: options.captured, confirmedFlush: confirmed, exact: parseLsn(next) === parseLsn(options.captured) };
}

/**
 * DMS's own objects, removed by teardown: its control tables on the target (awsdms_apply_exceptions,
 * awsdms_status, …, in any schema), and on the source its heartbeat table and the DDL-capture event
 * trigger, function and audit table (created when CaptureDdls was on). Returns what was dropped.
 */
export async function dropDmsArtifacts(s: { source: pg.Client; target: pg.Client }): Promise<string[]> {
  const dropped: string[] = [];
  const tables = `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.relname LIKE 'awsdms\\_%' AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`;
  for (const [side, c] of [['target', s.target], ['source', s.source]] as const) {
    if (side === 'source') {
      const trig = await c.query(`SELECT 1 FROM pg_event_trigger WHERE evtname = 'awsdms_intercept_ddl'`);
      if (trig.rowCount) {
        await c.query('DROP EVENT TRIGGER awsdms_intercept_ddl');
        dropped.push('event trigger awsdms_intercept_ddl (source)');
      }
      const fns = await c.query<{ f: string }>(`SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE p.proname = 'awsdms_intercept_ddl'`);
      for (const f of fns.rows) {
        await c.query(`DROP FUNCTION ${f.f}`);
        dropped.push(`function ${f.f} (source)`);
      }
    }
    for (const { t } of (await c.query<{ t: string }>(tables)).rows) {
      await c.query(`DROP TABLE IF EXISTS ${t}`);
      dropped.push(`table ${t} (${side})`);
    }
  }
  return dropped;
}
