/**
 * Connection URLs as written in the plan. We parse them ourselves (rather than handing the string
 * to a driver) so that TLS settings, the password and the application name are under our control
 * and the same settings reach node-postgres, pg_dump and the target's subscription.
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

export function parseServerUrl(url: string): ServerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('not a valid URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`unsupported scheme ${u.protocol.replace(':', '')}`);
  const options: Record<string, string> = {};
  for (const [k, v] of u.searchParams) options[k] = v;
  const { sslmode, sslrootcert, host: hostParam, ...rest } = options;
  // A Unix socket directory can be given as ?host=/var/run/postgresql.
  const host = hostParam ?? decodeURIComponent(u.hostname);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!host) throw new Error('no host');
  if (!database) throw new Error('no database name');
  return {
    host,
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database,
    sslmode,
    sslrootcert,
    options: rest,
  };
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
