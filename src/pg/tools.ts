import { execFile as execFileCb } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { failure, inputError } from '../core/errors.js';
import { redact } from '../core/secrets.js';
import type { Endpoint } from './connect.js';

const execFile = promisify(execFileCb);

/**
 * pg_dump and pg_restore. pg_dump must be at least the source's major version; we check that
 * before anything is created and name the binary to use when it is not. Credentials reach the
 * tools through the environment (PGPASSWORD), never their command line, which `ps` can read.
 */
export interface PgTool {
  path: string;
  major: number;
  version: string;
}

export function toolPath(name: 'pg_dump' | 'pg_restore', binDir?: string): string {
  const dir = binDir ?? process.env.PGSHIFT_PG_BIN;
  return dir ? path.join(dir, name) : name;
}

export async function findTool(name: 'pg_dump' | 'pg_restore', binDir?: string): Promise<PgTool> {
  const bin = toolPath(name, binDir);
  if (bin.includes('/') && !existsSync(bin)) {
    throw inputError('tool.missing', `${name} not found at ${bin}`, 'set fullLoad.pgBinDir (or PGSHIFT_PG_BIN) to a directory holding the PostgreSQL client tools');
  }
  let stdout: string;
  try {
    ({ stdout } = await execFile(bin, ['--version']));
  } catch {
    throw inputError('tool.missing', `${name} cannot be run (${bin})`, 'install the PostgreSQL client tools or set fullLoad.pgBinDir (or PGSHIFT_PG_BIN)');
  }
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
  if (!m) throw inputError('tool.version', `cannot read the version of ${bin}: ${stdout.trim()}`);
  const major = Number(m[1]) >= 10 ? Number(m[1]) : Number(`${m[1]}.${m[2]}`);
  return { path: bin, major, version: stdout.trim() };
}

/** Refuse before anything happens when pg_dump is older than the source server. */
export function requireDumpForSource(tool: PgTool, sourceMajor: number): void {
  if (tool.major < sourceMajor) {
    throw inputError(
      'tool.too-old',
      `${tool.path} is PostgreSQL ${tool.major} but the source server is PostgreSQL ${sourceMajor}; pg_dump cannot dump a newer server`,
      `install the PostgreSQL ${sourceMajor} (or newer) client tools and set fullLoad.pgBinDir or PGSHIFT_PG_BIN to their bin directory`,
    );
  }
}

export function toolEnv(ep: Endpoint): NodeJS.ProcessEnv {
  const a = ep.address;
  const env: NodeJS.ProcessEnv = { ...process.env, PGAPPNAME: 'pgshift', PGCONNECT_TIMEOUT: '15' };
  // Never let the caller's PG* variables point a tool at another server or user.
  for (const key of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSWORD', 'PGSERVICE', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGOPTIONS']) delete env[key];
  if (a.password) env.PGPASSWORD = a.password;
  env.PGSSLMODE = a.sslmode ?? (ep.ssl ? 'require' : 'disable');
  if (a.sslrootcert) env.PGSSLROOTCERT = a.sslrootcert;
  return env;
}

export function connectionArgs(ep: Endpoint): string[] {
  const a = ep.address;
  return ['--host', a.host, '--port', String(a.port), '--username', a.user, '--dbname', a.database, '--no-password'];
}

export async function runTool(bin: string, args: string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  try {
    const { stdout } = await execFile(bin, args, { env, maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const detail = redact((e.stderr || e.message).trim().split('\n').slice(0, 3).join(' | '));
    throw failure('tool.failed', `${what} failed: ${detail}`, undefined, err);
  }
}
