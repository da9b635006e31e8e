import { spawn, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { sql } from './servers.js';

/**
 * What the fault tests share: waiting for a state the test can see, running the CLI in its own
 * process group (as a runner starts it, so that the whole group can be killed), and measuring how
 * long until the application can write again.
 */
export async function until(what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`never reached: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function any(url: string, text: string, params: unknown[] = []): Promise<boolean> {
  return (await sql(url, text, params)).length > 0;
}

/** Time since `since` until the application role can write through each URL in turn (an insert into shop."Audit Log"). */
export async function writableAfter(urls: string[], since: number, withinMs: number): Promise<number> {
  for (const url of urls) {
    let last = '';
    await until(`a write through ${new URL(url).port} (last error: ${'${last}'})`, async () => {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000, query_timeout: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query(`INSERT INTO shop."Audit Log" ("Note") VALUES ('probe')`);
        return true;
      } catch (err) {
        last = (err as Error).message;
        return false;
      } finally {
        await c.end().catch(() => {});
      }
    }, withinMs).catch((err: Error) => {
      throw new Error(err.message.replace('${last}', last));
    });
  }
  return Date.now() - since;
}

export interface CliRun {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

/** The CLI as a child process in its own process group. */
export function runCli(args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, ['bin/pgshift.js', ...args], { env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}

/** A hold: a lock the test takes in an open transaction, so that pgshift waits behind it. */
export async function holdLocks(url: string, statements: string[]): Promise<pg.Client> {
  const lock = new pg.Client({ connectionString: url });
  lock.on('error', () => {});
  await lock.connect();
  await lock.query('BEGIN');
  for (const q of statements) await lock.query(q);
  return lock;
}
