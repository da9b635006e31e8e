import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../src/local/cluster.js';
import { parseServerUrl } from '../src/config/url.js';
import { exec, machineCpu, ratio, serverCpu } from './common.js';
import pg from 'pg';

/**
 * full-load against the baselines of issue 4, in one run, each into a fresh target database:
 *   (a) pg_dump -Fd -j J, then pg_restore -j J
 *   (b) pg_dump | psql
 *   (c) pgcopydb clone --table-jobs J --index-jobs J (Debian's pgcopydb)
 *   (d) pgshift full-load (jobs J, indexJobs J)
 * Wall time, rows/s and peak RSS of each command's whole process tree (pg_dump's workers,
 * pgshift's pg_dump/pg_restore children included; the servers' backends are not).
 *
 * Data (PostgreSQL 15 source, 17 target): one wide table of about 60% of the size (a jsonb and a
 * text column, two secondary indexes), three mid-size tables, and N small tables with a primary
 * key and an index each. `node bench/run.mjs full-load [GB] [smallTables] [jobs] [split]`.
 */
const GB = Number(process.argv[2] ?? 2);
const SMALL = Number(process.argv[3] ?? 300);
const JOBS = Number(process.argv[4] ?? 2);
/** Same-table concurrency threshold, given to pgcopydb and pgshift alike. */
const SPLIT = process.argv[5] ?? '256MB';
const WIDE_ROWS = Math.round((GB * 0.6 * 1024 ** 3) / 620);
const MID_ROWS = Math.round((GB * 0.1 * 1024 ** 3) / 130);

const settings = { shared_buffers: "'1GB'", max_wal_size: "'8GB'", checkpoint_timeout: "'30min'", max_parallel_workers_per_gather: 0, wal_level: 'logical' };
/**
 * The target's WAL level: minimal by default (a dedicated restore target; a table loaded in the
 * transaction that created or truncated it writes no WAL). BENCH_TARGET_WAL=replica runs the
 * target as RDS does, where every method WAL-logs every row.
 */
const TARGET_WAL = process.env.BENCH_TARGET_WAL ?? 'minimal';
const [source, target] = await Promise.all([
  startCluster({ major: 15, name: 'bench-fl-src', settings }),
  startCluster({ major: 17, name: 'bench-fl-tgt', settings: { ...settings, wal_level: TARGET_WAL, ...(TARGET_WAL === 'minimal' ? { max_wal_senders: 0 } : {}) } }),
]);
console.log(`target wal_level = ${TARGET_WAL}`);
const work = mkdtempSync(path.join(os.tmpdir(), 'pgshift-bench-fl-'));

try {
  console.log(`generating: wide ${WIDE_ROWS} rows, 3 × ${MID_ROWS} mid rows, ${SMALL} small tables …`);
  const genStart = Date.now();
  await exec(source.url(), 'CREATE DATABASE app');
  const src = source.url('app');
  await exec(src, `
    CREATE TABLE events (id bigint PRIMARY KEY, account_id int NOT NULL, created_at timestamptz NOT NULL, kind text NOT NULL, payload jsonb NOT NULL, body text NOT NULL);
    INSERT INTO events SELECT i, i % 50000, timestamptz '2024-01-01' + i * interval '1 second', (ARRAY['click','view','buy','refund'])[1 + i % 4],
      jsonb_build_object('session', md5(i::text), 'n', i, 'tags', jsonb_build_array('a' || i % 7, 'b' || i % 11), 'ua', repeat(md5((i * 7)::text), 4)),
      repeat(md5((i * 3)::text), 8)
      FROM generate_series(1, ${WIDE_ROWS}) i;
    CREATE INDEX events_account ON events (account_id, created_at);
    CREATE INDEX events_kind ON events (kind, created_at);`);
  for (let m = 1; m <= 3; m++) {
    await exec(src, `
      CREATE TABLE accounts_${m} (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, opened date NOT NULL, flags int[]);
      INSERT INTO accounts_${m} SELECT i, 'owner ' || md5(i::text), (i % 100000) / 7.0, date '2000-01-01' + i % 9000, ARRAY[i % 3, i % 5] FROM generate_series(1, ${MID_ROWS}) i;
      CREATE INDEX accounts_${m}_owner ON accounts_${m} (owner);`);
  }
  const small: string[] = [];
  for (let i = 1; i <= SMALL; i++) {
    small.push(`CREATE TABLE small_${i} (id int PRIMARY KEY, name text NOT NULL, ref int, at timestamptz DEFAULT now());
      INSERT INTO small_${i} (id, name, ref) SELECT g, 'n' || g, g % 17 FROM generate_series(1, 500) g;
      CREATE INDEX small_${i}_ref ON small_${i} (ref);`);
    if (small.length === 50 || i === SMALL) await exec(src, small.splice(0).join('\n'));
  }
  await exec(src, 'ALTER TABLE accounts_2 ADD CONSTRAINT accounts_2_fk FOREIGN KEY (id) REFERENCES accounts_1 (id)');
  await exec(src, 'VACUUM ANALYZE');
  await exec(src, 'CHECKPOINT');
  const size = await query(src, `SELECT pg_database_size('app')::bigint AS b, (SELECT pg_total_relation_size('events'))::bigint AS w,
    (SELECT sum(reltuples)::bigint FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace) AS rows`);
  const rows = Number(size.rows);
  console.log(`dataset: ${(Number(size.b) / 1024 ** 3).toFixed(2)} GB on disk (events ${(Number(size.w) / Number(size.b) * 100).toFixed(0)}%), ${rows} rows, generated in ${((Date.now() - genStart) / 1000).toFixed(0)} s`);

  const a = parseServerUrl(source.url());
  const t = parseServerUrl(target.url());
  // Two servers, two passwords: a password file serves both to every tool.
  const passFile = path.join(work, 'pgpass');
  writeFileSync(passFile, `${a.host}:${a.port}:*:${a.user}:${a.password}\n${t.host}:${t.port}:*:${t.user}:${t.password}\n`, { mode: 0o600 });
  const pgEnv = { ...process.env, PGPASSFILE: passFile };
  const srcArgs = `-h ${a.host} -p ${a.port} -U ${a.user}`;
  const tgtArgs = `-h ${t.host} -p ${t.port} -U ${t.user}`;
  const fresh = async (db: string) => {
    await exec(target.url(), `DROP DATABASE IF EXISTS ${db}`);
    await exec(target.url(), `CREATE DATABASE ${db}`);
    await exec(target.url(), 'CHECKPOINT');
  };
  const results: Array<{ key: string; name: string; seconds: number; peakMb: number; cpu: Cpu }> = [];
  const measure = async (name: string, db: string, command: string, env: NodeJS.ProcessEnv = pgEnv) => {
    await fresh(db);
    const before = cpuNow();
    const r = await runTree(command, env);
    await new Promise((r) => setTimeout(r, 500)); // the backends exit just after their clients
    const cpu = cpuSince(before);
    if (r.code !== 0) throw new Error(`${name} failed (${r.code}): ${r.stderr.slice(-2000)}`);
    const copied = await query(target.url(db), `SELECT (SELECT count(*) FROM events)::bigint AS e, (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')::int AS i`);
    console.log(`${name}: ${r.seconds.toFixed(1)} s, peak RSS ${r.peakMb} MB (events ${copied.e} rows, ${copied.i} indexes); ` +
      `CPU s: source ${cpu.source.toFixed(1)}, target ${cpu.target.toFixed(1)}, tools ${cpu.tools.toFixed(1)}, iowait ${cpu.iowait.toFixed(1)}`);
    if (process.env.BENCH_VERBOSE) console.log(r.stderr);
    if (Number(copied.e) !== WIDE_ROWS) throw new Error(`${name}: events has ${copied.e} rows on the target`);
    results.push({ key: db, name, seconds: r.seconds, peakMb: r.peakMb, cpu });
    await exec(target.url(), `DROP DATABASE ${db}`);
  };

  const dumpDir = path.join(work, 'dump');
  const plan = path.join(work, 'migration.yml');
  writeFileSync(
    plan,
    `version: 1\nname: bench\nsource: { url: "${src}" }\ntarget: { url: "${target.url('d')}" }\ncutover: { fence: database }\n` +
      `fullLoad: { jobs: ${JOBS}, indexJobs: ${JOBS}, splitTablesLargerThan: ${SPLIT}, ownership: target-user }\n`,
  );
  const methods: Record<string, () => Promise<void>> = {
    a: async () => {
      await measure(
        `(a) pg_dump -Fd -j ${JOBS} + pg_restore -j ${JOBS}`,
        'a',
        `pg_dump ${srcArgs} -Fd -j ${JOBS} -f ${dumpDir} app && pg_restore ${tgtArgs} -j ${JOBS} -d a ${dumpDir}`,
      );
      rmSync(dumpDir, { recursive: true, force: true });
    },
    b: () => measure('(b) pg_dump | psql', 'b', `pg_dump ${srcArgs} app | psql -q -X -v ON_ERROR_STOP=1 ${tgtArgs} -d b > /dev/null`),
    c: () =>
      measure(
        `(c) pgcopydb clone (table/index jobs ${JOBS}, split > ${SPLIT})`,
        'c',
        `pgcopydb clone --source '${src}' --target '${target.url('c')}' --dir ${path.join(work, 'pgcopydb')} --table-jobs ${JOBS} --index-jobs ${JOBS} --split-tables-larger-than ${SPLIT} --no-owner --no-acl`,
      ),
    d: async () => {
      await measure(`(d) pgshift full-load (jobs ${JOBS}, indexJobs ${JOBS}, split > ${SPLIT})`, 'd', `node bin/pgshift.js full-load -c ${plan}`);
      // The source keeps the group's slot and publication for CDC; a repeated run starts without them.
      await exec(src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgshift%';
        DO $$ DECLARE p text; BEGIN FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'pgshift%' LOOP EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END $$;`);
    },
  };
  // BENCH_ONLY=b,d,d runs only those methods, in that order (to profile one; the README's runs use a,b,c,d).
  for (const key of process.env.BENCH_ONLY?.split(',') ?? ['a', 'b', 'c', 'd']) await methods[key]();

  const base = results[0].seconds;
  console.log(`\n| method | wall (s) | rows/s | peak RSS (MB) | ${results[0].key} time ÷ this | CPU s: source / target / tools | iowait s |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const c = r.cpu;
    console.log(`| ${r.name.replaceAll('|', '\\|')} | ${r.seconds.toFixed(1)} | ${Math.round(rows / r.seconds)} | ${r.peakMb} | ${ratio(base, r.seconds)} | ${c.source.toFixed(0)} / ${c.target.toFixed(0)} / ${c.tools.toFixed(0)} | ${c.iowait.toFixed(0)} |`);
  }
  const by = (k: string) => results.find((r) => r.key === k);
  const [a0, c0, d0] = [by('a'), by('c'), by('d')];
  if (a0 && c0 && d0) {
    console.log(`\npgshift vs (a): ${ratio(a0.seconds, d0.seconds)}× faster (goal ≥ 1.5); vs (c) pgcopydb: ${ratio(c0.seconds, d0.seconds)}× (goal ≥ 1.0); peak RSS ${d0.peakMb} MB (goal < 256)`);
  }
} finally {
  await Promise.all([source.destroy(), target.destroy()]);
  rmSync(work, { recursive: true, force: true });
}

interface Cpu {
  source: number;
  target: number;
  /** Everything else that ran: the method's own processes (and anything else on the machine). */
  tools: number;
  iowait: number;
}

function cpuNow(): Cpu {
  const m = machineCpu();
  return { source: serverCpu(source.dataDir), target: serverCpu(target.dataDir), tools: m.busy, iowait: m.iowait };
}

/** CPU seconds used since `before`; backends have exited by now, so the servers' share is complete. */
function cpuSince(before: Cpu): Cpu {
  const now = cpuNow();
  const src = now.source - before.source;
  const tgt = now.target - before.target;
  return { source: src, target: tgt, tools: now.tools - before.tools - src - tgt, iowait: now.iowait - before.iowait };
}

async function query(url: string, text: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text)).rows[0];
  } finally {
    await c.end();
  }
}

/** Run a shell command; sample the summed RSS of its whole process tree every 50 ms. */
async function runTree(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; seconds: number; peakMb: number; stderr: string }> {
  const started = process.hrtime.bigint();
  const child = spawn('bash', ['-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20000)));
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(child.pid!))), 50);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(timer);
  return { code, seconds: Number(process.hrtime.bigint() - started) / 1e9, peakMb: Math.round(peak / 1024), stderr };
}

/** Summed VmRSS (kB) of a process and its descendants, from /proc. */
function treeRss(root: number): number {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      parent.set(Number(entry), Number(/PPid:\s+(\d+)/.exec(status)?.[1] ?? 0));
      rss.set(Number(entry), Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      /* exited meanwhile */
    }
  }
  let total = 0;
  for (const [pid, kb] of rss) {
    for (let p = pid; p; p = parent.get(p) ?? 0) {
      if (p === root) {
        total += kb;
        break;
      }
    }
  }
  return total;
}
