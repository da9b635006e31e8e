import type pg from 'pg';
import { noteChange } from '../core/changes.js';
import { failure, gateRefused } from '../core/errors.js';
import { displayName, qualify, quoteIdent, type QualifiedName } from '../core/ident.js';
import { sleep } from '../core/wait.js';
import { cancelOnAbort, endSession } from './cancel.js';
import { connect, majorOf, type Endpoint } from './connect.js';

/**
 * Write fences on the source, in two kinds that differ in what happens when pgshift dies.
 *
 * The window fence (WindowFence) holds the cut-over's write-unavailable window: one pgshift
 * session takes EXCLUSIVE locks on every migrated table inside an open transaction. Readers go on;
 * every INSERT, UPDATE, DELETE, TRUNCATE, SELECT … FOR UPDATE and DDL on those tables waits —
 * whatever role or connection it comes from. The fence lives exactly as long as that transaction:
 * if pgshift is killed, the kernel closes its socket and the server ends the session and releases
 * the locks at once; if the machine or the network is lost, idle_in_transaction_session_timeout
 * ends it within the guard time (pgshift pings the session well inside it while it is alive). So a
 * window that pgshift cannot finish ends by itself and the application writes again.
 *
 * The seal (applyFence/liftFence) is what keeps the source read-only after the switch, when
 * pgshift has gone:
 *   roles:    ALTER ROLE … SET default_transaction_read_only = on for every listed role, and
 *             terminate every session of those roles (not only the one in the plan's URL).
 *   database: the same at database level, terminating every client session but pgshift's own.
 * It is applied only once the switch is decided, while the window fence still holds, so that no
 * write can reach the source between the barrier and the moment the source is sealed. Each seal
 * remembers what it changed so that undo restores exactly the prior settings. A session can still
 * run SET default_transaction_read_only = off; applications do not, and the pgbouncer strategy
 * (queueing at the pooler) is the answer for the ones that might.
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

/**
 * Refused (exit 3) before the window when the seal could not be applied after the decision:
 * missing roles, the role pgshift connects as among them, or missing privileges to alter the
 * roles (or the database) and to end other roles' sessions.
 */
export async function checkFenceable(c: pg.Client, strategy: 'roles' | 'database', roles: string[]): Promise<void> {
  const me = (
    await c.query<{ u: string; superuser: boolean; createrole: boolean; signal: boolean; owner: boolean; v: string }>(
      `SELECT current_user AS u, r.rolsuper AS superuser, r.rolcreaterole AS createrole,
              pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signal,
              pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') AS owner,
              current_setting('server_version_num') AS v
         FROM pg_roles r WHERE r.rolname = current_user`,
    )
  ).rows[0];
  if (!me.superuser && !me.signal) {
    throw gateRefused('fence.privilege', `the role ${me.u} cannot end other roles' sessions, which the fence must do`, `GRANT pg_signal_backend TO ${me.u} (or connect pgshift as a superuser / rds_superuser)`);
  }
  if (strategy === 'database') {
    if (!me.superuser && !me.owner) throw gateRefused('fence.privilege', `the role ${me.u} cannot ALTER DATABASE (it does not own it)`, 'connect pgshift as the database owner or a superuser, or use fence: roles');
    return;
  }
  const r = await c.query<{ rolname: string; rolsuper: boolean; admin: boolean }>(
    `SELECT rolname, rolsuper, pg_has_role(current_user, oid, 'USAGE WITH ADMIN OPTION') AS admin FROM pg_roles WHERE rolname = ANY($1)`,
    [roles],
  );
  const found = new Map(r.rows.map((x) => [x.rolname, x]));
  const missing = roles.filter((x) => !found.has(x));
  if (missing.length) throw gateRefused('fence.role', `cutover.roles: role ${missing[0]} does not exist on the source`, 'list the roles the application writes with');
  if (roles.includes(me.u)) {
    throw gateRefused('fence.self', `cutover.roles includes ${me.u}, the role pgshift connects as`, 'connect pgshift with a separate administrative role');
  }
  if (me.superuser) return;
  // CREATEROLE may alter roles that are not superusers; from PostgreSQL 16 only those it administers.
  const newRules = majorOf(Number(me.v)) >= 16;
  const cannot = roles.find((role) => {
    const fenced = found.get(role)!;
    return fenced.rolsuper || !me.createrole || (newRules && !fenced.admin);
  });
  if (cannot) {
    throw gateRefused('fence.privilege', `the role ${me.u} cannot ALTER ROLE ${cannot}, which the fence must do`, `connect pgshift as a superuser (RDS: rds_superuser), or give ${me.u} CREATEROLE${newRules ? ` and ADMIN OPTION on ${cannot}` : ''}`);
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

/** What a seal will change, read before it is applied (so that it can be journaled first). */
export async function planSeal(c: pg.Client, strategy: 'roles' | 'database', roles: string[]): Promise<FenceState> {
  const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  const previous: Record<string, string | null> = {};
  if (strategy === 'roles') for (const role of roles) previous[role] = await previousRoleSetting(c, role);
  return { strategy, roles, database: db, previous, fencedAt: '', terminated: 0 };
}

/** Apply a planned seal: the setting, then every session that began before it ends. Idempotent. */
export async function applyFence(c: pg.Client, planned: FenceState): Promise<FenceState> {
  noteChange(`${planned.strategy === 'roles' ? `roles ${planned.roles.join(', ')}` : `database ${planned.database}`} made read-only`);
  const fencedAt = (await c.query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0].t;
  if (planned.strategy === 'roles') {
    for (const role of planned.roles) await c.query(`ALTER ROLE ${quoteIdent(role)} SET default_transaction_read_only = on`);
  } else {
    await c.query(`ALTER DATABASE ${quoteIdent(planned.database)} SET default_transaction_read_only = on`);
  }
  const state: FenceState = { ...planned, fencedAt, terminated: 0 };
  state.terminated = await terminateWriters(c, state);
  return state;
}

/**
 * End every session that began before the seal (and so may not be read-only), repeating until
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
      await endSession(c, row.pid);
      total++;
    }
    if (Date.now() > deadline) throw failure('fence.terminate', `${r.rowCount} session(s) of the fenced ${f.strategy === 'roles' ? 'roles' : 'database'} survive termination`, 'end them by hand (pg_terminate_backend), then run pgshift cutover again');
    await sleep(20);
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

/** How many lock-table entries one transaction may take before the server runs out of them. */
export async function lockCapacity(c: pg.Client): Promise<number> {
  const r = await c.query<{ n: string }>(
    `SELECT (current_setting('max_locks_per_transaction')::bigint * (current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint))::text AS n`,
  );
  return Number(r.rows[0].n);
}

export interface WindowFenceOptions {
  /** How long one attempt may wait for a table's lock (the application waits behind it meanwhile). */
  lockTimeoutMs: number;
  /** Attempts before giving up (each waits at most lockTimeoutMs). */
  attempts: number;
  /** The server ends the fence this long after pgshift stops answering. */
  guardMs: number;
  signal?: AbortSignal;
}

/** The session-bound lock fence of the cut-over window (see the top of this file). */
export class WindowFence {
  private ping: NodeJS.Timeout | undefined;
  private lostReason: string | undefined;

  private constructor(
    private readonly session: pg.Client,
    readonly pid: number,
    readonly tables: number,
  ) {}

  /**
   * Lock every table in EXCLUSIVE mode. Each attempt waits at most lockTimeoutMs for a lock (a long
   * transaction holding one makes the application wait behind our request for that long, no more),
   * then rolls back and tries again; the last failure names the session in the way.
   */
  static async acquire(ep: Endpoint, tables: QualifiedName[], o: WindowFenceOptions): Promise<WindowFence> {
    const session = await connect(ep, { applicationName: 'pgshift fence' });
    // An interrupt or a budget cancels a LOCK that is waiting (the application waits behind it).
    const stopCancelling = o.signal ? cancelOnAbort(o.signal, [{ ep, clients: [session] }]) : () => {};
    try {
      const pid = (await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // The dead-man switch: a fence whose owner stops answering ends on the server's own clock.
      await session.query(`SELECT set_config('idle_in_transaction_session_timeout', $1, false)`, [`${Math.max(1000, Math.round(o.guardMs))}ms`]);
      for (let attempt = 1; ; attempt++) {
        if (o.signal?.aborted) throw o.signal.reason;
        await session.query('BEGIN');
        try {
          await session.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.round(o.lockTimeoutMs)}ms`]);
          // In batches, so that a statement stays of a sane size with thousands of tables.
          for (let i = 0; i < tables.length; i += 200) {
            await session.query(`LOCK TABLE ${tables.slice(i, i + 200).map(qualify).join(', ')} IN EXCLUSIVE MODE`);
          }
          const fence = new WindowFence(session, pid, tables.length);
          fence.keepAlive(o.guardMs);
          return fence;
        } catch (err) {
          await session.query('ROLLBACK').catch(() => {});
          // 55P03: a lock not had within lock_timeout; 40P01: an application transaction that had
          // locked one table waited for another we held (the server ended ours; theirs goes on).
          const code = (err as { code?: string }).code;
          const retryable = code === '55P03' || code === '40P01';
          if (!retryable || attempt >= o.attempts) {
            if (retryable) {
              const blockers = await session.query<{ who: string }>(
                `SELECT format('pid %s (%s, %s, %s s in %s)', pid, usename, coalesce(nullif(application_name, ''), 'no application_name'), extract(epoch FROM now() - xact_start)::int, state) AS who
                   FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND datname = current_database()
                  ORDER BY xact_start LIMIT 1`,
              );
              throw failure(
                'cutover.fence-lock',
                `the window fence could not lock the migrated tables in ${o.attempts} attempt(s) of ${o.lockTimeoutMs} ms${blockers.rows[0] ? `; the oldest open transaction is ${blockers.rows[0].who}` : ''}`,
                'end the long transaction (or wait for it), then run pgshift cutover again; raise cutover.lockTimeoutSeconds only if the application can wait that long',
                err,
              );
            }
            throw err;
          }
          await sleep(200 * attempt, o.signal);
        }
      }
    } catch (err) {
      await session.end().catch(() => {});
      throw o.signal?.aborted ? o.signal.reason : err;
    } finally {
      stopCancelling();
    }
  }

  /** A ping well inside the guard time keeps the server from ending the fence while pgshift lives. */
  private keepAlive(guardMs: number): void {
    this.ping = setInterval(() => {
      this.session.query('SELECT 1').catch((err: Error) => {
        this.lostReason ??= err.message;
      });
    }, Math.max(200, Math.floor(guardMs / 4)));
    this.ping.unref();
  }

  /**
   * Proof that the locks were held without a break from acquire to now: the transaction that took
   * them is still open (a session the server ended cannot come back). Checked before the switch
   * is decided: a fence lost on the way means writes may have reached the source after the barrier.
   */
  async requireHeld(): Promise<void> {
    const r = await this.session
      .query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND mode = 'ExclusiveLock' AND granted`)
      .catch((err: Error) => {
        this.lostReason ??= err.message;
        return undefined;
      });
    if (!r || r.rows[0].n < this.tables) {
      throw failure('cutover.fence-lost', `the window fence was lost (${this.lostReason ?? `${r?.rows[0].n ?? 0} of ${this.tables} locks held`}): writes may have reached the source after the barrier`, 'nothing was switched; run pgshift cutover again');
    }
  }

  /** End the fence: the transaction rolls back and its locks go. Idempotent. */
  async release(): Promise<void> {
    if (this.ping) clearInterval(this.ping);
    this.ping = undefined;
    await this.session.query('ROLLBACK').catch(() => {});
    await this.session.end().catch(() => {});
  }
}

/** The tables a window fence locks, as people read them (for logs). */
export function describeLocked(tables: QualifiedName[]): string {
  return tables.length <= 3 ? tables.map(displayName).join(', ') : `${tables.length} tables`;
}
