import type pg from 'pg';
import { qualify, quoteIdent, quoteLiteral, type QualifiedName } from '../core/ident.js';
import { S } from '../journal/journal.js';

/**
 * Native logical replication objects: publications on the source, subscriptions on the target,
 * and the heartbeat tables that give lag in seconds and the cut-over barrier. Every statement is
 * idempotent so that a re-run after a failure converges.
 */

export async function ensureHeartbeat(c: pg.Client, table: string, group: string): Promise<void> {
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${S}.${quoteIdent(table)} (
       group_name text PRIMARY KEY,
       beat_at timestamptz NOT NULL DEFAULT now(),
       seq bigint NOT NULL DEFAULT 0,
       marker text)`,
  );
  await c.query(`INSERT INTO ${S}.${quoteIdent(table)} (group_name) VALUES ($1) ON CONFLICT DO NOTHING`, [group]);
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
  if (await publicationExists(c, name)) return;
  const control = [heartbeat, ...(ddlQueue ? [ddlQueue] : [])].map((t) => `${S}.${quoteIdent(t)}`);
  const list = [...tables.map(qualify), ...control].join(', ');
  await c.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${list}`);
}

/** Drop the publication if it exists; true when it did. */
export async function dropPublication(c: pg.Client, name: string): Promise<boolean> {
  if (!(await publicationExists(c, name))) return false;
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
 * the snapshot's LSN.
 */
export async function createSubscription(c: pg.Client, spec: SubscriptionSpec): Promise<void> {
  if (!(await subscriptionExists(c, spec.name))) {
    const options = [`create_slot = false`, `slot_name = ${quoteLiteral(spec.slot)}`, `copy_data = false`, `enabled = false`];
    if (spec.streaming) options.push('streaming = on');
    await c.query(
      `CREATE SUBSCRIPTION ${quoteIdent(spec.name)} CONNECTION ${quoteLiteral(spec.conninfo)} PUBLICATION ${quoteIdent(spec.publication)} WITH (${options.join(', ')})`,
    );
    if (spec.startLsn) {
      await c.query(`SELECT pg_replication_origin_advance('pg_' || oid, $2::pg_lsn) FROM pg_subscription WHERE subname = $1`, [spec.name, spec.startLsn]);
    }
  } else {
    // A re-run may bring a new way to reach the source (host moved, proxy): take it.
    const current = await c.query<{ conninfo: string }>('SELECT subconninfo AS conninfo FROM pg_subscription WHERE subname = $1', [spec.name]);
    if (current.rows[0]?.conninfo !== spec.conninfo) await c.query(`ALTER SUBSCRIPTION ${quoteIdent(spec.name)} CONNECTION ${quoteLiteral(spec.conninfo)}`);
  }
  await c.query(`ALTER SUBSCRIPTION ${quoteIdent(spec.name)} ENABLE`);
}

export async function setSubscriptionEnabled(c: pg.Client, name: string, enabled: boolean): Promise<void> {
  if (await subscriptionExists(c, name)) await c.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} ${enabled ? 'ENABLE' : 'DISABLE'}`);
}

/** Drop the subscription but not the source's slot (teardown drops that on the source itself). */
export async function dropSubscription(c: pg.Client, name: string): Promise<void> {
  if (!(await subscriptionExists(c, name))) return;
  await c.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE`);
  await c.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} SET (slot_name = NONE)`);
  await c.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
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
