import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { parseServerUrl, type ServerAddress } from '../config/url.js';
import { failure } from '../core/errors.js';

/**
 * PgBouncer as the write fence and the switch: PAUSE makes the pooler wait for in-flight
 * transactions and then hold every new query, so clients see a pause rather than errors; the
 * database entry is repointed in pgbouncer.ini and RELOADed; RESUME releases the queue onto the
 * new server. The admin console speaks the simple query protocol only, which is what pg uses for
 * parameterless queries.
 */
export class PgBouncer {
  private constructor(private readonly c: pg.Client) {}

  static async connect(adminUrl: string): Promise<PgBouncer> {
    const a = parseServerUrl(adminUrl);
    const c = new pg.Client({ host: a.host, port: a.port, user: a.user, password: a.password, database: a.database || 'pgbouncer' });
    c.on('error', () => {});
    try {
      await c.connect();
    } catch (err) {
      throw failure('pgbouncer.connect', `cannot reach the PgBouncer admin console at ${a.host}:${a.port}: ${(err as Error).message}`, 'check cutover.pgbouncer.adminUrl (user must be in admin_users)');
    }
    return new PgBouncer(c);
  }

  private static ident(db: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(db)) throw failure('pgbouncer.database', `unsupported PgBouncer database name ${JSON.stringify(db)}`);
    return db;
  }

  /**
   * PAUSE waits until every server connection is released. PgBouncer has no way to cancel it;
   * when `signal` aborts the wait ends (the caller RESUMEs: the PAUSE may still take effect).
   */
  async pause(db: string, signal?: AbortSignal): Promise<void> {
    const pausing = this.c.query(`PAUSE ${PgBouncer.ident(db)}`);
    if (!signal) return void (await pausing);
    pausing.catch(() => {});
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      pausing.then(() => resolve(), reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async resume(db: string): Promise<void> {
    try {
      await this.c.query(`RESUME ${PgBouncer.ident(db)}`);
    } catch (err) {
      // RESUME of a database that is not paused is an error we can ignore (idempotent undo).
      if (!/not paused/i.test((err as Error).message)) throw err;
    }
  }

  async reload(): Promise<void> {
    await this.c.query('RELOAD');
  }

  async close(): Promise<void> {
    await this.c.end().catch(() => {});
  }
}

/** The [databases] line of `db` in pgbouncer.ini as it is now. */
export function poolerLine(file: string, db: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines[databaseLineIndex(file, lines, db)];
}

function databaseLineIndex(file: string, lines: string[], db: string): number {
  let section = '';
  let index = -1;
  lines.forEach((line, i) => {
    const s = /^\s*\[([^\]]+)\]/.exec(line);
    if (s) section = s[1].trim().toLowerCase();
    else if (section === 'databases' && new RegExp(`^\\s*${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=`).test(line)) index = i;
  });
  if (index === -1) throw failure('pgbouncer.config', `${file} has no [databases] entry for ${db}`, 'add it, or fix cutover.pgbouncer.database');
  return index;
}

/**
 * Point a [databases] entry of pgbouncer.ini at another server, keeping its other options.
 * Returns the previous line so that a rollback can restore it.
 */
export function repointConfig(file: string, db: string, to: Pick<ServerAddress, 'host' | 'port' | 'database'>): { previous: string; next: string } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = databaseLineIndex(file, lines, db);
  const previous = lines[index];
  const kept = optionsOf(previous)
    .filter(([key]) => key !== 'host' && key !== 'port' && key !== 'dbname')
    .map(([key, value]) => `${key}=${value}`);
  const next = `${db} = host=${to.host} port=${to.port} dbname=${to.database}${kept.length ? ` ${kept.join(' ')}` : ''}`;
  lines[index] = next;
  writeFileSync(file, lines.join('\n'));
  return { previous, next };
}

/**
 * Point a database entry back to `previous`, its line before the cut-over as the journal kept it.
 * The journal masks secrets (password=***), so an option whose journaled value is masked keeps the
 * value the file has now: the cut-over's repoint changed only host, port and dbname.
 */
export function restoreConfigLine(file: string, db: string, previous: string): void {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = databaseLineIndex(file, lines, db);
  const now = new Map(optionsOf(lines[index]));
  const masked = (value: string) => value.replace(/^'(.*)'$/, '$1') === '***';
  const restored = optionsOf(previous).map(([key, value]) => `${key}=${masked(value) && now.has(key) ? now.get(key) : value}`);
  lines[index] = `${db} = ${restored.join(' ')}`;
  writeFileSync(file, lines.join('\n'));
}

/** The key=value options of a [databases] line, in order. */
function optionsOf(line: string): Array<[string, string]> {
  return line
    .slice(line.indexOf('=') + 1)
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)]);
}
