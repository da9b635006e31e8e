import { spawn } from 'node:child_process';
import { CreateEndpointCommand, StartReplicationTaskCommand } from '@aws-sdk/client-database-migration-service';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableMappings, taskSettings } from '../../src/core/dms.js';
import { silentLogger } from '../../src/core/log.js';
import { parseLsn } from '../../src/core/lsn.js';
import type { LocalCluster } from '../../src/local/cluster.js';
import { dmsStatus, restartDmsCdc, startDmsCdc } from '../../src/phases/cdc-dms.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { FakeDms } from '../harness/fake-dms.js';
import { changeLsns, setTables, slotChanges } from '../harness/pglogical.js';
import { dmsCdcYaml, testPlan, TEST_INSTANCE_ARN, writePlanFile } from '../harness/plan.js';
import { sql, startServer } from '../harness/servers.js';

/**
 * The DMS engine resumes a crashed full load. A CLI full load (cdc.engine dms, pglogical, one
 * group whose batch-apply table makes a second stream) is killed with SIGKILL while its copy worker
 * is held on the last table (a lock on the target, never a sleep); the same command resumes:
 * finished tables are kept at the group's snapshot, the unfinished one leaves the group's
 * replication sets and is copied at the snapshot of a resume stream g1_r1 (its own slot and sets).
 * `cdc start` then creates one task per stream — the resume stream's maps exactly its table, from
 * its own slot's LSN — status reports it, teardown removes it. Real servers (PostgreSQL 15 with
 * pglogical, 17), DMS mocked (test/harness/fake-dms.ts).
 */
const RI = TEST_INSTANCE_ARN;
const dmsPlan = (plugin = 'pglogical') => `groups:
  - { name: g1, tables: [shop.big, shop.mid, shop.orders, shop.small] }
tables:
  shop.orders: { batchApply: true }
fullLoad: { jobs: 1, indexJobs: 1 }
${dmsCdcYaml(RI, plugin)}
`;

// Copied largest first by one worker: big, mid, orders, then small — the table held.
const SCHEMA = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.big (id bigint PRIMARY KEY, v text);
  CREATE TABLE shop.mid (id bigint PRIMARY KEY, v text);
  CREATE TABLE shop.orders (id bigint PRIMARY KEY, note text);
  CREATE TABLE shop.small (id bigint PRIMARY KEY, v text);
  INSERT INTO shop.big SELECT g, repeat('b', 200) FROM generate_series(1, 60000) g;
  INSERT INTO shop.mid SELECT g, repeat('m', 200) FROM generate_series(1, 20000) g;
  INSERT INTO shop.orders SELECT g, repeat('o', 100) FROM generate_series(1, 5000) g;
  INSERT INTO shop.small SELECT g, 's' || g FROM generate_series(1, 500) g;
  ANALYZE;`;

let source: LocalCluster;
let target: LocalCluster;
let sourceUrl: string;
let targetUrl: string;
let ctx: PhaseContext;
let fake: FakeDms;
let file: string;

async function useDatabase(db: string, plugin = 'pglogical'): Promise<void> {
  for (const c of [source, target]) await sql(c.url(), `CREATE DATABASE ${db}`);
  sourceUrl = source.url(db);
  targetUrl = target.url(db);
  await sql(sourceUrl, SCHEMA);
  ctx = phaseContext(testPlan(sourceUrl, targetUrl, dmsPlan(plugin)), silentLogger);
  file = writePlanFile(dmsPlan(plugin));
}

beforeAll(async () => {
  [source, target] = await Promise.all([startServer(15, 'rdms-src', { shared_preload_libraries: "'pglogical'" }), startServer(17, 'rdms-tgt')]);
  for (const c of [source, target]) await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'app-secret-pw'`);
  await useDatabase('shop');
  fake = new FakeDms(RI);
});
afterAll(() => {
  fake?.dms.restore();
  fake?.cw.restore();
});

function fullLoad(): { pid: number; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  let stderr = '';
  const child = spawn(process.execPath, ['bin/pgshift.js', 'full-load', '-c', file], { env: { ...process.env, SOURCE_URL: sourceUrl, TARGET_URL: targetUrl }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => (stderr += d));
  return { pid: child.pid!, done: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr }))) };
}

const doneTables = async () => (await sql(targetUrl, `SELECT table_name AS t FROM pgshift.copy_progress WHERE state = 'done' AND part = 0 ORDER BY 1`).catch(() => [])).map((r) => r.t as string);
const waitingOn = async (table: string) =>
  (await sql(targetUrl, `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)`, [table]).catch(() => [{ n: 0 }]))[0].n > 0;



const copyRunning = async (table: string) =>
  (await sql(targetUrl, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1`, [`COPY %${table}% FROM STDIN%`]))[0].n > 0;

const streams = () => sql(targetUrl, `SELECT group_name AS g, slot_name AS slot, snapshot_lsn::text AS lsn, state FROM pgshift.stream ORDER BY 1`);

/**
 * Load until the worker is held on the last table, SIGKILL the whole process group, write to the
 * source, and load again: returns the streams before and the re-run's output.
 */
async function killHeldThenResume() {
  // The holder's session is open before the load starts: taking the lock must not race the copy.
  const holder = new pg.Client({ connectionString: targetUrl });
  await holder.connect();
  const run = fullLoad();
  let exited = false;
  void run.done.then(() => (exited = true));
  // Hold: once the first table's COPY runs (the tables exist; small's turn comes three tables
  // later), lock the last one on the target (SHARE blocks its copy), then wait until the worker is
  // blocked on it — every other table is committed by then.
  while (!exited && !(await copyRunning('big'))) await new Promise((r) => setTimeout(r, 5));
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE shop.small IN SHARE MODE');
  while (!exited && !(await waitingOn('shop.small'))) await new Promise((r) => setTimeout(r, 5));
  expect(exited).toBe(false);
  process.kill(-run.pid, 'SIGKILL');
  expect((await run.done).signal).toBe('SIGKILL');
  await holder.query('ROLLBACK');
  await holder.end();
  expect(await doneTables()).toEqual(['big', 'mid', 'orders']);
  const before = await streams();
  expect(before.map((x) => [x.g, x.state])).toEqual([['g1', 'loading'], ['g1_batch', 'loading']]);

  // Changes after the group's snapshot: big's stays out of the kept copy (the group's task
  // applies it), small's is in the resume stream's newer copy.
  await sql(sourceUrl, `UPDATE shop.big SET v = 'big after the kill' WHERE id = 1; INSERT INTO shop.small VALUES (900001, 'small after the kill')`);
  const again = await fullLoad().done;
  expect(again.code, again.stderr).toBe(0);
  return { before, stderr: again.stderr };
}

describe('DMS engine: a full load killed mid-copy resumes; cdc start adds a task for the resume stream', () => {
  it('SIGKILL while the last table is held: the re-run keeps the finished tables and bridges the held one to g1_r1', async () => {
    const { before, stderr } = await killHeldThenResume();
    expect(stderr).toMatch(/resuming — 3 table\(s\) kept/);
    expect(stderr).toMatch(/resume stream g1_r1 at \S+ carries 1 table/);

    const after = await streams();
    expect(after.map((x) => [x.g, x.slot, x.state])).toEqual([
      ['g1', 'pgshift_shop_g1', 'loaded'],
      ['g1_batch', 'pgshift_shop_g1_batch', 'loaded'],
      ['g1_r1', 'pgshift_shop_g1_r1', 'loaded'],
    ]);
    // The kept tables are at the group's snapshot; the resume stream's is newer.
    expect(after.slice(0, 2).map((x) => x.lsn)).toEqual(before.map((x) => x.lsn));
    expect(parseLsn(after[2].lsn) > parseLsn(after[0].lsn)).toBe(true);
    expect(await sql(targetUrl, `SELECT v FROM shop.big WHERE id = 1`)).toEqual([{ v: 'b'.repeat(200) }]);
    expect(await sql(targetUrl, `SELECT count(*)::int AS n, max(id)::int AS m FROM shop.small`)).toEqual([{ n: 501, m: 900001 }]);
    // The held table left the group's sets (the DMS publication) for the resume stream's own.
    expect(await setTables(sourceUrl, 'pgshift_shop_g1')).toEqual(['big', 'heartbeat_g1', 'mid']);
    expect(await setTables(sourceUrl, 'ipgshift_shop_g1')).toEqual(['big', 'heartbeat_g1', 'mid']);
    expect(await setTables(sourceUrl, 'pgshift_shop_g1_batch')).toEqual(['heartbeat_g1_batch', 'orders']);
    expect(await setTables(sourceUrl, 'pgshift_shop_g1_r1')).toEqual(['heartbeat_g1_r1', 'small']);
    expect(await setTables(sourceUrl, 'ipgshift_shop_g1_r1')).toEqual(['heartbeat_g1_r1', 'small']);
    const summary = (await sql(targetUrl, `SELECT detail FROM pgshift.phase WHERE phase = 'full-load:resume:g1'`))[0].detail;
    expect(summary).toMatchObject({ kept: { tables: 3 }, pending: 1, stream: 'g1_r1', snapshotLsn: after[2].lsn });
  });

  it('cdc start creates the resume stream its own task: its table mapped, from its own slot and LSN; the group tasks map the rest', async () => {
    // Committed durably: decoding reads flushed WAL only.
    await sql(sourceUrl, `SET synchronous_commit = on; INSERT INTO shop.small VALUES (900002, 'streamed'); UPDATE shop.big SET v = 'streamed' WHERE id = 2; INSERT INTO shop.orders VALUES (900002, 'streamed')`);
    // Exactly once, as each task will read its slot (peeked, not consumed): small's row written
    // before the resume is in its copy, not in the resume stream; the one written after, in the
    // resume stream only (small had left the group's sets). big's update after the group's
    // snapshot is in the group's slot. (small's earlier row may still be decoded from the group's
    // slot — it was in its sets then — and is dropped by that task's mapping, asserted below.)
    const rec = Object.fromEntries((await streams()).map((x) => [x.g, x]));
    const carried = async (stream: string) => (await slotChanges(sourceUrl, rec[stream].slot, rec[stream].lsn)).map((c) => c.data).join('\n');
    const r1 = await carried('g1_r1');
    expect(r1).toContain('900002');
    expect(r1).not.toContain('900001');
    const own = await carried('g1');
    expect(own).toContain('big after the kill');
    expect(own).not.toContain('900002');
    const started = await startDmsCdc(ctx, fake.clients);
    const tasks = fake.createTaskInputs();
    expect(tasks.map((t) => t.ReplicationTaskIdentifier)).toEqual(['pgshift-shop-g1-single', 'pgshift-shop-g1-batch', 'pgshift-shop-g1-r1']);
    const hb = (name: string, batchApply = false) => ({ schema: 'pgshift', name, batchApply });
    const t = (name: string, batchApply = false) => ({ schema: 'shop', name, batchApply });
    expect(tasks[0].TableMappings).toEqual(tableMappings([t('big'), t('mid'), hb('heartbeat_g1')]));
    expect(tasks[1].TableMappings).toEqual(tableMappings([t('orders', true), hb('heartbeat_g1_batch', true)]));
    expect(tasks[2]).toEqual({
      ReplicationTaskIdentifier: 'pgshift-shop-g1-r1',
      SourceEndpointArn: fake.endpoints.get('pgshift-shop-g1-r1-source')!.arn,
      TargetEndpointArn: fake.endpoints.get('pgshift-shop-target')!.arn,
      ReplicationInstanceArn: RI,
      MigrationType: 'cdc',
      TableMappings: tableMappings([t('small'), hb('heartbeat_g1_r1')]),
      ReplicationTaskSettings: taskSettings({ lobMaxSizeKb: 32, batchApply: false }),
      CdcStartPosition: expect.any(String),
      Tags: [{ Key: 'pgshift:migration', Value: 'shop' }, { Key: 'pgshift:group', Value: 'g1' }, { Key: 'pgshift:role', Value: 'task-r1' }],
    });
    const endpoint = fake.dms.commandCalls(CreateEndpointCommand).map((c) => c.args[0].input).find((e) => e.EndpointIdentifier === 'pgshift-shop-g1-r1-source')!;
    expect(endpoint.PostgreSQLSettings).toMatchObject({ PluginName: 'pglogical', SlotName: 'pgshift_shop_g1_r1' });
    // Each task starts at the first change of its own slot at or after that stream's snapshot LSN.
    const st = await streams();
    for (const [task, stream] of [[tasks[0], 'g1'], [tasks[1], 'g1_batch'], [tasks[2], 'g1_r1']] as const) {
      const rec = st.find((x) => x.g === stream)!;
      expect(parseLsn(task.CdcStartPosition!)).toBe((await changeLsns(sourceUrl, rec.slot, rec.lsn))[0]);
      expect(parseLsn(task.CdcStartPosition!) >= parseLsn(rec.lsn)).toBe(true);
    }
    expect(fake.dms.commandCalls(StartReplicationTaskCommand).map((c) => c.args[0].input)).toEqual(
      tasks.map((x) => ({ ReplicationTaskArn: fake.byIdentifier(x.ReplicationTaskIdentifier!)!.ReplicationTaskArn, StartReplicationTaskType: 'start-replication', CdcStartPosition: x.CdcStartPosition })),
    );
    expect(started.tasks.map((x) => [x.identifier, x.stream, x.status])).toEqual([
      ['pgshift-shop-g1-single', 'g1', 'running'],
      ['pgshift-shop-g1-batch', 'g1_batch', 'running'],
      ['pgshift-shop-g1-r1', 'g1_r1', 'running'],
    ]);
    expect((await streams()).map((x) => x.state)).toEqual(['streaming', 'streaming', 'streaming']);
  });

  it('status reports the resume stream task and slot; teardown removes its task, endpoint, slot and sets', async () => {
    const status = await dmsStatus(ctx, fake.clients, new Date(), 0);
    expect(status.tasks.map((x) => x.identifier)).toContain('pgshift-shop-g1-r1');
    expect(status.slots.map((x) => x.slot).sort()).toEqual(['pgshift_shop_g1', 'pgshift_shop_g1_batch', 'pgshift_shop_g1_r1']);
    const r = await runTeardown(ctx);
    expect(r.dropped).toEqual(
      expect.arrayContaining(['DMS task pgshift-shop-g1-r1', 'DMS endpoint pgshift-shop-g1-r1-source', 'slot pgshift_shop_g1_r1 (source)', 'replication sets pgshift_shop_g1_r1, ipgshift_shop_g1_r1 (source)']),
    );
    expect(fake.tasks.size).toBe(0);
    expect(await sql(sourceUrl, 'SELECT count(*)::int AS n FROM pg_replication_slots')).toEqual([{ n: 0 }]);
  });

  it('cdc restart --group of a resumed group deletes the resume stream task and endpoint, drops its slot and sets, and maps every table in the group tasks again', async () => {
    await useDatabase('shop_restart');
    fake.reset();
    await killHeldThenResume();
    await sql(sourceUrl, `SET synchronous_commit = on; INSERT INTO shop.small VALUES (900003, 'streamed')`);
    await startDmsCdc(ctx, fake.clients);
    expect(fake.byIdentifier('pgshift-shop-g1-r1')?.Status).toBe('running');
    const r = await restartDmsCdc(ctx, { group: 'g1' }, fake.clients);
    expect(r.groups).toEqual(['g1']);
    expect(fake.byIdentifier('pgshift-shop-g1-r1')).toBeUndefined();
    expect([...fake.endpoints.keys()].sort()).toEqual(['pgshift-shop-g1-batch-source', 'pgshift-shop-g1-source', 'pgshift-shop-target']);
    expect((await streams()).map((x) => [x.g, x.state])).toEqual([['g1', 'streaming'], ['g1_batch', 'streaming']]);
    expect((await sql(sourceUrl, `SELECT slot_name AS s FROM pg_replication_slots ORDER BY 1`)).map((x) => x.s)).toEqual(['pgshift_shop_g1', 'pgshift_shop_g1_batch']);
    expect(await setTables(sourceUrl, 'pgshift_shop_g1')).toEqual(['big', 'heartbeat_g1', 'mid', 'small']);
    expect(await setTables(sourceUrl, 'pgshift_shop_g1_r1')).toEqual([]);
    const t = (name: string) => ({ schema: 'shop', name, batchApply: false });
    const again = fake.createTaskInputs().slice(3);
    expect(again.map((x) => x.ReplicationTaskIdentifier)).toEqual(['pgshift-shop-g1-single', 'pgshift-shop-g1-batch']);
    expect(again[0].TableMappings).toEqual(tableMappings([t('big'), t('mid'), t('small'), { schema: 'pgshift', name: 'heartbeat_g1', batchApply: false }]));
    expect(await sql(targetUrl, `SELECT count(*)::int AS n FROM shop.small`)).toEqual([{ n: 502 }]);
    await runTeardown(ctx);
    expect(fake.endpoints.size).toBe(0);
  });

  it('test_decoding: no sets to leave — the carried list in the journal alone keeps the moved table out of the group task mapping', async () => {
    await useDatabase('shop_td', 'test_decoding');
    fake.reset();
    const { stderr } = await killHeldThenResume();
    expect(stderr).toMatch(/resume stream g1_r1 at \S+ carries 1 table/);
    expect((await sql(sourceUrl, `SELECT slot_name AS s, plugin FROM pg_replication_slots ORDER BY 1`)).map((x) => [x.s, x.plugin])).toEqual([
      ['pgshift_shop_g1', 'test_decoding'],
      ['pgshift_shop_g1_batch', 'test_decoding'],
      ['pgshift_shop_g1_r1', 'test_decoding'],
    ]);
    expect(await sql(targetUrl, `SELECT count(*)::int AS n FROM shop.small`)).toEqual([{ n: 501 }]);
    await sql(sourceUrl, `SET synchronous_commit = on; INSERT INTO shop.small VALUES (900004, 'streamed'); UPDATE shop.big SET v = 'streamed' WHERE id = 3`);
    await startDmsCdc(ctx, fake.clients);
    const tasks = fake.createTaskInputs();
    const t = (name: string) => ({ schema: 'shop', name, batchApply: false });
    expect(tasks.map((x) => [x.ReplicationTaskIdentifier, x.TableMappings])).toEqual([
      ['pgshift-shop-g1-single', tableMappings([t('big'), t('mid'), { schema: 'pgshift', name: 'heartbeat_g1', batchApply: false }])],
      ['pgshift-shop-g1-batch', tableMappings([{ schema: 'shop', name: 'orders', batchApply: true }, { schema: 'pgshift', name: 'heartbeat_g1_batch', batchApply: true }])],
      ['pgshift-shop-g1-r1', tableMappings([t('small'), { schema: 'pgshift', name: 'heartbeat_g1_r1', batchApply: false }])],
    ]);
    const r1 = (await streams()).find((x) => x.g === 'g1_r1')!;
    expect(parseLsn(tasks[2].CdcStartPosition!) >= parseLsn(r1.lsn)).toBe(true);
    const endpoint = fake.dms.commandCalls(CreateEndpointCommand).map((c) => c.args[0].input).find((e) => e.EndpointIdentifier === 'pgshift-shop-g1-r1-source')!;
    expect(endpoint.PostgreSQLSettings).toMatchObject({ PluginName: 'test-decoding', SlotName: 'pgshift_shop_g1_r1' });
    await runTeardown(ctx);
    expect(fake.tasks.size).toBe(0);
    expect(await sql(sourceUrl, 'SELECT count(*)::int AS n FROM pg_replication_slots')).toEqual([{ n: 0 }]);
  });
});
