import { accessSync, chownSync, constants, fchmodSync, closeSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { parseServerUrl, type ServerAddress } from '../config/url.js';
import { failure, gateRefused } from '../core/errors.js';
import { findDatabaseEntry, repointedLine, restoredLine, type DatabaseEntry } from '../core/pgbouncer-ini.js';

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

/** The [databases] entry of `db` in pgbouncer.ini, read as PgBouncer reads it; refused (exit 3) when there is none pgshift can rewrite. */
function readEntry(file: string, db: string): { lines: string[]; entry: DatabaseEntry } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const entry = findDatabaseEntry(lines, db);
  if (typeof entry === 'string') throw gateRefused('pgbouncer.config', `${file}: ${entry}`, 'give the database its own [databases] line (name = host=... port=... dbname=...), or fix cutover.pgbouncer.database');
  return { lines, entry };
}

/** Refused (exit 3) unless `db` has an entry in `file` that the switch can repoint; `previous`, when given, must be readable too (a rollback restores it). */
export function requirePoolerEntry(file: string, db: string, previous?: string): void {
  try {
    accessSync(file, constants.R_OK | constants.W_OK);
  } catch {
    throw gateRefused('pgbouncer.config', `cutover.pgbouncer.configFile ${file} cannot be read and written by pgshift`, 'run pgshift where it can write that file, or leave configFile out and repoint by other means');
  }
  const { lines, entry } = readEntry(file, db);
  if (previous !== undefined) restoredLine(lines, entry, db, previous);
}

/** The [databases] line of `db` in pgbouncer.ini as it is now. */
export function poolerLine(file: string, db: string): string {
  const { lines, entry } = readEntry(file, db);
  return lines[entry.index].replace(/\r$/, '');
}

/**
 * Point a [databases] entry of pgbouncer.ini at another server, keeping its other options as
 * written. Returns the previous line so that a rollback can restore it.
 */
export function repointConfig(file: string, db: string, to: Pick<ServerAddress, 'host' | 'port' | 'database'>): { previous: string; next: string } {
  const { lines, entry } = readEntry(file, db);
  const previous = lines[entry.index].replace(/\r$/, '');
  lines[entry.index] = repointedLine(lines, entry, db, to);
  rewriteFile(file, lines.join('\n'));
  return { previous, next: lines[entry.index].replace(/\r$/, '') };
}

/** Point a database entry back to `previous`, its line before the cut-over as the journal kept it (secrets masked). */
export function restoreConfigLine(file: string, db: string, previous: string): void {
  const { lines, entry } = readEntry(file, db);
  lines[entry.index] = restoredLine(lines, entry, db, previous);
  rewriteFile(file, lines.join('\n'));
}

/**
 * Replace the file's content so that a reader (PgBouncer's RELOAD, or its restart) sees the old
 * file or the new one, never a half-written one, even if pgshift dies mid-write: the new text
 * goes to a file beside it, with the same mode and owner, flushed, then renamed over it. Where
 * pgshift may write the file but not its directory, the file is rewritten in place.
 */
function rewriteFile(link: string, text: string): void {
  // A symlinked config stays a symlink: its target is what gets replaced.
  const file = realpathSync(link);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.pgshift-${process.pid}`);
  const st = statSync(file);
  let fd: number;
  try {
    fd = openSync(tmp, 'w', st.mode & 0o7777);
  } catch {
    writeFileSync(file, text);
    return;
  }
  try {
    try {
      fchmodSync(fd, st.mode & 0o7777); // open's mode passes through the umask
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (process.getuid?.() === 0) chownSync(tmp, st.uid, st.gid);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
