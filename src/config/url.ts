import { inputError } from '../core/errors.js';

/**
 * Connection URLs as written in the plan. We parse them ourselves (rather than handing the string
 * to a driver) so that TLS settings, the password and the application name are under our control
 * and the same settings reach node-postgres, pg_dump and the target's subscription.
 *
 * Every query parameter must be a libpq keyword: an unknown one would be passed on to pg_dump and
 * into CREATE SUBSCRIPTION's conninfo, where the target server refuses it — after the slot and the
 * copy were made, and with the statement (password included) in its log. So the plan is refused
 * at load instead (exit 2), and the keywords the target's own libpq does not know yet are refused
 * before the first subscription (see keywordsUnknownTo).
 */
export interface ServerAddress {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  sslmode?: string;
  sslrootcert?: string;
  /** Other query parameters, passed through to libpq tools. */
  options: Record<string, string>;
}

/** libpq connection keywords and the PostgreSQL major whose libpq first knew each one. */
const LIBPQ_KEYWORDS: Record<string, number> = {
  host: 10, hostaddr: 10, port: 10, dbname: 10, user: 10, password: 10, passfile: 10, connect_timeout: 10,
  client_encoding: 10, options: 10, application_name: 10, fallback_application_name: 10, keepalives: 10,
  keepalives_idle: 10, keepalives_interval: 10, keepalives_count: 10, replication: 10, sslmode: 10,
  sslcompression: 10, sslcert: 10, sslkey: 10, sslrootcert: 10, sslcrl: 10, requirepeer: 10, krbsrvname: 10,
  gsslib: 10, service: 10, target_session_attrs: 10, tcp_user_timeout: 12, gssencmode: 12, sslpassword: 13,
  channel_binding: 13, ssl_min_protocol_version: 13, ssl_max_protocol_version: 13, sslcrldir: 14, sslsni: 14,
  require_auth: 16, sslcertmode: 16, load_balance_hosts: 16, gssdelegation: 16, sslnegotiation: 17,
};

/** Keywords the URL spells in its own syntax (user@host:port/dbname), never as parameters we pass on. */
const STRUCTURAL = new Set(['user', 'password', 'dbname', 'port']);

const ENCODE_HINT = 'percent-encode special characters in the user and password (/ as %2F, % as %25, @ as %40, : as %3A, # as %23, ? as %3F)';

export function parseServerUrl(url: string): ServerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw inputError('url.invalid', 'not a valid URL', /^postgres(ql)?:\/\//.test(url) ? `write postgresql://user:password@host:port/dbname and ${ENCODE_HINT}` : 'write postgresql://user:password@host:port/dbname');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw inputError('url.scheme', `unsupported scheme ${u.protocol.replace(':', '')}`, 'write postgresql://user:password@host:port/dbname');
  }
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw inputError('url.encoding', `the ${what} holds a % that is not a percent-encoded character`, ENCODE_HINT);
    }
  };
  const options: Record<string, string> = {};
  for (const [k, v] of u.searchParams) {
    if (!(k in LIBPQ_KEYWORDS)) {
      throw inputError('url.parameter', `unknown connection parameter ${k}`, `remove ?${k}= from the URL (libpq knows: ${Object.keys(LIBPQ_KEYWORDS).filter((x) => !STRUCTURAL.has(x)).join(', ')})`);
    }
    if (STRUCTURAL.has(k)) throw inputError('url.parameter', `connection parameter ${k} given as ?${k}=`, `write it in the URL itself: postgresql://user:password@host:port/dbname`);
    options[k] = v;
  }
  const { sslmode, sslrootcert, host: hostParam, ...rest } = options;
  // A Unix socket directory can be given as ?host=/var/run/postgresql.
  const host = hostParam ?? decode(u.hostname, 'host');
  const database = decode(u.pathname.replace(/^\//, ''), 'database name');
  if (!host) throw inputError('url.host', 'no host', 'write postgresql://user:password@host:port/dbname');
  if (!database) throw inputError('url.database', 'no database name', 'write postgresql://user:password@host:port/dbname');
  return {
    host,
    port: u.port ? Number(u.port) : 5432,
    user: decode(u.username, 'user') || 'postgres',
    password: u.password ? decode(u.password, 'password') : undefined,
    database,
    sslmode,
    sslrootcert,
    options: rest,
  };
}

/**
 * Parse a libpq keyword/value conninfo (source.subscriptionConninfo): `key=value` pairs, values
 * optionally single-quoted with \ escapes. Unknown keywords are refused like URL parameters.
 */
export function parseConninfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s']+)/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw inputError('conninfo.syntax', `cannot read the conninfo after "${text.slice(0, at).replace(/password\s*=\s*\S+/gi, 'password=***')}"`, "write keyword=value pairs separated by spaces; quote values with spaces as 'value'");
    const [, key, raw, quoted] = m;
    if (!(key in LIBPQ_KEYWORDS)) throw inputError('conninfo.parameter', `unknown connection parameter ${key}`, `remove ${key}= from the conninfo`);
    out[key] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : raw;
    at = re.lastIndex;
  }
  return out;
}

/** The keywords of a conninfo that the libpq of a server of this major does not know. */
export function keywordsUnknownTo(keywords: string[], major: number): string[] {
  return keywords.filter((k) => (LIBPQ_KEYWORDS[k] ?? Infinity) > major);
}

/** libpq keyword/value conninfo (for CREATE SUBSCRIPTION and the dump tools), password optional. */
export function toConninfo(a: ServerAddress, opts: { withPassword: boolean }): string {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts = [`host=${q(a.host)}`, `port=${a.port}`, `user=${q(a.user)}`, `dbname=${q(a.database)}`];
  if (opts.withPassword && a.password) parts.push(`password=${q(a.password)}`);
  if (a.sslmode) parts.push(`sslmode=${q(a.sslmode)}`);
  if (a.sslrootcert) parts.push(`sslrootcert=${q(a.sslrootcert)}`);
  for (const [k, v] of Object.entries(a.options)) parts.push(`${k}=${q(v)}`);
  return parts.join(' ');
}
