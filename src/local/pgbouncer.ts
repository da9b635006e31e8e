import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, serverOsUser } from './cluster.js';
import { pollUntil, sleep } from '../core/wait.js';

/**
 * A throw-away PgBouncer (Debian's package) for tests and benchmarks: transaction pooling in front
 * of one database, trust authentication for clients, an admin console user, a config file that
 * the cut-over repoints. PgBouncer refuses to run as root, so it runs as the clusters' OS user.
 */
export interface LocalBouncer {
  port: number;
  configFile: string;
  adminUrl: string;
  /** Client URL of the pooled database. */
  url(database: string, user: string): string;
  stop(): Promise<void>;
}

export async function startPgBouncer(options: {
  databases: Record<string, { host: string; port: number; dbname: string; user: string; password: string }>;
  bin?: string;
}): Promise<LocalBouncer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-bouncer-'));
  const port = await freePort();
  const configFile = path.join(dir, 'pgbouncer.ini');
  const users = new Set(['pgbadmin', ...Object.values(options.databases).map((d) => d.user)]);
  writeFileSync(path.join(dir, 'userlist.txt'), [...users].map((u) => `"${u}" ""`).join('\n') + '\n');
  const dbLines = Object.entries(options.databases).map(
    // connect_query, quoted with spaces and a doubled quote, as configs in the wild have it: the
    // cut-over rewrites this line, and the real PgBouncer must read it back the same.
    ([name, d]) => `${name} = host=${d.host} port=${d.port} dbname=${d.dbname} user=${d.user} password=${d.password} connect_query='SELECT ''pooled by pgbouncer'''`,
  );
  writeFileSync(
    configFile,
    [
      '[databases]',
      ...dbLines,
      '',
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      `auth_type = trust`,
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `admin_users = pgbadmin`,
      `pool_mode = transaction`,
      `max_client_conn = 200`,
      `default_pool_size = 20`,
      `server_reset_query =`,
      `ignore_startup_parameters = extra_float_digits,options,application_name`,
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const user = serverOsUser();
  if (user) {
    for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) chownSync(path.join(dir, f), user.uid, user.gid);
  }
  const bin = options.bin ?? '/usr/sbin/pgbouncer';
  const child: ChildProcess = user ? spawn('runuser', ['-u', user.name, '--', bin, configFile], { stdio: 'ignore' }) : spawn(bin, [configFile], { stdio: 'ignore' });
  await waitForPort(port, 10_000);
  mkdirSync(dir, { recursive: true });
  return {
    port,
    configFile,
    adminUrl: `postgresql://pgbadmin@127.0.0.1:${port}/pgbouncer`,
    url: (database, u) => `postgresql://${u}@127.0.0.1:${port}/${database}`,
    async stop() {
      child.kill('SIGTERM');
      await sleep(200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const listening = await pollUntil(
    () =>
      new Promise<true | undefined>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(undefined));
      }),
    { everyMs: 50, timeoutMs },
  );
  if (listening) return;
  throw new Error(`PgBouncer did not listen on ${port} within ${timeoutMs} ms`);
}
