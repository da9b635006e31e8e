import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { postDataSessionName } from '../../src/core/names.js';
import { startStandby, type LocalCluster } from '../../src/local/cluster.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runCutover } from '../../src/phases/cutover.js';
import { runVerify } from '../../src/phases/verify.js';
import { tableDigests } from '../harness/compare.js';
import { pgbenchInit, pgbenchStart, type Load } from '../harness/load.js';
import { sql, startServer } from '../harness/servers.js';

/**
 * The full load survives its runner: a pgbench database (pgbench_accounts split into parts) loaded
 * by the CLI with pgbench writing throughout, the whole process group killed with SIGKILL at five
 * points drawn at random (the seed is printed; RESUME_SEED=… replays a draw), the same command run
 * again after each kill, then CDC, verify and the cut-over: source and target equal row for row.
 * Kill points are held states of the journal or the target (parts committed, an index building, a
 * resume stream copying, post-data running), never sleeps. Both snapshot modes, native engine;
 * the exported run also dies right after its slot was made (before any copy), during post-data,
 * and once by SIGTERM (a cancelled workflow), which must stop the workers at once.
 */
const TABLES = ['public.pgbench_accounts', 'public.pgbench_branches', 'public.pgbench_tellers', 'public.pgbench_history', ...Array.from({ length: 10 }, (_, i) => `public.slice_${i + 1}`)];
// pgbench_accounts ≈ 13 MB per 100 000 rows: at scale 8 it is split into 4 parts of ~26 MB,
// copied first (largest first); then SLICES whole tables of ~10 MB each and pgbench's small ones.
const SCALE = 8;
const SLICES = 10;
const PARTS = 4 + 1 + SLICES + 3;
const seed = Number(process.env.RESUME_SEED ?? Date.now() % 1_000_000);
let primary: LocalCluster;
let replica: LocalCluster;
let target: LocalCluster;
let bench: Load | undefined;
// One source database per mode: the cut-over fences its source database.
const SOURCES = { rk_exported: 'bank_e', rk_paused: 'bank_p' } as const;
type Db = keyof typeof SOURCES;

function random(s: number): () => number {
  // mulberry32
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  console.log(`resume-kill: seed ${seed} (RESUME_SEED=${seed} replays these kill points)`);
  [primary, target] = await Promise.all([startServer(15, 'rk-primary'), startServer(17, 'rk-target')]);
  for (const src of Object.values(SOURCES)) {
    await sql(primary.url(), `CREATE DATABASE ${src}`);
    pgbenchInit(primary.url(src), SCALE);
    for (let i = 1; i <= SLICES; i++) {
      await sql(primary.url(src), `CREATE TABLE slice_${i} (LIKE pgbench_accounts INCLUDING ALL); INSERT INTO slice_${i} SELECT * FROM pgbench_accounts WHERE aid % ${SLICES} = ${i - 1}`);
    }
    await sql(primary.url(src), 'ANALYZE');
  }
  replica = await startStandby(primary, 'rk-replica');
});

afterAll(async () => {
  await bench?.stop();
  await replica?.destroy();
});

function planFile(db: Db, snapshot: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-rk-')), 'migration.yml');
  writeFileSync(
    file,
    `version: 1\nname: ${db}\nsnapshot: ${snapshot}\nsource: { url: "\${S}", replicaUrl: "\${R}" }\ntarget: { url: "\${T}" }\ncutover: { fence: database, timeoutSeconds: 30 }\n` +
      `fullLoad: { jobs: 2, indexJobs: 1, splitTablesLargerThan: 25MB, maxPartsPerTable: 4 }\n`,
  );
  return file;
}

const env = (db: string) => ({ ...process.env, S: primary.url(SOURCES[db as Db]), R: replica.url(SOURCES[db as Db]), T: target.url(db) });

interface Run {
  pid: number;
  done: Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

/** The CLI in a process group of its own (pg_dump and pg_restore children included). */
function start(db: string, file: string): Run {
  let stderr = '';
  const child = spawn(process.execPath, ['bin/pgshift.js', 'full-load', '-c', file], { env: env(db), detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { pid: child.pid!, done };
}

const order = (p: Point): number => (p.name.startsWith('slot') ? 0 : p.name === 'post-data' ? 1e6 : Number(/(\d+) part/.exec(p.name)?.[1] ?? 0));
type Point = { name: string; when: (db: string, at: Counts) => Promise<boolean>; signal?: NodeJS.Signals };
type Counts = { rows: number };

const count = async (db: string, where: string) => (await sql(target.url(db), `SELECT count(*)::int AS n FROM pgshift.copy_progress WHERE state = 'done' AND ${where}`).catch(() => [{ n: 0 }]))[0].n as number;
const doneRows = (db: string) => count(db, 'true');
const active = async (db: string, where: string) => (await sql(target.url(db), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND ${where}`, [db]))[0].n > 0;

const points = {
  slot: { name: 'slot made, nothing copied', when: async (db: string) => (await sql(target.url(db), `SELECT count(*)::int AS n FROM pgshift.stream WHERE state = 'loading'`).catch(() => [{ n: 0 }]))[0].n > 0 && (await doneRows(db)) === 0 },
  /** The k-th journal row (a part or a whole table) committed in the current run's view. */
  parts: (k: number) => ({ name: `${k} part(s) or table(s) committed`, when: async (db: string) => (await doneRows(db)) >= k }),
  index: { name: 'an index building', when: (db: string) => active(db, `query ILIKE 'CREATE%INDEX%'`) },
  resumeCopy: { name: 'a resume stream copying', when: async (db: string, at: Counts) => (await sql(target.url(db), `SELECT count(*)::int AS n FROM pgshift.stream WHERE group_name LIKE '%\\_r%' AND snapshot_lsn IS NOT NULL AND state = 'loading'`).catch(() => [{ n: 0 }]))[0].n > 0 && (await doneRows(db)) > at.rows },
  postData: (db: string) => ({ name: 'post-data', when: () => active(db, `application_name = '${postDataSessionName(db)}'`) }),
};

/** Run the load until `point` holds, then kill its whole process group; a run that ends first is noted. */
async function killAt(db: string, file: string, point: Point): Promise<{ killed: boolean; stderr: string; code: number | null }> {
  const at = { rows: await doneRows(db) };
  const run = start(db, file);
  let exited = false;
  void run.done.then(() => (exited = true));
  while (!exited && !(await point.when(db, at).catch(() => false))) await new Promise((r) => setTimeout(r, 5));
  const sent = !exited;
  if (sent) process.kill(-run.pid, point.signal ?? 'SIGKILL');
  const r = await run.done;
  console.log(`resume-kill ${db}: ${point.signal ?? 'SIGKILL'} at "${point.name}" → ${r.signal ?? `exit ${r.code}`}`);
  return { killed: sent, stderr: r.stderr, code: r.code };
}

async function finish(db: string, file: string): Promise<string> {
  const r = await start(db, file).done;
  expect(r.code, r.stderr).toBe(0);
  return r.stderr;
}

/** CDC under the workload, then verify, then (writes stopped) the cut-over; equal row for row. */
async function cdcVerifyCutover(db: string) {
  const ctx = phaseContext(parsePlan(`version: 1\nname: ${db}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\ncutover: { fence: database, timeoutSeconds: 30 }\n`, 'plan', env(db)), silentLogger);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 120_000);
  expect((await runVerify(ctx)).verdict).toBe('equal');
  await bench!.stop();
  bench = undefined;
  await runCutover(ctx);
  const [a, b] = await Promise.all([tableDigests(primary.url(SOURCES[db as Db]), TABLES), tableDigests(target.url(db), TABLES)]);
  expect(b).toEqual(a);
  expect(a.get('public.pgbench_history')!.rows).toBeGreaterThan(0);
}

/** A condition that must come true soon (sessions a stopped process dropped, as the server notices). */
async function eventually(probe: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * n kill points at distinct numbers of committed parts, drawn at random and in increasing order,
 * so each is still ahead of the load (in exported mode each run after the first also copies from
 * a resume stream: the later points kill a resume in its copy).
 */
function middlePoints(rnd: () => number, n: number): Point[] {
  const picks = new Set<number>();
  while (picks.size < n) picks.add(1 + Math.floor(rnd() * (PARTS - 2)));
  return [...picks].sort((a, b) => a - b).map((k) => points.parts(k));
}

describe('full load killed five times at random points, resumed each time, then CDC, verify and cut-over', () => {
  it('exported snapshot: right after the slot, three random points, SIGTERM, post-data', async () => {
    const db = 'rk_exported';
    await sql(target.url(), `CREATE DATABASE ${db}`);
    bench = pgbenchStart(primary.url(SOURCES[db]), { clients: 2, seconds: 900, rate: 40 });
    const file = planFile(db, 'exported');
    const rnd = random(seed);
    const middle = middlePoints(rnd, 4);
    const sigterm = middle.splice(1 + Math.floor(rnd() * 3), 1)[0];
    const plan: Point[] = [points.slot, ...middle.slice(0, 1), { ...sigterm, name: `SIGTERM at ${sigterm.name}`, signal: 'SIGTERM' }, ...middle.slice(1), points.postData(db)];
    plan.sort((a, b) => order(a) - order(b));
    let kills = 0;
    let said = '';
    for (const p of plan) {
      const keptBefore = await sql(target.url(db), `SELECT table_name AS t, part, finished_at::text AS at FROM pgshift.copy_progress WHERE state = 'done' AND part = 0`).catch(() => []);
      const r = await killAt(db, file, p);
      said += r.stderr;
      if (!r.killed) continue;
      kills++;
      if (p.signal === 'SIGTERM') {
        // Stopped at once, said so, and nothing of the load left running on either server.
        expect(r.stderr).toMatch(/SIGTERM: stopping/);
        expect(r.code).toBe(1);
        expect(await eventually(async () => !(await active(db, `application_name LIKE 'pgshift load%'`)))).toBe(true);
        expect(await eventually(async () => (await sql(primary.url(), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgshift copy'`))[0].n === 0)).toBe(true);
      }
      // Finished tables survive every kill (a kill never undoes a committed table).
      const keptAfter = await sql(target.url(db), `SELECT table_name AS t, part, finished_at::text AS at FROM pgshift.copy_progress WHERE state = 'done' AND part = 0`).catch(() => []);
      expect(keptAfter).toEqual(expect.arrayContaining(keptBefore));
    }
    expect(kills).toBe(6);
    const last = await finish(db, file);
    said += last;
    const streams = await sql(target.url(db), `SELECT group_name AS g, state FROM pgshift.stream ORDER BY 1`);
    expect(streams.every((x) => x.state === 'loaded')).toBe(true);
    // The kills after whole tables had landed were resumed (not reloaded): resume streams carry the rest.
    expect(said).toMatch(/resuming — [1-9]\d* table\(s\) kept/);
    expect(streams.some((x) => /_r\d+$/.test(x.g))).toBe(true);
    const status = await sql(target.url(db), `SELECT detail FROM pgshift.phase WHERE phase LIKE 'full-load:resume:%'`);
    expect(status[0].detail.kept.tables).toBeGreaterThan(0);
    console.log(`resume-kill ${db}: streams ${streams.map((x) => x.g).join(', ')}; last run: ${said.split("\n").filter((l) => /resum/.test(l)).join(" | ")}`);
    await cdcVerifyCutover(db);
  });

  it('paused replica: five random points, each run continuing from the still-paused replica', async () => {
    const db = 'rk_paused';
    await sql(target.url(), `CREATE DATABASE ${db}`);
    bench = pgbenchStart(primary.url(SOURCES[db]), { clients: 2, seconds: 900, rate: 40 });
    const file = planFile(db, 'paused-replica');
    const rnd = random(seed + 1);
    let kills = 0;
    for (const p of [...middlePoints(rnd, 4), points.postData(db)]) if ((await killAt(db, file, p)).killed) kills++;
    expect(kills).toBe(5);
    await finish(db, file);
    expect((await sql(replica.url(), 'SELECT pg_is_wal_replay_paused() AS p'))[0].p).toBe(false);
    await cdcVerifyCutover(db);
  });
});
