import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runVerify, type VerifyResult } from '../../src/phases/verify.js';
import { listTables } from '../../src/pg/catalog.js';
import { bucketFingerprints, chunkBoundaries, keyedTable } from '../../src/pg/chunks.js';
import { runCli } from '../harness/cli.js';
import { pgbenchInit, pgbenchStart } from '../harness/load.js';
import { planYaml, testPlan } from '../harness/plan.js';
import { sql, startPair, type Pair } from '../harness/servers.js';

/**
 * Planted differences on a PostgreSQL 17 target of a 13 source, found exactly — no miss, no false
 * report — while pgbench writes to the source and CDC applies its changes; canonical values across
 * the two majors; a repair that makes the target equal again.
 */
let pair: Pair;
let ctx: PhaseContext;
const PLAN_EXTRA = 'verify: { chunkRows: 20000, jobs: 2 }\ncdc: { replicaIdentityFull: [public.nokey] }';

const planted = {
  'public.accounts': [
    { key: { id: '1' }, kind: 'different' },
    { key: { id: '2' }, kind: 'missing' },
    { key: { id: '778' }, kind: 'different' }, // a NULL where the source has a value
    { key: { id: '40000' }, kind: 'different' }, // a TOASTed document changed
    { key: { id: '40001' }, kind: 'missing' },
    { key: { id: '99999' }, kind: 'missing' },
    { key: { id: '100000' }, kind: 'different' },
    { key: { id: '300001' }, kind: 'extra' },
    { key: { id: '300002' }, kind: 'extra' },
  ],
  'public.items': [
    { key: { a: '3', b: 'b-3' }, kind: 'different' },
    { key: { a: '4', b: 'b-4' }, kind: 'missing' },
  ],
  'public.tags': [{ key: { name: 'Zebra' }, kind: 'different' }],
};

beforeAll(async () => {
  pair = await startPair(13, 17);
  await sql(pair.sourceUrl, `
    CREATE TABLE accounts (id bigint NOT NULL, balance int, note text, doc jsonb);
    INSERT INTO accounts SELECT i, i % 1000, CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END,
           CASE WHEN i % 10000 = 0 THEN jsonb_build_object('big', repeat(md5(i::text), 2000)) ELSE jsonb_build_object('i', i) END
      FROM generate_series(1, 100000) i;
    ALTER TABLE accounts ADD PRIMARY KEY (id);
    ALTER TABLE accounts SET (autovacuum_enabled = false);
    CREATE TABLE items (a int, b text, qty numeric(12,3), PRIMARY KEY (a, b));
    INSERT INTO items SELECT i, 'b-' || i, i / 7.0 FROM generate_series(1, 5000) i;
    CREATE TABLE tags (name text COLLATE "und-x-icu" PRIMARY KEY, weight float8);
    INSERT INTO tags VALUES ('apple', 1.1), ('Zebra', 2.2), ('zebra', 3.3), ('Äpfel', 1e300), ('éclair', -0.0), ('ångström', 'NaN');
    CREATE TABLE nokey (v text, n int);
    INSERT INTO nokey SELECT 'v' || i, i FROM generate_series(1, 1000) i;
    CREATE TABLE kinds (
      id int PRIMARY KEY, f4 real, f8 double precision, n numeric, ts timestamptz, t timestamp, d date, iv interval,
      arr int[], tarr text[], j jsonb, js json, b bytea, c text COLLATE "C", p text COLLATE "POSIX", u text COLLATE "und-x-icu", x xml);
    INSERT INTO kinds VALUES
      (1, 1.1, 0.1 + 0.2, 1.10, '2026-03-29 01:30:00+01', '2026-01-01 12:00', '2026-02-28', '1 year 2 mons 3 days 04:05:06.789',
       '{1,2,NULL}', '{"a b","c,d",NULL}', '{"b": [1, 2.50], "a": null}', '{"b": 1,  "a": 2}', '\\xdeadbeef', 'Ä', 'é', 'ß', '<a>1</a>'),
      (2, 'Infinity', '-Infinity', 'NaN', 'infinity', '-infinity', '2000-01-01', '-3 days', '{}', '{}', '[]', 'null', '\\x', '', ' ', 'İ', NULL),
      (3, 3.4028235e38, 1e-300, 12345678901234567890.123456789, '1999-12-31 23:59:59.999999+05:30', '1999-12-31 23:59:59.999999', '0001-01-01', '00:00:00.000001',
       '{{1,2},{3,4}}', '{"\\\\"}', '{"nested": {"deep": [true, false, null]}}', '"str"', '\\x00ff', 'z', 'Z', 'ǅ', '<b/>');
    ANALYZE items, tags, nokey, kinds;`);
  pgbenchInit(pair.sourceUrl, 1);
  ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, PLAN_EXTRA), silentLogger);
  await runFullLoad(ctx);
  await startCdc(ctx);
  // The target is configured to print values differently; verify must not care.
  await sql(pair.targetUrl, `ALTER DATABASE shop SET TimeZone = 'Asia/Kolkata'; ALTER DATABASE shop SET DateStyle = 'SQL, DMY';
    ALTER DATABASE shop SET IntervalStyle = 'iso_8601'; ALTER DATABASE shop SET extra_float_digits = -3; ALTER DATABASE shop SET bytea_output = 'escape'`);
});

function found(r: VerifyResult, table: string) {
  const t = r.tables.find((x) => x.table === table)!;
  return t.differences.map((d) => ({ key: d.key, kind: d.kind })).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}
const sorted = (xs: Array<{ key: Record<string, string>; kind: string }>) => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('verify', () => {
  it('finds nothing on an equal copy, across majors and whatever the target prints by default', async () => {
    await waitForCatchUp(ctx, 30_000);
    const r = await runVerify(ctx);
    expect(r.schema).toEqual([]);
    expect(r.tables.find((t) => t.table === 'public.kinds')).toMatchObject({ verdict: 'equal', sourceRows: 3, targetRows: 3 });
    expect(r.differences).toEqual([]);
    expect(r.verdict).toBe('equal');
  });

  it('reports exactly the planted keys while pgbench writes and CDC applies', async () => {
    await sql(pair.targetUrl, `
      UPDATE accounts SET balance = balance + 1 WHERE id IN (1, 100000);
      UPDATE accounts SET note = NULL WHERE id = 778;
      UPDATE accounts SET doc = jsonb_build_object('big', repeat('changed', 5000)) WHERE id = 40000;
      DELETE FROM accounts WHERE id IN (2, 40001, 99999);
      INSERT INTO accounts VALUES (300001, 1, 'extra', NULL), (300002, 2, NULL, '{}');
      UPDATE items SET qty = qty + 0.001 WHERE a = 3;
      DELETE FROM items WHERE a = 4;
      UPDATE tags SET weight = 9.9 WHERE name = 'Zebra';
      DELETE FROM nokey WHERE n = 500;`);
    const load = pgbenchStart(pair.sourceUrl, { clients: 2, seconds: 120 });
    let r: VerifyResult;
    try {
      await new Promise((res) => setTimeout(res, 1500));
      r = await runVerify(ctx);
    } finally {
      const { transactions } = await load.stop();
      expect(transactions).toBeGreaterThan(100);
    }
    for (const [table, keys] of Object.entries(planted)) expect(found(r, table), table).toEqual(sorted(keys));
    expect(r.tables.find((t) => t.table === 'public.nokey')).toMatchObject({ method: 'whole-table', verdict: 'different', sourceRows: 1000, targetRows: 999 });
    // pgbench's own tables changed all along: never reported different.
    for (const t of r.tables.filter((x) => x.table.startsWith('public.pgbench'))) expect(t.verdict, t.table).not.toBe('different');
    expect(r.differences.sort()).toEqual(['public.accounts', 'public.items', 'public.nokey', 'public.tags']);
    const acc = r.tables.find((t) => t.table === 'public.accounts')!;
    expect(acc.differences.find((d) => d.key.id === '778')).toMatchObject({ source: { note: 'note 778' }, target: { note: null } });
    expect(acc.chunks).toBeGreaterThan(1);
  });

  it('an exact pass (writes stopped) agrees, and the CLI exits 1 with the report', async () => {
    await waitForCatchUp(ctx, 30_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'verify-'));
    const file = path.join(dir, 'plan.yml');
    (await import('node:fs')).writeFileSync(file, planYaml(PLAN_EXTRA));
    const env = { SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl };
    const cli = await runCli(['verify', '--exact', '--json', '-c', file, '--repair-sql', path.join(dir, 'repair.sql')], env);
    expect(cli.code).toBe(1);
    const r = JSON.parse(cli.stdout).result as VerifyResult;
    for (const [table, keys] of Object.entries(planted)) expect(found(r, table), table).toEqual(sorted(keys));
    const repair = readFileSync(path.join(dir, 'repair.sql'), 'utf8');
    expect(repair).toContain('DELETE FROM ONLY "public"."accounts" WHERE "id" = \'300001\'::bigint;');
    expect(r.repairSql).toMatchObject({ applied: false });
    // Nothing ran: the target still differs until the flag says so.
    expect((await sql(pair.targetUrl, 'SELECT count(*)::int AS n FROM accounts WHERE id > 300000'))[0].n).toBe(2);
    const applied = await runCli(['verify', '--exact', '-c', file, '-t', 'public.accounts', 'public.items', 'public.tags', '--repair-sql', path.join(dir, 'r2.sql'), '--apply-repair'], env);
    expect(applied.code).toBe(1); // it reports what it found, then repairs
    const after = await runCli(['verify', '--exact', '--json', '-c', file, '-t', 'public.accounts', 'public.items', 'public.tags'], env);
    expect(after.code, after.stdout).toBe(0);
  });

  it('a full pass aggregates its chunks in memory (no sort spilled to disk) and leaves the session as it was', async () => {
    const c = new pg.Client({ connectionString: pair.targetUrl });
    await c.connect();
    try {
      // 100,000 rows: a sort (what the planner picks for this query unless told otherwise) spills
      // beyond 64 kB; a hash of 100 buckets (about 45 kB) does not.
      await c.query(`SET work_mem = '64kB'`);
      const tempFiles = async () => {
        await c.query('SELECT pg_stat_force_next_flush()');
        await c.query('SELECT 1'); // the flush happens as the backend goes idle after this
        const r = await c.query<{ n: string }>(`SELECT temp_files::text AS n FROM pg_stat_database WHERE datname = current_database()`);
        return Number(r.rows[0].n);
      };
      const [table] = (await listTables(c, 170000)).filter((t) => t.name === 'accounts');
      const kt = keyedTable(table)!;
      const bounds = await chunkBoundaries(c, kt, 1000, table.rowEstimate);
      expect(bounds.length).toBeGreaterThan(50);
      const before = await tempFiles();
      const fps = await bucketFingerprints(c, kt, bounds, 130000);
      expect(fps.reduce((n, f) => n + f.rows, 0)).toBeGreaterThan(99_000);
      expect(await tempFiles()).toBe(before);
      expect((await c.query('SHOW enable_sort')).rows[0].enable_sort).toBe('on');
    } finally {
      await c.end();
    }
  });

  it('chunks hold about chunkRows rows however few buckets the histogram has', async () => {
    // A database of its own on the source server: nothing to do with the migration.
    await sql(pair.source.url(), 'CREATE DATABASE chunks');
    const c = new pg.Client({ connectionString: pair.source.url('chunks') });
    await c.connect();
    try {
      // 10 histogram buckets of 20,000 rows, chunkRows 2,000: about 100 chunks, not 10, for an
      // integer key and for a uuid key.
      await c.query(`CREATE TABLE chunky (id bigint PRIMARY KEY, v text);
        INSERT INTO chunky SELECT i * 7, 'v' FROM generate_series(1, 200000) i;
        CREATE TABLE chunky_uuid (id uuid PRIMARY KEY, v text);
        INSERT INTO chunky_uuid SELECT md5(i::text)::uuid, 'v' FROM generate_series(1, 200000) i;
        ALTER TABLE chunky ALTER COLUMN id SET STATISTICS 10; ALTER TABLE chunky_uuid ALTER COLUMN id SET STATISTICS 10; ANALYZE`);
      for (const table of await listTables(c, 130000)) {
        const kt = keyedTable(table)!;
        const sizes = (await bucketFingerprints(c, kt, await chunkBoundaries(c, kt, 2000, table.rowEstimate), 130000)).map((f) => f.rows);
        expect(sizes.reduce((a, b) => a + b, 0), table.name).toBe(200000);
        expect(sizes.length, table.name).toBeGreaterThan(90);
        expect(Math.max(...sizes), table.name).toBeLessThan(4000);
      }
    } finally {
      await c.end();
    }
  });

  it('quick mode samples chunks of a large table', async () => {
    const r = await runVerify(ctx, { mode: 'quick', tables: ['public.accounts'], exact: true });
    const acc = r.tables[0];
    expect(acc.method).toBe('sampled-chunks');
    expect(acc.chunks).toBe(4);
  });

  it('reports schema differences by object', async () => {
    await sql(pair.targetUrl, `ALTER TABLE items ADD COLUMN extra int; CREATE INDEX items_qty_extra ON items (qty)`);
    const r = await runVerify(ctx, { exact: true, tables: undefined });
    expect(r.schema).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'column', object: 'public.items.extra', problem: 'extra on target' }),
        expect.objectContaining({ kind: 'index', object: 'public.items_qty_extra', problem: 'extra on target' }),
      ]),
    );
    expect(r.verdict).toBe('different');
  });
});
