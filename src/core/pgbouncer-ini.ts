import { gateRefused } from './errors.js';

/**
 * The [databases] entries of pgbouncer.ini, read the way PgBouncer reads them, so that the
 * cut-over can repoint one entry (and a rollback restore it) without disturbing anything else.
 *
 * An entry is `name = connstr`; the name may be double-quoted. The connstr is `key=value` pairs
 * separated by spaces, spaces allowed around `=`, and a value either bare (up to the next space)
 * or single-quoted with `''` standing for a quote (`connect_query='SET search_path = app'`).
 * Options pgshift does not change keep the exact text they were written with.
 */
export interface ConnstrOption {
  key: string;
  /** The value as PgBouncer sees it (unquoted). */
  value: string;
  /** The value as written in the file (quotes and all). */
  raw: string;
}

export interface DatabaseEntry {
  /** Index of the entry's line in the file's lines. */
  index: number;
  options: ConnstrOption[];
}

/** Why a connstr cannot be read, or its options in order. */
export function parseConnstr(text: string): ConnstrOption[] | string {
  const options: ConnstrOption[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  for (skipSpace(); i < text.length; skipSpace()) {
    const keyStart = i;
    while (i < text.length && text[i] !== '=' && !/\s/.test(text[i])) i++;
    const key = text.slice(keyStart, i);
    skipSpace();
    if (!key || text[i] !== '=') return `expected key=value at "${text.slice(keyStart, keyStart + 20)}"`;
    i++;
    skipSpace();
    const valueStart = i;
    let value = '';
    if (text[i] === "'") {
      for (i++; ; i++) {
        if (i >= text.length) return `unterminated quote in the value of ${key}`;
        if (text[i] === "'" && text[i + 1] === "'") value += text[i++];
        else if (text[i] === "'") break;
        else value += text[i];
      }
      i++;
    } else {
      while (i < text.length && !/\s/.test(text[i])) value += text[i++];
    }
    if (!value) return `empty value of ${key}`;
    options.push({ key, value, raw: text.slice(valueStart, i) });
  }
  return options;
}

/** A value written so that PgBouncer reads it back unchanged: quoted when it holds a space or a quote. */
export function connstrValue(value: string): string {
  return value === '' || /[\s']/.test(value) ? `'${value.replace(/'/g, "''")}'` : value;
}

const SECTION = /^\s*\[([^\]]+)\]/;

/** An entry line's name (unquoted) and connstr; undefined for comments, blank lines and lines without `=`. */
function splitEntry(line: string): { name: string; connstr: string } | undefined {
  const s = line.trimStart().replace(/\r$/, '');
  if (!s || s.startsWith(';') || s.startsWith('#')) return undefined;
  const m = /^(?:"((?:[^"]|"")*)"|([^=\s]+))\s*=(.*)$/.exec(s);
  if (!m) return undefined;
  return { name: m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2], connstr: m[3] };
}

/**
 * The entry of database `db` in the [databases] section, or why there is none that pgshift can
 * repoint. Later entries win, as in PgBouncer; the `*` fallback is not an entry of `db`.
 */
export function findDatabaseEntry(lines: string[], db: string): DatabaseEntry | string {
  let section = '';
  let found: DatabaseEntry | string | undefined;
  let fallback = false;
  lines.forEach((line, index) => {
    const s = SECTION.exec(line);
    if (s) section = s[1].trim().toLowerCase();
    else if (section === 'databases') {
      const entry = splitEntry(line);
      if (entry?.name === '*') fallback = true;
      if (entry?.name !== db) return;
      const options = parseConnstr(entry.connstr);
      found = typeof options === 'string' ? `the entry of ${db} cannot be read: ${options}` : { index, options };
    }
  });
  if (found) return found;
  return fallback ? `there is no [databases] entry for ${db}, only the * fallback` : `there is no [databases] entry for ${db}`;
}

/** The entry's line with host, port and dbname replaced (first, in that order) and every other option as written. */
export function repointedLine(lines: string[], entry: DatabaseEntry, db: string, to: { host: string; port: number; database: string }): string {
  const kept = entry.options.filter((o) => o.key !== 'host' && o.key !== 'port' && o.key !== 'dbname').map((o) => `${o.key}=${o.raw}`);
  const head = [`host=${connstrValue(to.host)}`, `port=${to.port}`, `dbname=${connstrValue(to.database)}`];
  return withEnding(lines[entry.index], `${entryLabel(db)} = ${[...head, ...kept].join(' ')}`);
}

/**
 * The entry's line as `previous` had it. The journal masks secrets (password=***), so an option
 * whose journaled value is masked takes the value the entry has now: the cut-over's repoint
 * changed only host, port and dbname.
 */
export function restoredLine(lines: string[], entry: DatabaseEntry, db: string, previous: string): string {
  const before = parseConnstr(splitEntry(previous)?.connstr ?? previous);
  if (typeof before === 'string') throw gateRefused('pgbouncer.config', `the journaled PgBouncer line of ${db} cannot be read: ${before}`, 'restore the entry by hand from the cut-over report, then RELOAD PgBouncer');
  const now = new Map(entry.options.map((o) => [o.key, o.raw]));
  const restored = before.map((o) => `${o.key}=${o.value === '***' && now.has(o.key) ? now.get(o.key) : o.raw}`);
  return withEnding(lines[entry.index], `${entryLabel(db)} = ${restored.join(' ')}`);
}

function entryLabel(db: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(db) ? db : `"${db.replace(/"/g, '""')}"`;
}

/** Keep a Windows line ending the file was written with. */
function withEnding(original: string, line: string): string {
  return original.endsWith('\r') ? `${line}\r` : line;
}
