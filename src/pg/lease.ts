import type pg from 'pg';
import { pollUntil } from '../core/wait.js';

/**
 * The cut-over lease: a session-level advisory lock on the target, held by the journal session of
 * the process that cuts over. It ends with that session (a killed process included), so whoever
 * takes it next knows no live process is inside the window — and a process whose journal session
 * was lost cannot journal the decision to switch any more.
 */
const KEY = 'pgshift.cutover';

export async function takeCutoverLease(c: pg.Client, migration: string, waitMs: number): Promise<boolean> {
  const got = await pollUntil(
    async () => ((await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', [KEY, migration])).rows[0].ok ? true : undefined),
    { everyMs: 200, timeoutMs: waitMs },
  );
  return got === true;
}

export async function releaseCutoverLease(c: pg.Client, migration: string): Promise<void> {
  await c.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', [KEY, migration]).catch(() => {});
}

/**
 * End the session that holds the lease. Only for a recovery that knows the cut-over's process is
 * dead (its watchdog saw it go): that process's journal session may linger on the server while a
 * statement it had sent waits for a lock, and it would keep the lease until the server notices.
 */
export async function endLeaseHolder(c: pg.Client, migration: string): Promise<number> {
  const r = await c.query(
    `SELECT pg_terminate_backend(pid) FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND pid <> pg_backend_pid()
        AND classid::bigint = (hashtext($1)::bigint & 4294967295) AND objid::bigint = (hashtext($2)::bigint & 4294967295)`,
    [KEY, migration],
  );
  return r.rowCount ?? 0;
}

/**
 * The full load's claim on a group: a session-level advisory lock keyed by migration and group,
 * held until the session ends (a kill -9 of its process included). False when another session
 * holds it.
 */
export async function tryGroupLock(c: pg.Client, migration: string, group: string): Promise<boolean> {
  const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', [migration, group]);
  return r.rows[0].ok;
}

/** Whether no session holds a group's lock (asked without keeping it). */
export async function groupLockFree(c: pg.Client, migration: string, group: string): Promise<boolean> {
  if (!(await tryGroupLock(c, migration, group))) return false;
  await c.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', [migration, group]);
  return true;
}

/** Serialise a once-only step across concurrent jobs (a workflow matrix) with an advisory lock. */
export async function withStepLock<T>(c: pg.Client, step: string, fn: () => Promise<T>): Promise<T> {
  await c.query('SELECT pg_advisory_lock(hashtext($1))', [step]);
  try {
    return await fn();
  } finally {
    await c.query('SELECT pg_advisory_unlock(hashtext($1))', [step]).catch(() => {});
  }
}
