import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startStandby, type LocalCluster } from '../../src/local/cluster.js';
import { SampleWriter } from '../../src/local/sample.js';
import { startCdc, stopCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { seedSample, sql, startServer } from '../harness/servers.js';

/**
 * kill -9 of the full load at several points, then the same command again: the load finishes
 * with no duplicate and no missing row (checked after CDC, under writes, against the source).
 *
 *   paused-replica: killed mid-copy (some parts of a split table done), killed again while
 *   indexes build, then completed — continuing each time from the replica that stayed paused.
 *   exported: killed mid-copy and again mid-resume; the same command keeps the finished tables at
 *   their snapshot and carries the rest from a newer one (a resume stream) each time.
 */
let primary: LocalCluster;
let replica: LocalCluster;
let target: LocalCluster;
const BIG_TABLES = ['public.big', 'public.heap_only', 'public.wide'];
const ALL_TABLES = [...SAMPLE_TABLES, ...BIG_TABLES];

beforeAll(async () => {
  [primary, target] = await Promise.all([startServer(15, 'rs-primary'), startServer(17, 'rs-target')]);
  for (const c of [primary, target]) await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'app-secret-pw'`);
  await sql(primary.url(), 'CREATE DATABASE shop');
  await seedSample(primary.url('shop'), 0.05);
  await sql(primary.url('shop'), `
    CREATE TABLE big (id bigint PRIMARY KEY, payload text, n int, at timestamptz DEFAULT now());
    INSERT INTO big SELECT i, repeat(md5(i::text), 3), i % 97 FROM generate_series(1, 400000) i;
    CREATE INDEX big_n ON big (n, id);
    CREATE INDEX big_payload ON big (payload);
    CREATE INDEX big_at ON big (at, n);
    CREATE TABLE heap_only (a int, b text);
    INSERT INTO heap_only SELECT i % 1000, repeat('h', 120) FROM generate_series(1, 150000) i;
    CREATE TABLE wide (id int PRIMARY KEY, doc jsonb);
    INSERT INTO wide SELECT i, jsonb_build_object('i', i, 'pad', repeat('w', 300)) FROM generate_series(1, 60000) i;
    ANALYZE;`);
  replica = await startStandby(primary, 'rs-replica');
});

afterAll(async () => {
  await replica?.destroy();
});

function planFile(db: string, snapshot: 'exported' | 'paused-replica', extra = ''): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-resume-'));
  const file = path.join(dir, 'migration.yml');
  writeFileSync(
    file,
    `version: 1\nname: ${db}\nsnapshot: ${snapshot}\nsource: { url: "\${S}", replicaUrl: "\${R}" }\ntarget: { url: "\${T}" }\ncutover: { fence: database }\n` +
      `fullLoad: { jobs: 2, indexJobs: 1, splitTablesLargerThan: 8MB, maxPartsPerTable: 6 }\n${extra}${/^cdc:/m.test(extra) ? '' : '\ncdc: { replicaIdentityFull: [public.heap_only] }\n'}`,
  );
  return file;
}

const env = (db: string) => ({ ...process.env, S: primary.url('shop'), R: replica.url('shop'), T: target.url(db) });

function start(db: string, file: string, extra: string[] = []): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  let stderr = '';
  const child = execFile(process.execPath, ['bin/pgshift.js', 'full-load', '-c', file, ...extra], { env: env(db) });
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

/** kill -9 the load as soon as `when` holds on the target (polled every 10 ms). */
async function killWhen(db: string, file: string, when: () => Promise<boolean>): Promise<void> {
  const run = start(db, file);
  let exited = false;
  void run.done.then(() => (exited = true));
  while (!exited && !(await when().catch(() => false))) await new Promise((r) => setTimeout(r, 10));
  run.child.kill('SIGKILL');
  const r = await run.done;
  expect(r.signal, `the load ended before the kill point: ${r.stderr}`).toBe('SIGKILL');
}

const partsDone = async (db: string) => {
  const r = await sql(target.url(db), `SELECT count(*)::int AS n FROM pgshift.copy_progress WHERE table_name = 'big' AND part > 0 AND state = 'done'`);
  return r[0].n;
};
const buildingIndex = async (db: string) =>
  (await sql(target.url(db), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'CREATE%INDEX%' AND state = 'active'`, [db]))[0].n > 0;
const replayPaused = async () => (await sql(replica.url(), 'SELECT pg_is_wal_replay_paused() AS p'))[0].p === true;

async function cdcAndCompare(db: string, file: string, extra = '') {
  const ctx = phaseContext(parsePlan(`version: 1\nname: ${db}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\ncutover: { fence: database }\n${extra}`, file, env(db)), silentLogger);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 60_000);
  const [a, b] = await Promise.all([tableDigests(primary.url('shop'), ALL_TABLES), tableDigests(target.url(db), ALL_TABLES)]);
  expect(b).toEqual(a);
  await stopCdc(ctx);
}

describe('full load resumed after kill -9', () => {
  it('paused-replica: killed mid-copy and while indexes build, continued from the still-paused replica, exact', async () => {
    await sql(target.url(), 'CREATE DATABASE r1');
    const file = planFile('r1', 'paused-replica');
    const writer = new SampleWriter(primary.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
    writer.start();
    try {
      await killWhen('r1', file, async () => (await partsDone('r1')) >= 2);
      const finishedParts = () => sql(target.url('r1'), `SELECT part, finished_at::text AS at FROM pgshift.copy_progress WHERE table_name = 'big' AND part > 0 AND state = 'done' ORDER BY part`);
      const kept = await finishedParts();
      expect(kept.length).toBeGreaterThanOrEqual(2);
      // kill -9 leaves no chance to resume replay: the next run continues from it.
      expect(await replayPaused()).toBe(true);
      await killWhen('r1', file, () => buildingIndex('r1'));
      expect(await replayPaused()).toBe(true);
      const last = start('r1', file);
      const r = await last.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('still paused at');
      // Parts finished before the first kill were kept, not copied again.
      expect(await finishedParts()).toEqual(expect.arrayContaining(kept));
      expect(await replayPaused()).toBe(false);
    } finally {
      await writer.stop();
    }
    expect(writer.committed).toBeGreaterThan(10);
    await cdcAndCompare('r1', file);
  });

  it('exported: killed mid-copy and again mid-resume, the same command resumes each time from a newer snapshot, exact', async () => {
    await sql(target.url(), 'CREATE DATABASE r2');
    const file = planFile('r2', 'exported');
    const writer = new SampleWriter(primary.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
    writer.start();
    const finishedWhole = async () => (await sql(target.url('r2'), `SELECT count(*)::int AS n FROM pgshift.copy_progress WHERE part = 0 AND state = 'done'`))[0].n;
    const kept = () => sql(target.url('r2'), `SELECT table_name AS t, finished_at::text AS at FROM pgshift.copy_progress WHERE part = 0 AND state = 'done' ORDER BY 1`);
    try {
      // A split table with some of its parts finished, and at least one table finished whole.
      await killWhen('r2', file, async () => (await finishedWhole()) >= 1 && (await partsDone('r2')) >= 1);
      const first = await kept();
      // Killed again once the resume stream carries the rest and copied some of it.
      await killWhen('r2', file, async () => {
        const r = await sql(target.url('r2'), `SELECT count(*)::int AS n FROM pgshift.stream WHERE group_name LIKE '%\\_r%' AND snapshot_lsn IS NOT NULL`);
        return r[0].n >= 1 && (await finishedWhole()) > first.length;
      });
      const again = start('r2', file);
      const r = await again.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/resuming — \d+ table\(s\) kept/);
      // Tables finished before the first kill were kept, not copied again.
      expect(await kept()).toEqual(expect.arrayContaining(first));
      const streams = await sql(target.url('r2'), `SELECT group_name AS g, state FROM pgshift.stream ORDER BY 1`);
      expect(streams.every((x) => x.state === 'loaded')).toBe(true);
      expect(streams.length).toBeGreaterThanOrEqual(2);
    } finally {
      await writer.stop();
    }
    await cdcAndCompare('r2', file);
  });

  it('paused-replica matrix: two --group jobs at once share the paused replica; the last one resumes it', async () => {
    await sql(target.url(), 'CREATE DATABASE r3');
    const groups = `groups:\n  - { name: big, tables: [public.big] }\n  - { name: rest, tables: ["*.*"], exclude: [public.big] }\n`;
    const file = planFile('r3', 'paused-replica', groups);
    const writer = new SampleWriter(primary.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
    writer.start();
    try {
      const [a, b] = await Promise.all([start('r3', file, ['--group', 'big']).done, start('r3', file, ['--group', 'rest']).done]);
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      // One pause, one LSN for both groups; exactly one job resumed replay, and did.
      const streams = await sql(target.url('r3'), `SELECT group_name, snapshot_lsn::text AS lsn, state FROM pgshift.stream ORDER BY 1`);
      expect(streams.map((x) => x.state)).toEqual(['loaded', 'loaded']);
      expect(streams[0].lsn).toBe(streams[1].lsn);
      expect(`${a.stderr}${b.stderr}`.match(/replica replay resumed/g)).toHaveLength(1);
      expect(await replayPaused()).toBe(false);
    } finally {
      await writer.stop();
    }
    await cdcAndCompare('r3', file, groups);
  });
});
