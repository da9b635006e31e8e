import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ConnectionOptions } from 'node:tls';
import type { ServerPlan } from '../config/schema.js';
import { parseServerUrl, type ServerAddress } from '../config/url.js';
import { inputError, PgshiftError, tagServer } from '../core/errors.js';
import { redact } from '../core/secrets.js';

/**
 * Every connection pgshift opens goes through here: TLS from the plan, application_name=pgshift,
 * timeouts that never kill a long COPY but never hang forever on connect, and connection errors
 * turned into one-line messages that name the server and say how to fix it (exit 2: nothing has
 * been changed when we cannot even connect).
 */
export type Role = 'source' | 'target' | 'replica';

export interface Endpoint {
  role: Role;
  address: ServerAddress;
  ssl: false | ConnectionOptions;
  /** host:port/db, safe to print. */
  label: string;
}

export function endpointFor(role: Role, server: ServerPlan): Endpoint {
  const address = parseServerUrl(server.url);
  const mode = server.tls?.mode ?? address.sslmode ?? 'disable';
  const caPath = server.tls?.ca ?? address.sslrootcert;
  const ssl = sslOptions(role, mode, caPath, address.host);
  if (server.tls) {
    address.sslmode = server.tls.mode;
    if (server.tls.ca) address.sslrootcert = server.tls.ca;
  }
  return { role, address, ssl, label: `${address.host}:${address.port}/${address.database}` };
}

/**
 * An endpoint from a libpq conninfo (source.subscriptionConninfo: how the target reaches the
 * source), so that pgshift can try that route itself before a subscription depends on it.
 */
export function endpointFromConninfo(role: Role, fields: Record<string, string>, fallback: ServerAddress): Endpoint {
  const address: ServerAddress = {
    host: fields.host ?? fields.hostaddr ?? fallback.host,
    port: fields.port ? Number(fields.port) : fallback.port,
    user: fields.user ?? fallback.user,
    password: fields.password,
    database: fields.dbname ?? fallback.database,
    sslmode: fields.sslmode,
    sslrootcert: fields.sslrootcert,
    options: {},
  };
  const ssl = sslOptions(role, address.sslmode ?? 'disable', address.sslrootcert, address.host);
  return { role, address, ssl, label: `${address.host}:${address.port}/${address.database}` };
}

function sslOptions(role: Role, mode: string, caPath: string | undefined, host: string): false | ConnectionOptions {
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      // libpq's "prefer" silently falls back to plain text; we do not pretend to encrypt.
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full': {
      let ca: string | undefined;
      if (caPath) {
        try {
          ca = readFileSync(caPath, 'utf8');
        } catch {
          throw inputError('tls.ca', `${role}: cannot read the CA bundle ${caPath}`, 'set tls.ca to a readable PEM file (for RDS, the region bundle)');
        }
      }
      return mode === 'verify-full'
        ? { rejectUnauthorized: true, ca, servername: host }
        : { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
    }
    default:
      throw inputError('tls.mode', `${role}: unsupported sslmode ${mode}`, 'use disable, require, verify-ca or verify-full');
  }
}

export interface ConnectOptions {
  /** Open a replication connection (walsender in database mode). */
  replication?: boolean;
  /** statement_timeout in ms; 0 (the default) for sessions that run COPY or wait on purpose. */
  statementTimeoutMs?: number;
  applicationName?: string;
}

export function clientConfig(ep: Endpoint, opts: ConnectOptions = {}): pg.ClientConfig {
  const a = ep.address;
  const config: pg.ClientConfig & { replication?: string } = {
    host: a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: a.database,
    ssl: ep.ssl,
    application_name: opts.applicationName ?? 'pgshift',
    connectionTimeoutMillis: 15_000,
    keepAlive: true,
    options: startupOptions(opts),
  } as pg.ClientConfig;
  if (opts.replication) config.replication = 'database';
  return config;
}

/**
 * Settings every pgshift session starts with, whatever the database or role sets for its
 * application (ALTER DATABASE … SET, an RDS parameter group). They go in the startup packet's
 * options, where a zero counts: node-postgres sends its own statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout parameters only when they are not zero, so a database's
 * statement_timeout = '30s' would otherwise end a long COPY.
 * - No statement, lock or idle-in-transaction timeout: a session runs a COPY for hours, waits on
 *   purpose, or holds the load's snapshot idle in its transaction (a session may set its own, as
 *   the fence does).
 * - Read committed and read-write by default: pgshift asks for another level where it needs one,
 *   and its sessions must keep working on a source it has fenced read-only (teardown, rollback).
 * - row_security off: a policy that applies to pgshift's role makes a read fail rather than
 *   silently return fewer rows (assess refuses such tables first: table.row-security).
 */
function startupOptions(opts: ConnectOptions): string {
  const settings = [
    `statement_timeout=${opts.statementTimeoutMs ?? 0}`,
    'lock_timeout=0',
    'idle_in_transaction_session_timeout=0',
    'default_transaction_isolation=read\\ committed',
    'default_transaction_read_only=off',
    'row_security=off',
  ];
  return settings.map((s) => `-c ${s}`).join(' ');
}

export async function connect(ep: Endpoint, opts: ConnectOptions = {}): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(ep, opts));
  // A server that goes away must not crash the process through an unhandled 'error' event;
  // the next query on the client fails instead, and that is where we handle it.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw connectionError(ep, err);
  }
  tagQueryErrors(client, ep);
  await client.query(sessionSettingsSql(opts));
  return client;
}

/**
 * Settings that exist only from some major on, so they cannot go in the startup packet (an older
 * server refuses an unknown one): set after connecting, where the server has them.
 * - idle_session_timeout (14+) and transaction_timeout (17+) off: a database or role may set them
 *   for its application, and pgshift's sessions idle between steps, hold the load's snapshot for
 *   hours and the window's fence through the cut-over (statement, lock and idle-in-transaction
 *   timeouts are set in the startup packet).
 * - client_connection_check_interval (14+): a statement of a pgshift that died (killed, its
 *   machine lost) is cancelled within seconds instead of running — or waiting for a lock, holding
 *   a lease — to its end. Not on a replication connection, which runs no such statement.
 */
function sessionSettingsSql(opts: ConnectOptions): string {
  const settings: Array<[string, string]> = [['idle_session_timeout', '0'], ['transaction_timeout', '0']];
  if (!opts.replication) settings.push(['client_connection_check_interval', '2000']);
  // Constants only, written into the text: a replication connection takes no bound parameters.
  const values = settings.map(([name, value]) => `('${name}', '${value}')`).join(', ');
  return `SELECT set_config(s.name, w.value, false) FROM (VALUES ${values}) AS w (name, value) JOIN pg_settings s ON s.name = w.name`;
}

/**
 * Every error a query on this client raises carries its server, so that a failure deep inside a
 * phase ("permission denied for table x", "connection terminated") still says which server it came
 * from (describeFailure in core/errors.ts). Queries given as stream objects (COPY) return the
 * stream, which reports its own errors.
 */
function tagQueryErrors(client: pg.Client, ep: Endpoint): void {
  const server = { role: ep.role, label: ep.label };
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const r = query(...args);
    if (r && typeof (r as Promise<unknown>).then === 'function') {
      return (r as Promise<unknown>).catch((err: unknown) => {
        throw tagServer(err, server);
      });
    }
    return r;
  };
}

/** Translate a failure to connect into the one-line error of the CLI contract. */
export function connectionError(ep: Endpoint, err: unknown): PgshiftError {
  const e = err as { code?: string; message?: string };
  const who = `${ep.role} ${ep.label}`;
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
    case 'EAI_AGAIN':
      return inputError('connect.unreachable', `${who} is unreachable (${e.code})`, `check the host and port in the ${ep.role} URL and that this machine can reach it`, err);
    case '28P01':
      return inputError('connect.auth', `${who}: password authentication failed for user ${JSON.stringify(ep.address.user)}`, `check the password in the ${ep.role} URL's environment variable`, err);
    case '28000':
      return inputError('connect.auth', `${who}: ${redact(e.message ?? 'authorization failed')}`, 'allow this user and host in pg_hba.conf (for replication connections too)', err);
    case '3D000':
      return inputError('connect.database', `${who}: database ${JSON.stringify(ep.address.database)} does not exist`, `create it or fix the database name in the ${ep.role} URL`, err);
    default:
      if (/timeout/i.test(e.message ?? '')) {
        return inputError('connect.unreachable', `${who} did not answer within 15 s`, `check the host and port in the ${ep.role} URL and that this machine can reach it`, err);
      }
      if (/SSL|certificate|self.signed/i.test(e.message ?? '')) {
        return inputError('connect.tls', `${who}: TLS failed: ${redact(e.message ?? '')}`, 'check tls.mode and tls.ca (RDS: verify-full with the RDS CA bundle)', err);
      }
      return inputError('connect.failed', `${who}: cannot connect: ${redact(e.message ?? String(err))}`, `check the ${ep.role} URL`, err);
  }
}

/** Run `fn` with a fresh connection, always closing it. */
export async function withClient<T>(ep: Endpoint, fn: (c: pg.Client) => Promise<T>, opts: ConnectOptions = {}): Promise<T> {
  const client = await connect(ep, opts);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Drop a session at once, whatever it is doing (an interrupted copy): the socket is destroyed, so
 * the server ends the backend and rolls back its open transaction — a part's rows and its journal
 * row go together, as they would have committed together.
 */
export function abandon(c: pg.Client): void {
  const stream = (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  stream?.destroy();
  c.end().catch(() => {});
}

export async function serverVersionNum(c: pg.Client): Promise<number> {
  const r = await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Number(r.rows[0].v);
}

export function majorOf(versionNum: number): number {
  return versionNum >= 100000 ? Math.floor(versionNum / 10000) : Math.floor(versionNum / 100) / 10;
}
