import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import type pg from 'pg';
import os from 'node:os';
import path from 'node:path';
import {
  CreateEndpointCommand,
  CreateReplicationTaskCommand,
  DeleteEndpointCommand,
  DeleteReplicationTaskCommand,
  StartReplicationTaskCommand,
  StopReplicationTaskCommand,
} from '@aws-sdk/client-database-migration-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServerUrl } from '../../src/config/url.js';
import { tableMappings, taskSettings } from '../../src/core/dms.js';
import { silentLogger } from '../../src/core/log.js';
import { parseLsn } from '../../src/core/lsn.js';
import { dmsStatus, restartDmsCdc, resumeDmsCdc, startDmsCdc, stopDmsCdc, type DmsStatus } from '../../src/phases/cdc-dms.js';
import { acknowledgeCdcErrors, statusProblems } from '../../src/phases/cdc.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { runCutover } from '../../src/phases/cutover.js';
import { runVerify } from '../../src/phases/verify.js';
import { cdcMarkdown } from '../../src/report/markdown.js';
import { FakeDms } from '../harness/fake-dms.js';
import { changeLsns, setTables } from '../harness/pglogical.js';
import { dmsCdcYaml, testPlan, TEST_INSTANCE_ARN } from '../harness/plan.js';
import { repeatUntilStopped } from '../harness/load.js';
import { sql, startServer, withClients } from '../harness/servers.js';
import type { LocalCluster } from '../../src/local/cluster.js';

/**
 * The DMS engine end to end on real servers — PostgreSQL 15 with Debian's pglogical as the source,
 * 17 as the target — with AWS DMS and CloudWatch mocked (test/harness/fake-dms.ts). The database
 * side is real: the full load creates the pglogical slots and replication sets, the start LSN is
 * peeked from the slots, apply exceptions are read from the target's control table, a partial
 * restart reloads a group from a new slot, teardown leaves nothing behind. Every DMS request is
 * asserted as sent.
 */
const RI = TEST_INSTANCE_ARN;

let source: LocalCluster;
let target: LocalCluster;
let sourceUrl: string;
let targetUrl: string;
let ctx: PhaseContext;
let fake: FakeDms;

const plan = (plugin: string, dmsExtra = '') => `groups:
  - { name: g1, tables: [shop.orders, shop.items] }
  - { name: g2, tables: ["shop.*"] }
tables:
  shop.orders: { batchApply: true }
  shop.docs: { lobMode: unlimited, lobMaxSizeKb: 64 }
${dmsCdcYaml(RI, plugin)}
${dmsExtra}`;

const SCHEMA = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.orders (id bigint PRIMARY KEY, note text);
  CREATE TABLE shop.items (id bigint PRIMARY KEY, order_id bigint, qty int);
  CREATE TABLE shop.docs (id int PRIMARY KEY, body jsonb);
  CREATE TABLE shop.audit (at timestamptz, what text);
  CREATE TABLE shop.parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE shop.parted_eu PARTITION OF shop.parted FOR VALUES IN ('eu');
  CREATE TABLE shop.parted_us PARTITION OF shop.parted FOR VALUES IN ('us');
  INSERT INTO shop.orders SELECT g, 'order ' || g FROM generate_series(1, 2000) g;
  INSERT INTO shop.items SELECT g, g / 3, g % 7 FROM generate_series(1, 5000) g;
  INSERT INTO shop.docs SELECT g, jsonb_build_object('n', g, 'text', repeat('x', 3000)) FROM generate_series(1, 300) g;
  INSERT INTO shop.audit SELECT now(), 'a' || g FROM generate_series(1, 100) g;
  INSERT INTO shop.parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 400) g;`;

async function freshDatabases(db: string): Promise<void> {
  for (const c of [source, target]) await sql(c.url(), `CREATE DATABASE ${db}`);
  sourceUrl = source.url(db);
  targetUrl = target.url(db);
  await sql(sourceUrl, SCHEMA);
}

beforeAll(async () => {
  [source, target] = await Promise.all([startServer(15, 'dms-e2e-src', { shared_preload_libraries: "'pglogical'" }), startServer(17, 'dms-e2e-tgt')]);
  for (const c of [source, target]) await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'app-secret-pw'`);
  await freshDatabases('shop');
  ctx = phaseContext(testPlan(sourceUrl, targetUrl, plan('pglogical')), silentLogger);
  fake = new FakeDms(RI);
});
afterAll(() => {
  fake?.dms.restore();
  fake?.cw.restore();
});

const createTaskInputs = () => fake.createTaskInputs();



/** The heartbeat rows of the running tasks' streams copied to the target, and their slots confirmed. */
async function relayHeartbeats(s: pg.Client, t: pg.Client): Promise<void> {
  const running = [...fake.tasks.values()].filter((x) => x.task.Status === 'running').map((x) => x.tags.find((y) => y.Key === 'pgshift:role')!.Value === 'task-batch' ? `${x.tags.find((y) => y.Key === 'pgshift:group')!.Value}_batch` : x.tags.find((y) => y.Key === 'pgshift:group')!.Value);
  for (const stream of running) {
    const table = `pgshift.heartbeat_${stream}`;
    const rows = await s.query(`SELECT group_name, beat_at, seq, marker FROM ${table}`);
    for (const r of rows.rows) await t.query(`UPDATE ${table} SET beat_at = $2, seq = $3, marker = $4 WHERE group_name = $1`, [r.group_name, r.beat_at, r.seq, r.marker]);
    await s.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [`pgshift_shop_${stream}`]);
  }
}

async function streams() {
  return sql(targetUrl, `SELECT group_name AS g, slot_name AS slot, snapshot_lsn::text AS lsn, state FROM pgshift.stream ORDER BY 1`);
}

describe('CDC with AWS DMS (pglogical source, DMS mocked)', () => {
  let started: DmsStatus;

  it('the full load prepares one pglogical slot and two replication sets per stream; a mixed batch-apply group gets a second stream', async () => {
    await runFullLoad(ctx);
    const slots = await sql(sourceUrl, `SELECT slot_name AS s, plugin FROM pg_replication_slots ORDER BY 1`);
    expect(slots).toEqual([
      { s: 'pgshift_shop_g1', plugin: 'pglogical' },
      { s: 'pgshift_shop_g1_batch', plugin: 'pglogical' },
      { s: 'pgshift_shop_g2', plugin: 'pglogical' },
    ]);
    // g1 splits: items (no batch apply) stay on the group's stream, orders go to its batch stream.
    expect(await setTables(sourceUrl, 'pgshift_shop_g1')).toEqual(['heartbeat_g1', 'items']);
    expect(await setTables(sourceUrl, 'ipgshift_shop_g1')).toEqual(['heartbeat_g1', 'items']);
    expect(await setTables(sourceUrl, 'pgshift_shop_g1_batch')).toEqual(['heartbeat_g1_batch', 'orders']);
    // Leaves, never the parent; the key-less table only in the insert/truncate set.
    expect(await setTables(sourceUrl, 'ipgshift_shop_g2')).toEqual(['audit', 'docs', 'heartbeat_g2', 'parted_eu', 'parted_us']);
    expect(await setTables(sourceUrl, 'pgshift_shop_g2')).toEqual(['docs', 'heartbeat_g2', 'parted_eu', 'parted_us']);
    // The batch stream shares its group's snapshot LSN.
    const st = await streams();
    expect(st.map((x) => [x.g, x.state])).toEqual([['g1', 'loaded'], ['g1_batch', 'loaded'], ['g2', 'loaded']]);
    expect(st[0].lsn).toBe(st[1].lsn);
    expect(await sql(targetUrl, 'SELECT count(*)::int AS n FROM shop.orders')).toEqual([{ n: 2000 }]);
  });

  it('cdc start creates the endpoints and one CDC-only task per stream from the checked LSN, then start-replication once', async () => {
    // Changes after the snapshot, so that each slot has a change position to start from.
    await sql(sourceUrl, `INSERT INTO shop.items VALUES (900001, 1, 1)`);
    await sql(sourceUrl, `INSERT INTO shop.orders VALUES (900001, 'after')`);
    await sql(sourceUrl, `UPDATE shop.docs SET body = body || '{"v": 2}' WHERE id = 1`);
    started = await startDmsCdc(ctx, fake.clients);

    const src = parseServerUrl(sourceUrl);
    const tgt = parseServerUrl(targetUrl);
    const endpoints = fake.dms.commandCalls(CreateEndpointCommand).map((c) => c.args[0].input);
    expect(endpoints[0]).toEqual({
      EndpointIdentifier: 'pgshift-shop-target',
      EndpointType: 'target',
      EngineName: 'postgres',
      SslMode: 'require',
      ServerName: tgt.host,
      Port: tgt.port,
      DatabaseName: 'shop',
      Username: tgt.user,
      Password: tgt.password,
      PostgreSQLSettings: { AfterConnectScript: "SET session_replication_role = 'replica'" },
      Tags: [{ Key: 'pgshift:migration', Value: 'shop' }, { Key: 'pgshift:group', Value: '*' }, { Key: 'pgshift:role', Value: 'target-endpoint' }],
    });
    expect(endpoints.slice(1).map((e) => [e.EndpointIdentifier, e.PostgreSQLSettings])).toEqual(
      ['g1', 'g1_batch', 'g2'].map((s) => [
        `pgshift-shop-${s.replace('_', '-')}-source`,
        { PluginName: 'pglogical', SlotName: `pgshift_shop_${s}`, HeartbeatEnable: true, HeartbeatFrequency: 5, CaptureDdls: false, FailTasksOnLobTruncation: true },
      ]),
    );
    expect(endpoints[1]).toMatchObject({ EndpointType: 'source', ServerName: src.host, Port: src.port, DatabaseName: 'shop' });

    const st = await streams();
    const tasks = createTaskInputs();
    expect(tasks.map((t) => t.ReplicationTaskIdentifier)).toEqual(['pgshift-shop-g1-single', 'pgshift-shop-g1-batch', 'pgshift-shop-g2']);
    const hb = (name: string, batchApply = false) => ({ schema: 'pgshift', name, batchApply });
    expect(tasks[0]).toMatchObject({
      MigrationType: 'cdc',
      ReplicationInstanceArn: RI,
      SourceEndpointArn: fake.endpoints.get('pgshift-shop-g1-source')!.arn,
      TargetEndpointArn: fake.endpoints.get('pgshift-shop-target')!.arn,
      TableMappings: tableMappings([{ schema: 'shop', name: 'items', batchApply: false }, hb('heartbeat_g1')]),
      ReplicationTaskSettings: taskSettings({ lobMaxSizeKb: 32, batchApply: false }),
      Tags: [{ Key: 'pgshift:migration', Value: 'shop' }, { Key: 'pgshift:group', Value: 'g1' }, { Key: 'pgshift:role', Value: 'task-single' }],
    });
    expect(tasks[1]).toMatchObject({
      SourceEndpointArn: fake.endpoints.get('pgshift-shop-g1-batch-source')!.arn,
      TableMappings: tableMappings([{ schema: 'shop', name: 'orders', batchApply: true }, hb('heartbeat_g1_batch', true)]),
      ReplicationTaskSettings: taskSettings({ lobMaxSizeKb: 32, batchApply: true }),
    });
    expect(tasks[1].ReplicationTaskSettings.TargetMetadata.BatchApplyEnabled).toBe(true);
    // The unlimited-LOB table gets its own no-truncation rule.
    expect(tasks[2].TableMappings.rules).toContainEqual({
      'rule-type': 'table-settings',
      'rule-id': expect.any(String),
      'rule-name': 'shop-docs-lob-no-truncation',
      'object-locator': { 'schema-name': 'shop', 'table-name': 'docs' },
      'lob-settings': { mode: 'unlimited', 'bulk-max-size': '64' },
    });
    const selected = tasks[2].TableMappings.rules.filter((r: { 'rule-type': string }) => r['rule-type'] === 'selection');
    expect(selected.map((r: { 'object-locator': { 'table-name': string } }) => r['object-locator']['table-name']).sort()).toEqual(['audit', 'docs', 'heartbeat_g2', 'parted_eu', 'parted_us']);
    // Each start is the first change of its own slot at or after the snapshot LSN.
    const lsnOf = (slot: string) => st.find((x) => x.slot === slot)!.lsn;
    for (const [task, slot] of [[tasks[0], 'pgshift_shop_g1'], [tasks[1], 'pgshift_shop_g1_batch'], [tasks[2], 'pgshift_shop_g2']] as const) {
      const changes = await changeLsns(sourceUrl, slot, lsnOf(slot));
      expect(parseLsn(task.CdcStartPosition!)).toBe(changes[0]);
      expect(parseLsn(task.CdcStartPosition!) >= parseLsn(lsnOf(slot))).toBe(true);
    }
    expect(fake.dms.commandCalls(StartReplicationTaskCommand).map((c) => c.args[0].input)).toEqual(
      tasks.map((t) => ({ ReplicationTaskArn: fake.byIdentifier(t.ReplicationTaskIdentifier!)!.ReplicationTaskArn, StartReplicationTaskType: 'start-replication', CdcStartPosition: t.CdcStartPosition })),
    );
    expect(started.tasks.map((t) => t.status)).toEqual(['running', 'running', 'running']);
    expect((await streams()).map((x) => x.state)).toEqual(['streaming', 'streaming', 'streaming']);
  });

  it('a second cdc start finds the tasks by tag and sends nothing new', async () => {
    const before = fake.dms.calls().length;
    await startDmsCdc(ctx, fake.clients);
    const calls = fake.dms.calls().slice(before).map((c) => c.args[0].constructor.name);
    expect(calls).not.toContain('CreateReplicationTaskCommand');
    expect(calls).not.toContain('CreateEndpointCommand');
    expect(calls).not.toContain('StartReplicationTaskCommand');
  });

  it('status: a failed task with its StopReason, the CloudWatch latency chart, apply exceptions shown until acknowledged, LOB truncation flagged', async () => {
    fake.fail('pgshift-shop-g2', 'RECOVERABLE_ERROR', 'Last Error Stream Component Fatal error. Task error notification received.');
    // What DMS writes into its control table on the target.
    await sql(targetUrl, `CREATE TABLE public.awsdms_apply_exceptions (task_name varchar(128), table_owner varchar(128), table_name varchar(128), error_time timestamp, statement text, error text)`);
    await sql(targetUrl, `INSERT INTO awsdms_apply_exceptions VALUES ('T3ABC', 'shop', 'docs', now() - interval '1 minute', 'UPDATE shop.docs …', 'Malformed JSON: value truncated')`);
    const r = await dmsStatus(ctx, fake.clients, new Date(), 500);
    expect(r.healthy).toBe(false);
    const g2 = r.tasks.find((t) => t.identifier === 'pgshift-shop-g2')!;
    expect(g2).toMatchObject({ status: 'failed', stopReason: 'RECOVERABLE_ERROR', health: 'failing', latencySourceSeconds: 1, latencyTargetSeconds: 1 });
    expect(g2.problems[0]).toContain('task is failed (RECOVERABLE_ERROR): Last Error Stream Component Fatal error');
    expect(r.tasks.find((t) => t.identifier === 'pgshift-shop-g1-single')!.health).toBe('ok');
    expect(r.applyExceptions).toEqual([expect.objectContaining({ table: 'shop.docs', truncation: true })]);
    expect(r.instance).toMatchObject({ identifier: 'pgshift-test-ri', cpuPercent: 20, problems: [] });
    expect(r.slots.map((x) => x.slot)).toEqual(['pgshift_shop_g1', 'pgshift_shop_g1_batch', 'pgshift_shop_g2']);
    const md = cdcMarkdown(r);
    expect(md).toContain('```mermaid\nxychart-beta');
    expect(md).toContain('line [7, 3, 2]');
    expect(md).toContain('a LOB was truncated');
    // A status reads and changes nothing: the next one (the cut-over gate's too) sees the same
    // exception, until an operator acknowledges it; then only newer ones.
    const again = await dmsStatus(ctx, fake.clients, new Date(), 0);
    expect(again.applyExceptions).toEqual([expect.objectContaining({ table: 'shop.docs', truncation: true })]);
    expect(statusProblems(again).map((p) => p.problem)).toContainEqual(expect.stringMatching(/^LOB truncated at .*Malformed JSON: value truncated$/));
    expect(await acknowledgeCdcErrors(ctx)).toEqual([{ stream: 'dms', errors: 1 }]);
    expect((await dmsStatus(ctx, fake.clients, new Date(), 0)).applyExceptions).toEqual([]);
    expect(await acknowledgeCdcErrors(ctx)).toEqual([{ stream: 'dms', errors: 0 }]);
    await sql(targetUrl, `INSERT INTO awsdms_apply_exceptions VALUES ('T3ABC', 'shop', 'docs', now(), 'UPDATE shop.docs …', 'LOB value truncated')`);
    expect((await dmsStatus(ctx, fake.clients, new Date(), 0)).applyExceptions).toEqual([expect.objectContaining({ table: 'shop.docs', truncation: true })]);
    await acknowledgeCdcErrors(ctx);
  });

  it('resume sends resume-processing to the failed task only, never start-replication again', async () => {
    const before = fake.dms.commandCalls(StartReplicationTaskCommand).length;
    const r = await resumeDmsCdc(ctx, fake.clients);
    const sent = fake.dms.commandCalls(StartReplicationTaskCommand).slice(before).map((c) => c.args[0].input);
    expect(sent).toEqual([{ ReplicationTaskArn: fake.byIdentifier('pgshift-shop-g2')!.ReplicationTaskArn, StartReplicationTaskType: 'resume-processing' }]);
    expect(r.tasks.every((t) => t.status === 'running')).toBe(true);
  });

  it('DDL on the source is recorded the moment it happens (cdc.ddl detect): status shows the statement, the gate refuses until it is applied and acknowledged', async () => {
    // DMS's own objects on the source are not the application's DDL.
    await sql(sourceUrl, 'CREATE TABLE public.awsdms_probe (id int); DROP TABLE public.awsdms_probe');
    await sql(sourceUrl, 'ALTER TABLE shop.items ADD COLUMN note text');
    const r = await dmsStatus(ctx, fake.clients, new Date(), 0);
    expect(r.healthy).toBe(false);
    expect(r.ddlProblems).toEqual([expect.stringMatching(/^DDL #\d+ on the source at .* was not carried to the target — the DMS tasks do not apply DDL: ALTER TABLE shop\.items: ALTER TABLE shop\.items ADD COLUMN note text — apply it on the target by hand/)]);
    expect(cdcMarkdown(r)).toMatch(/- \*\*DDL\*\*: DDL #\d+ on the source/);
    await expect(runCutover(ctx, { dryRun: true })).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('ALTER TABLE shop.items ADD COLUMN note text') });
    await sql(targetUrl, 'ALTER TABLE shop.items ADD COLUMN note text');
    await sql(sourceUrl, 'UPDATE pgshift.ddl_log SET acknowledged_at = now()');
    expect((await dmsStatus(ctx, fake.clients, new Date(), 0)).ddlProblems).toEqual([]);
  });

  it('pause stops the tasks (DMS has no pause) and reports them paused, not failing', async () => {
    const r = await stopDmsCdc(ctx, 'paused', fake.clients);
    expect(fake.dms.commandCalls(StopReplicationTaskCommand)).toHaveLength(3);
    expect(r.tasks.map((t) => [t.status, t.health])).toEqual([['stopped', 'paused'], ['stopped', 'paused'], ['stopped', 'paused']]);
    await resumeDmsCdc(ctx, fake.clients);
  });

  it('full-load --restart of a group with tasks is refused; cdc restart --group deletes its task and reloads it from a new slot', async () => {
    await expect(runFullLoad(ctx, { group: 'g2', restart: true })).rejects.toMatchObject({ code: 'full-load.dms-tasks', exitCode: 3 });
    const old = createTaskInputs()[2];
    // Damage on the target that the reload must repair.
    await sql(targetUrl, `DELETE FROM shop.docs WHERE id <= 10`);
    await sql(sourceUrl, `INSERT INTO shop.parted VALUES (5000, 'eu')`);
    const r = await restartDmsCdc(ctx, { group: 'g2' }, fake.clients);
    expect(r.groups).toEqual(['g2']);
    const g2Arn = fake.dms.commandCalls(DeleteReplicationTaskCommand).map((c) => c.args[0].input.ReplicationTaskArn);
    expect(g2Arn).toEqual([expect.stringContaining(':task:')]);
    const again = createTaskInputs().slice(3);
    expect(again.map((t) => t.ReplicationTaskIdentifier)).toEqual(['pgshift-shop-g2']);
    expect(parseLsn(again[0].CdcStartPosition!) > parseLsn(old.CdcStartPosition!)).toBe(true);
    expect(await sql(targetUrl, 'SELECT count(*)::int AS n FROM shop.docs')).toEqual([{ n: 300 }]);
    expect(await sql(targetUrl, `SELECT count(*)::int AS n FROM shop.parted WHERE id = 5000`)).toEqual([{ n: 1 }]);
    expect(r.status.tasks.map((t) => t.status)).toEqual(['running', 'running', 'running']);
  });

  it('a full restart first writes the failure state bundle (no secret in it), then starts every task over', async () => {
    const bundle = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-dms-')), 'state.json');
    fake.statistics.set(fake.byIdentifier('pgshift-shop-g1-batch')!.ReplicationTaskArn!, [{ SchemaName: 'shop', TableName: 'orders', TableState: 'Table error', Inserts: 5 }]);
    const r = await restartDmsCdc(ctx, { bundleFile: bundle }, fake.clients);
    expect(r.bundle).toBe(bundle);
    expect(existsSync(bundle)).toBe(true);
    const text = readFileSync(bundle, 'utf8');
    const saved = JSON.parse(text);
    expect(saved.dms.tasks.map((t: { identifier: string }) => t.identifier)).toEqual(['pgshift-shop-g1-single', 'pgshift-shop-g1-batch', 'pgshift-shop-g2']);
    expect(saved.dms.tasks[1].tableStatistics).toEqual([expect.objectContaining({ TableName: 'orders', TableState: 'Table error' })]);
    expect(saved.dms.tasks[1].description.Status).toBe('running');
    expect(saved.dms.applyExceptions).toEqual([expect.objectContaining({ table_name: 'docs' }), expect.objectContaining({ table_name: 'docs' })]);
    expect(saved.status.tasks[1].problems).toContainEqual(expect.stringContaining('tables in error: shop.orders'));
    expect(text).not.toContain(parseServerUrl(sourceUrl).password ?? 'no password');
    expect(fake.dms.commandCalls(DeleteReplicationTaskCommand)).toHaveLength(4);
    expect(createTaskInputs().slice(4).map((t) => t.ReplicationTaskIdentifier)).toEqual(['pgshift-shop-g1-single', 'pgshift-shop-g1-batch', 'pgshift-shop-g2']);
    fake.statistics.clear();
    expect(r.status.tasks.every((t) => t.status === 'running')).toBe(true);
    const st = await streams();
    expect(st.map((x) => x.state)).toEqual(['streaming', 'streaming', 'streaming']);
  });

  it('cut-over on DMS: the gate reads the tasks; inside the window the tasks are asked to stop, and finish stopping after it', async () => {
    // What DMS does while a task runs, for the parts the cut-over depends on: it applies the
    // heartbeat rows of its stream to the target and confirms its slot's position on the source.
    // A relay at a time, each on fresh sessions: the cut-over's fence may end sessions.
    const stopRelay = repeatUntilStopped(() => withClients(sourceUrl, targetUrl, relayHeartbeats), 50);
    try {
      const v = await runVerify(ctx, { mode: 'full' });
      // pglogical's own catalog and the extension itself exist only on the source: not differences.
      expect({ verdict: v.verdict, schema: v.schema }).toEqual({ verdict: 'equal', schema: [] });
      fake.fail('pgshift-shop-g1-single', 'FATAL_ERROR', 'Error executing source loop');
      await expect(runCutover(ctx)).rejects.toMatchObject({ code: 'cutover.dms-task', exitCode: 3, message: expect.stringContaining('pgshift-shop-g1-single is failed') });
      // Refused before anything changed: the source still takes writes.
      await sql(sourceUrl, `SET ROLE shop_app; SELECT 1`);
      await resumeDmsCdc(ctx, fake.clients);
      const stopsBefore = fake.dms.commandCalls(StopReplicationTaskCommand).length;
      const r = await runCutover(ctx);
      expect(r.windowMs).not.toBeNull();
      expect(fake.dms.commandCalls(StopReplicationTaskCommand).length - stopsBefore).toBe(3);
      expect([...fake.tasks.values()].map((t) => t.task.Status)).toEqual(['stopped', 'stopped', 'stopped']);
      expect(r.plannedSteps.join(' ')).toContain('DMS tasks asked to stop');
      expect((await streams()).map((x) => x.state)).toEqual(['cut-over', 'cut-over', 'cut-over']);
    } finally {
      await stopRelay();
    }
  });

  it('teardown deletes tasks and endpoints, slots, sets, node and the awsdms_ artifacts on both sides', async () => {
    // DMS's own heartbeat table on the source (HeartbeatEnable) and a DDL-capture leftover.
    await sql(sourceUrl, `CREATE TABLE public.awsdms_heartbeat (hb_id serial PRIMARY KEY, hb_timestamp timestamp)`);
    await sql(sourceUrl, `CREATE TABLE public.awsdms_ddl_audit (c_key bigserial PRIMARY KEY, c_ddlqry text)`);
    await sql(sourceUrl, `CREATE FUNCTION public.awsdms_intercept_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$`);
    await sql(sourceUrl, `CREATE EVENT TRIGGER awsdms_intercept_ddl ON ddl_command_end EXECUTE FUNCTION public.awsdms_intercept_ddl()`);
    await sql(targetUrl, `CREATE TABLE public.awsdms_status (task_name varchar(128))`);
    // mockClient replaces send() of every DMS and CloudWatch client: teardown's own clients reach the fake.
    const r = await runTeardown(ctx);
    expect(r.dropped).toEqual(expect.arrayContaining([
      'DMS task pgshift-shop-g1-single', 'DMS task pgshift-shop-g1-batch', 'DMS task pgshift-shop-g2',
      'DMS endpoint pgshift-shop-g1-source', 'DMS endpoint pgshift-shop-g1-batch-source', 'DMS endpoint pgshift-shop-g2-source', 'DMS endpoint pgshift-shop-target',
      'table public.awsdms_apply_exceptions (target)', 'table public.awsdms_status (target)', 'table public.awsdms_heartbeat (source)',
      'event trigger awsdms_intercept_ddl (source)', 'pglogical node (source)',
    ]));
    expect(fake.tasks.size).toBe(0);
    expect(fake.endpoints.size).toBe(0);
    expect(fake.dms.commandCalls(DeleteEndpointCommand)).toHaveLength(4);
    expect(await sql(sourceUrl, 'SELECT count(*)::int AS n FROM pg_replication_slots')).toEqual([{ n: 0 }]);
    expect(await sql(sourceUrl, `SELECT count(*)::int AS n FROM pglogical.replication_set WHERE set_name LIKE '%pgshift%'`)).toEqual([{ n: 0 }]);
    expect(await sql(sourceUrl, `SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'awsdms%'`)).toEqual([{ n: 0 }]);
    expect(await sql(targetUrl, `SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'awsdms%'`)).toEqual([{ n: 0 }]);
    // Idempotent.
    expect((await runTeardown(ctx)).dropped).toEqual([]);
  });
});

describe('CDC with AWS DMS (test_decoding)', () => {
  it('slots on test_decoding without pglogical objects; the endpoint names the plugin test-decoding; AccessDenied is exit 2', async () => {
    await freshDatabases('shop_td');
    // This source endpoint takes its credentials from Secrets Manager.
    const secret = { SecretsManagerSecretId: 'calls/source', SecretsManagerAccessRoleArn: 'arn:aws:iam::123456789012:role/dms-secrets' };
    const tdCtx = phaseContext(
      testPlan(sourceUrl, targetUrl, plan('test_decoding', `    sourceEndpoint: { secretsManagerSecretId: ${secret.SecretsManagerSecretId}, secretsManagerAccessRoleArn: "${secret.SecretsManagerAccessRoleArn}" }\n`)),
      silentLogger,
    );
    const td = fake;
    td.reset();
    {
      await runFullLoad(tdCtx);
      expect(await sql(sourceUrl, `SELECT slot_name AS s, plugin FROM pg_replication_slots WHERE database = 'shop_td' ORDER BY 1`)).toEqual([
        { s: 'pgshift_shop_g1', plugin: 'test_decoding' },
        { s: 'pgshift_shop_g1_batch', plugin: 'test_decoding' },
        { s: 'pgshift_shop_g2', plugin: 'test_decoding' },
      ]);
      await withClients(sourceUrl, targetUrl, async (s) => {
        expect((await s.query(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pglogical'`)).rows).toEqual([{ n: 0 }]);
      });
      await sql(sourceUrl, `INSERT INTO shop.orders VALUES (900002, 'td')`);
      await sql(sourceUrl, `INSERT INTO shop.items VALUES (900002, 1, 1)`);
      // AccessDenied on the first call that creates anything: exit 2, no task journaled.
      const denied = Object.assign(new Error('User is not authorized to perform: dms:CreateEndpoint'), { name: 'AccessDeniedFault' });
      td.dms.on(CreateEndpointCommand).rejects(denied);
      await expect(startDmsCdc(tdCtx, td.clients)).rejects.toMatchObject({ code: 'aws.access-denied', exitCode: 2 });
      expect(await sql(targetUrl, `SELECT count(*)::int AS n FROM pgshift.phase WHERE phase = 'cdc:dms:tasks'`)).toEqual([{ n: 0 }]);
      td.reset();
      const r = await startDmsCdc(tdCtx, td.clients);
      const inputs = td.dms.commandCalls(CreateEndpointCommand).map((c) => c.args[0].input);
      // No address, user or password in the request: the secret holds them; only the database travels.
      expect(inputs[1]).toEqual({
        EndpointIdentifier: 'pgshift-shop-g1-source',
        EndpointType: 'source',
        EngineName: 'postgres',
        SslMode: 'require',
        PostgreSQLSettings: { ...secret, DatabaseName: 'shop_td', PluginName: 'test-decoding', SlotName: 'pgshift_shop_g1', HeartbeatEnable: true, HeartbeatFrequency: 5, CaptureDdls: false, FailTasksOnLobTruncation: true },
        Tags: [{ Key: 'pgshift:migration', Value: 'shop' }, { Key: 'pgshift:group', Value: 'g1' }, { Key: 'pgshift:role', Value: 'source-endpoint' }],
      });
      const e = inputs.map((i) => i.PostgreSQLSettings);
      expect(e.slice(1).map((x) => [x!.PluginName, x!.SlotName])).toEqual([
        ['test-decoding', 'pgshift_shop_g1'],
        ['test-decoding', 'pgshift_shop_g1_batch'],
        ['test-decoding', 'pgshift_shop_g2'],
      ]);
      // test_decoding does not filter: both streams of g1 (same snapshot LSN) see the same first change.
      const starts = td.dms.commandCalls(CreateReplicationTaskCommand).map((c) => parseLsn(c.args[0].input.CdcStartPosition!));
      const [g1] = await sql(targetUrl, `SELECT snapshot_lsn::text AS l FROM pgshift.stream WHERE group_name = 'g1'`);
      expect(starts[0]).toBe(starts[1]);
      expect(starts[0] >= parseLsn(g1.l)).toBe(true);
      expect(r.tasks).toHaveLength(3);
      expect((await runTeardown(tdCtx)).dropped).toEqual(expect.arrayContaining(['DMS task pgshift-shop-g2', 'slot pgshift_shop_g2 (source)']));
      expect(td.tasks.size).toBe(0);
    }
  });
});
