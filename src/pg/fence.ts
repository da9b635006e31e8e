import type pg from 'pg';
import { gateRefused } from '../core/errors.js';
import { quoteIdent } from '../core/ident.js';

/**
 * Write fences on the source. A fence makes new transactions of the application read-only and
 * ends the sessions that were already open, then confirms that no session that could still write
 * is left. Each fence remembers what it changed so that undo restores exactly the prior settings.
 *
 *   roles:    ALTER ROLE … SET default_transaction_read_only = on for every listed role, and
 *             terminate every session of those roles (not only the one in the plan's URL).
 *   database: the same at database level, terminating every client session but pgshift's own.
 *
 * A session can still run SET default_transaction_read_only = off; applications do not, and the
 * pgbouncer strategy (queueing at the pooler) is the answer for the ones that might.
 */
export interface FenceState {
  strategy: 'roles' | 'database';
  roles: string[];
  database: string;
  /** Role → its previous role-wide default_transaction_read_only setting (null: none). */
  previous: Record<string, string | null>;
  fencedAt: string;
  terminated: number;
}

export async function checkFenceable(c: pg.Client, strategy: 'roles' | 'database', roles: string[]): Promise<void> {
  if (strategy !== 'roles') return;
  const r = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [roles]);
  const found = new Set(r.rows.map((x) => x.rolname));
  const missing = roles.filter((x) => !found.has(x));
  if (missing.length) throw gateRefused('fence.role', `cutover.roles: role ${missing[0]} does not exist on the source`, 'list the roles the application writes with');
  const me = await c.query<{ u: string }>('SELECT current_user AS u');
  if (roles.includes(me.rows[0].u)) {
    throw gateRefused('fence.self', `cutover.roles includes ${me.rows[0].u}, the role pgshift connects as`, 'connect pgshift with a separate administrative role');
  }
}

async function previousRoleSetting(c: pg.Client, role: string): Promise<string | null> {
  const r = await c.query<{ cfg: string[] }>(
    `SELECT s.setconfig AS cfg FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0`,
    [role],
  );
  const entry = r.rows[0]?.cfg?.find((x) => x.startsWith('default_transaction_read_only='));
  return entry ? entry.split('=')[1] : null;
}

export async function applyFence(c: pg.Client, strategy: 'roles' | 'database', roles: string[]): Promise<FenceState> {
  const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  const fencedAt = (await c.query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0].t;
  const previous: Record<string, string | null> = {};
  if (strategy === 'roles') {
    for (const role of roles) {
      previous[role] = await previousRoleSetting(c, role);
      await c.query(`ALTER ROLE ${quoteIdent(role)} SET default_transaction_read_only = on`);
    }
  } else {
    await c.query(`ALTER DATABASE ${quoteIdent(db)} SET default_transaction_read_only = on`);
  }
  const state: FenceState = { strategy, roles, database: db, previous, fencedAt, terminated: 0 };
  state.terminated = await terminateWriters(c, state);
  return state;
}

/**
 * End every session that began before the fence (and so may not be read-only), repeating until
 * none is left; sessions that start after it are read-only by default.
 */
export async function terminateWriters(c: pg.Client, f: FenceState, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let total = 0;
  for (;;) {
    const r = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND datname = $1
          AND backend_start <= $2::timestamptz
          AND (CASE WHEN $3 = 'roles' THEN usename = ANY($4) ELSE coalesce(application_name, '') NOT LIKE 'pgshift%' END)`,
      [f.database, f.fencedAt, f.strategy, f.roles],
    );
    if (r.rowCount === 0) return total;
    for (const row of r.rows) {
      await c.query('SELECT pg_terminate_backend($1)', [row.pid]);
      total++;
    }
    if (Date.now() > deadline) throw new Error(`${r.rowCount} session(s) survive termination`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

export async function liftFence(c: pg.Client, f: FenceState): Promise<void> {
  if (f.strategy === 'roles') {
    for (const role of f.roles) {
      const prev = f.previous[role];
      await c.query(
        prev === null || prev === undefined
          ? `ALTER ROLE ${quoteIdent(role)} RESET default_transaction_read_only`
          : `ALTER ROLE ${quoteIdent(role)} SET default_transaction_read_only = ${prev === 'on' ? 'on' : 'off'}`,
      );
    }
  } else {
    await c.query(`ALTER DATABASE ${quoteIdent(f.database)} RESET default_transaction_read_only`);
  }
}
