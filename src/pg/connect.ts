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
    statement_timeout: opts.statementTimeoutMs ?? 0,
    // A pgshift session idling inside a transaction is holding a snapshot on purpose.
    idle_in_transaction_session_timeout: 0,
    lock_timeout: 0,
    // pgshift's own sessions must keep working on a source it has fenced read-only (teardown,
    // rollback); the fence is for the application. A row-level security policy that applies to
    // pgshift's role makes a read fail rather than silently return fewer rows (assess refuses
    // such tables first: table.row-security).
    options: '-c default_transaction_read_only=off -c row_security=off',
  } as pg.ClientConfig;
  if (opts.replication) config.replication = 'database';
  return config;
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
  if (!opts.replication) {
    // A statement of a pgshift that died (killed, its machine lost) is cancelled within seconds
    // instead of running — or waiting for a lock, holding a lease — to its end (PostgreSQL 14+).
    await client.query(`SELECT set_config('client_connection_check_interval', '2000', false) FROM pg_settings WHERE name = 'client_connection_check_interval'`);
  }
  return client;
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
