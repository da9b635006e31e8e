import type pg from 'pg';
import { noteChange } from '../core/changes.js';
import type { Logger } from '../core/log.js';
import { displayName, qualify, quoteIdent, quoteLiteral, type QualifiedName } from '../core/ident.js';
import { sleep } from '../core/wait.js';
import { CONTROL, CONTROL_SCHEMA_SQL } from '../journal/journal.js';

/**
 * Native logical replication objects: publications on the source, subscriptions on the target,
 * and the heartbeat tables that give lag in seconds and the cut-over barrier. Every statement is
 * idempotent so that a re-run after a failure converges.
 */

export async function ensureHeartbeat(c: pg.Client, table: string, group: string): Promise<void> {
  noteChange(`heartbeat table pgshift.${table}`);
  await c.query(CONTROL_SCHEMA_SQL);
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${CONTROL}.${quoteIdent(table)} (
       group_name text PRIMARY KEY,
       beat_at timestamptz NOT NULL DEFAULT now(),
       seq bigint NOT NULL DEFAULT 0,
       marker text)`,
  );
  await c.query(`INSERT INTO ${CONTROL}.${quoteIdent(table)} (group_name) VALUES ($1) ON CONFLICT DO NOTHING`, [group]);
}

export async function publicationExists(c: pg.Client, name: string): Promise<boolean> {
  const r = await c.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
  return (r.rowCount ?? 0) > 0;
}

/**
 * The publication lists the group's tables one by one — partition leaves rather than their parent,
 * so it works from PostgreSQL 10 on and DMS-style per-table accounting stays possible — plus the
 * group's heartbeat table and, when DDL follows the stream, its DDL queue.
 */
export async function createPublication(c: pg.Client, name: string, tables: QualifiedName[], heartbeat: string, ddlQueue?: string): Promise<void> {
  await createPublicationOf(c, name, tables, [heartbeat, ...(ddlQueue ? [ddlQueue] : [])], 'source');
}

/** A publication of these tables and of these tables of pgshift's control schema, unless it exists. */
export async function createPublicationOf(c: pg.Client, name: string, tables: QualifiedName[], controlTables: string[], side: 'source' | 'target'): Promise<void> {
  if (await publicationExists(c, name)) return;
  noteChange(`publication ${name} on the ${side}`);
  const list = [...tables.map(qualify), ...controlTables.map((t) => `${CONTROL}.${quoteIdent(t)}`)].join(', ');
  await c.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${list}`);
}

/** The tables a publication holds, as schema.table display names. */
export async function publishedTables(c: pg.Client, publication: string): Promise<Set<string>> {
  const r = await c.query<{ schema: string; name: string }>('SELECT schemaname AS schema, tablename AS name FROM pg_publication_tables WHERE pubname = $1', [publication]);
  return new Set(r.rows.map(displayName));
}

/** Take tables out of a publication (those it does not hold are left alone). */
export async function dropFromPublication(c: pg.Client, publication: string, tables: QualifiedName[]): Promise<void> {
  const published = await publishedTables(c, publication);
  const leaving = tables.filter((t) => published.has(displayName(t)));
  if (!leaving.length) return;
  noteChange(`${leaving.length} table(s) leave publication ${publication}`);
  await c.query(`ALTER PUBLICATION ${quoteIdent(publication)} DROP TABLE ${leaving.map(qualify).join(', ')}`);
}

/** Drop the publication if it exists; true when it did. */
export async function dropPublication(c: pg.Client, name: string): Promise<boolean> {
  if (!(await publicationExists(c, name))) return false;
  noteChange(`publication ${name} dropped`);
  await c.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(name)}`);
  return true;
}

export async function subscriptionExists(c: pg.Client, name: string): Promise<boolean> {
  const r = await c.query('SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())', [name]);
  return (r.rowCount ?? 0) > 0;
}

export interface SubscriptionSpec {
  name: string;
  conninfo: string;
  publication: string;
  slot: string;
  /** Stream large in-progress transactions (both sides ≥ 14). */
  streaming: boolean;
  /**
   * Where applying starts when it is later than the slot's own start (paused replica: the slot was
   * created before the snapshot). The subscription's replication origin is advanced there before
   * it is enabled, so the changes already in the copy are skipped.
   */
  startLsn?: string;
}

/**
 * Bound to the slot created at the snapshot: no new slot, no initial copy (the full load did
 * that), created disabled and then enabled, so the first change applied is the first commit after
 * the snapshot's LSN. The statements that carry the conninfo go through execWithSecret, so the
 * password reaches neither the statement log nor an error message.
 */
export async function createSubscription(c: pg.Client, spec: SubscriptionSpec, log?: Logger): Promise<void> {
  noteChange(`subscription ${spec.name}`);
  if (!(await subscriptionExists(c, spec.name))) {
    const options = [`create_slot = false`, `slot_name = ${quoteLiteral(spec.slot)}`, `copy_data = false`, `enabled = false`];
    if (spec.streaming) options.push('streaming = on');
    await execWithSecret(c, `CREATE SUBSCRIPTION ${quoteIdent(spec.name)} CONNECTION %L PUBLICATION ${quoteIdent(spec.publication)} WITH (${options.join(', ')})`, spec.conninfo, log);
    if (spec.startLsn) {
      await c.query(`SELECT pg_replication_origin_advance('pg_' || oid, $2::pg_lsn) FROM pg_subscription WHERE subname = $1`, [spec.name, spec.startLsn]);
    }
  } else {
    // A re-run may bring a new way to reach the source (host moved, proxy): take it.
    const current = await c.query<{ conninfo: string }>('SELECT subconninfo AS conninfo FROM pg_subscription WHERE subname = $1', [spec.name]);
    if (current.rows[0]?.conninfo !== spec.conninfo) await execWithSecret(c, `ALTER SUBSCRIPTION ${quoteIdent(spec.name)} CONNECTION %L`, spec.conninfo, log);
  }
  await c.query(`ALTER SUBSCRIPTION ${quoteIdent(spec.name)} ENABLE`);
}

/**
 * Run a statement whose text must hold a secret (a subscription's conninfo with its password)
 * without the secret reaching the server's log. A server logs a statement's text when it fails
 * (log_min_error_statement), and for DDL when log_statement is ddl or all; so the secret travels
 * as a bound parameter of a call to a temporary function, which EXECUTEs the statement and, should
 * it fail, raises the error again with the secret masked (an error caught inside a function is
 * not logged, and the raised one carries no statement text). Where this role may, statement
 * logging is also switched off for the call; what still logs calls with their parameters
 * (log_statement = all, log_min_duration_statement, pgaudit) is said in a warning.
 */
export async function execWithSecret(c: pg.Client, template: string, secret: string, log?: Logger, what = "the subscription's connection string (with its password)"): Promise<void> {
  await c.query(`CREATE OR REPLACE FUNCTION pg_temp.pgshift_exec_with_secret(statement text, secret text) RETURNS void LANGUAGE plpgsql AS $fn$
    DECLARE
      message text;
    BEGIN
      EXECUTE format(statement, secret);
    EXCEPTION WHEN OTHERS THEN
      message := regexp_replace(replace(SQLERRM, secret, '***'), 'password\\s*=\\s*(''([^''\\\\]|\\\\.)*''|\\S+)', 'password=***', 'gi');
      RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = message;
    END $fn$`);
  const restore = await quietStatementLog(c, what, log);
  try {
    await c.query('SELECT pg_temp.pgshift_exec_with_secret($1, $2)', [template, secret]);
  } finally {
    await restore();
  }
}

/** Switch this session's statement logging off where the role may; returns how to undo it. */
async function quietStatementLog(c: pg.Client, what: string, log?: Logger): Promise<() => Promise<void>> {
  const r = await c.query<{ name: string; value: string | null }>(
    `SELECT name, current_setting(name, true) AS value FROM unnest(ARRAY['log_statement', 'log_min_duration_statement', 'pgaudit.log']) AS name`,
  );
  const before = new Map(r.rows.map((x) => [x.name, x.value]));
  const quiet: Record<string, string> = { log_statement: 'none', log_min_duration_statement: '-1', 'pgaudit.log': 'none' };
  const changed: string[] = [];
  const loud: string[] = [];
  for (const [name, value] of Object.entries(quiet)) {
    const was = before.get(name);
    if (was === null || was === undefined || was === value) continue;
    try {
      await c.query('SELECT set_config($1, $2, false)', [name, value]);
      changed.push(name);
    } catch {
      // Only a superuser may change these (RDS's rds_superuser may not): say what will log.
      if (name === 'log_statement' && was !== 'all') continue;
      loud.push(`${name} = ${was}`);
    }
  }
  if (loud.length) log?.warn(`the target's ${loud.join(', ')} logs statements with their parameters, and this role cannot turn that off for its session: ${what} may appear in the target's server log — switch it off for the migration, or connect as a superuser`);
  return async () => {
    for (const name of changed) await c.query('SELECT set_config($1, $2, false)', [name, before.get(name)!]).catch(() => {});
  };
}

export async function setSubscriptionEnabled(c: pg.Client, name: string, enabled: boolean): Promise<void> {
  if (await subscriptionExists(c, name)) await c.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} ${enabled ? 'ENABLE' : 'DISABLE'}`);
}

/** Drop the subscription but not the source's slot (teardown drops that on the source itself). */
export async function dropSubscription(c: pg.Client, name: string): Promise<void> {
  if (!(await subscriptionExists(c, name))) return;
  noteChange(`subscription ${name} dropped`);
  await c.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE`);
  await c.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} SET (slot_name = NONE)`);
  await c.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
}

/**
 * Apply and table-sync errors a subscription has recorded (pg_stat_subscription_stats, PostgreSQL
 * 15+; null before, or when the subscription has no statistics row).
 */
export async function subscriptionErrorCount(c: pg.Client, subscription: string): Promise<number | null> {
  const r = await c.query<{ n: string }>(`SELECT (apply_error_count + sync_error_count)::text AS n FROM pg_stat_subscription_stats WHERE subname = $1`, [subscription]);
  return r.rows[0] ? Number(r.rows[0].n) : null;
}

/** Acknowledge a subscription's recorded errors: its counters start again from zero. */
export async function resetSubscriptionErrors(c: pg.Client, subscription: string): Promise<void> {
  await c.query(`SELECT pg_stat_reset_subscription_stats(oid) FROM pg_subscription WHERE subname = $1`, [subscription]);
}

export interface SlotState {
  slot: string;
  exists: boolean;
  active: boolean;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  walStatus: string | null;
  currentLsn: string;
  /** Bytes of WAL the slot keeps on the source (current − restart). */
  retainedBytes: number | null;
  /** Bytes not yet confirmed by the consumer (current − confirmed_flush). */
  lagBytes: number | null;
  /** WAL that may still be written before the slot is invalidated (max_slot_wal_keep_size), PG 13+. */
  safeWalBytes: number | null;
  /** max_slot_wal_keep_size in bytes; null when unlimited. */
  keepLimitBytes: number | null;
}

export async function slotState(c: pg.Client, slot: string, versionNum: number): Promise<SlotState> {
  const walStatus = versionNum >= 130000 ? 'wal_status' : 'NULL::text';
  const safe = versionNum >= 130000 ? 'safe_wal_size' : 'NULL::bigint';
  const keep = versionNum >= 130000 ? `(SELECT CASE WHEN setting::bigint < 0 THEN NULL ELSE setting::bigint * 1024 * 1024 END FROM pg_settings WHERE name = 'max_slot_wal_keep_size')` : 'NULL::bigint';
  const r = await c.query(
    `SELECT pg_current_wal_lsn()::text AS current_lsn, s.active, s.confirmed_flush_lsn::text AS confirmed, s.restart_lsn::text AS restart,
            ${walStatus} AS wal_status,
            pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint AS retained,
            pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag,
            ${safe} AS safe, ${keep} AS keep
       FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`,
    [slot],
  );
  const row = r.rows[0];
  return {
    slot,
    exists: row.confirmed !== null || row.restart !== null || row.active !== null,
    active: row.active === true,
    confirmedFlushLsn: row.confirmed,
    restartLsn: row.restart,
    walStatus: row.wal_status,
    currentLsn: row.current_lsn,
    retainedBytes: row.retained === null ? null : Number(row.retained),
    lagBytes: row.lag === null ? null : Math.max(0, Number(row.lag)),
    safeWalBytes: row.safe === null ? null : Number(row.safe),
    keepLimitBytes: row.keep === null ? null : Number(row.keep),
  };
}

/** Per-table state of a subscription (i init, d copying, s synced, r ready). */
export async function tableSyncStates(c: pg.Client, subscription: string): Promise<Record<string, number>> {
  const r = await c.query<{ state: string; n: number }>(
    `SELECT sr.srsubstate::text AS state, count(*)::int AS n FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid
      WHERE s.subname = $1 GROUP BY 1`,
    [subscription],
  );
  return Object.fromEntries(r.rows.map((x) => [({ i: 'init', d: 'copying', f: 'finished copy', s: 'synced', r: 'ready' } as Record<string, string>)[x.state] ?? x.state, x.n]));
}

export interface SubscriptionState {
  exists: boolean;
  enabled: boolean;
  workerRunning: boolean;
  receivedLsn: string | null;
  latestEndLsn: string | null;
  lastMessageAt: Date | null;
}

export async function subscriptionState(c: pg.Client, name: string): Promise<SubscriptionState> {
  const r = await c.query(
    `SELECT s.subenabled AS enabled, st.pid, st.received_lsn::text AS received, st.latest_end_lsn::text AS latest_end, st.last_msg_receipt_time
       FROM pg_subscription s
       LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  );
  const row = r.rows[0];
  if (!row) return { exists: false, enabled: false, workerRunning: false, receivedLsn: null, latestEndLsn: null, lastMessageAt: null };
  return {
    exists: true,
    enabled: row.enabled,
    workerRunning: row.pid !== null,
    receivedLsn: row.received,
    latestEndLsn: row.latest_end,
    lastMessageAt: row.last_msg_receipt_time,
  };
}

/**
 * Set a table's replica identity on the source (cdc.replicaIdentityFull consent, and teardown
 * putting it back). ALTER TABLE takes a lock that queues the application's writes behind it while
 * it waits, so it waits at most two seconds at a time and tries again a few times, rather than
 * stalling the application behind a long transaction.
 */
export async function setReplicaIdentity(c: pg.Client, table: QualifiedName, identity: 'full' | 'default' | 'nothing' | { index: string }, signal?: AbortSignal): Promise<void> {
  const clause = typeof identity === 'string' ? identity.toUpperCase() : `USING INDEX ${quoteIdent(identity.index)}`;
  noteChange(`replica identity of ${qualify(table)} on the source`);
  for (let attempt = 1; ; attempt++) {
    await c.query('BEGIN');
    try {
      await c.query(`SET LOCAL lock_timeout = '2s'`);
      await c.query(`ALTER TABLE ${qualify(table)} REPLICA IDENTITY ${clause}`);
      await c.query('COMMIT');
      return;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      if ((err as { code?: string }).code !== '55P03' || attempt === 5) throw err;
      await sleep(1000 * attempt, signal);
    }
  }
}

/** A table's replica identity as ALTER TABLE … REPLICA IDENTITY would set it again. */
export async function replicaIdentityOf(c: pg.Client, table: QualifiedName): Promise<'full' | 'default' | 'nothing' | { index: string }> {
  const r = await c.query<{ ident: string; idx: string | null }>(
    `SELECT c.relreplident::text AS ident, (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident) AS idx
       FROM pg_class c WHERE c.oid = $1::regclass`,
    [qualify(table)],
  );
  const row = r.rows[0];
  if (row.ident === 'i' && row.idx) return { index: row.idx };
  return row.ident === 'f' ? 'full' : row.ident === 'n' ? 'nothing' : 'default';
}
