import type pg from 'pg';
import { connect, type Endpoint } from './connect.js';
import { pollUntil } from '../core/wait.js';

/**
 * Query cancellation: a budget that runs out or an interrupt must stop the statement a session is
 * running on the server, not only stop waiting for it. pg_cancel_backend from a short-lived second
 * session of the same role cancels it (PostgreSQL allows that for one's own sessions); the waiting
 * call then fails with SQLSTATE 57014 and the session can roll back and be used again.
 */
function backendPid(c: pg.Client): number | undefined {
  return (c as unknown as { processID?: number | null }).processID ?? undefined;
}

export async function cancelRunning(ep: Endpoint, clients: pg.Client[]): Promise<void> {
  const pids = clients.map(backendPid).filter((p): p is number => p !== undefined);
  if (!pids.length) return;
  const c = await connect(ep, { applicationName: 'pgshift cancel', statementTimeoutMs: 5_000 });
  try {
    await c.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1) AND state = 'active'`, [pids]);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Once `signal` aborts, cancel what these sessions run. Returns the function that stops watching. */
export function cancelOnAbort(signal: AbortSignal, sides: Array<{ ep: Endpoint; clients: pg.Client[] }>): () => void {
  const onAbort = () => {
    for (const side of sides) void cancelRunning(side.ep, side.clients).catch(() => {});
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** End one server session (a fenced writer, a walsender holding a slot): true when the server took the request. */
export async function endSession(c: pg.Client, pid: number): Promise<boolean> {
  const r = await c.query<{ ended: boolean }>('SELECT pg_terminate_backend($1) AS ended', [pid]);
  return r.rows[0]?.ended === true;
}

/**
 * End the sessions of this database named by application_name (a dead run's leftovers) and wait,
 * up to 30 s, until the server has let them go.
 */
export async function endSessionsNamed(c: pg.Client, names: string[], signal?: AbortSignal): Promise<void> {
  const others = `FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY($1) AND pid <> pg_backend_pid()`;
  const ended = await c.query(`SELECT pg_terminate_backend(pid) ${others}`, [names]);
  if (!ended.rowCount) return;
  await pollUntil(async () => ((await c.query<{ n: number }>(`SELECT count(*)::int AS n ${others}`, [names])).rows[0].n === 0 ? true : undefined), { everyMs: 100, timeoutMs: 30_000, signal });
}
