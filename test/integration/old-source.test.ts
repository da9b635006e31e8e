import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { startStandby } from '../../src/local/cluster.js';
import { runAssess } from '../../src/phases/assess.js';
import { setCdcPaused, startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runCutover } from '../../src/phases/cutover.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { runVerify, type VerifyResult } from '../../src/phases/verify.js';
import { tableDigests } from '../harness/compare.js';
import { testPlan } from '../harness/plan.js';
import { sql, startPair, startServer } from '../harness/servers.js';

/**
 * Sources older than every fast path, 10 and 11 → 17: the full load splits by key range (a ctid
 * range scans the whole table before 14), verify fingerprints chunk by chunk with index range
 * queries (no spilling hash aggregate before 13), hashes rows as text on 10 (no extended hash
 * functions before 11), and floats must survive both: before 12 a float prints with 15 digits
 * unless extra_float_digits says otherwise, so 0.1 + 0.2 reads 0.3 on the source and
 * 0.30000000000000004 on the target. The source database also prints dates day-first. The
 * repair SQL must carry every digit (floats, numerics, integers past 2^53 inside jsonb).
 */
const TABLES = ['public.measures', 'public.labels', 'public.nokey', 'public.events_a', 'public.events_b'];
const planExtra = (copyFormat: string) => `fullLoad: { jobs: 2, splitTablesLargerThan: 2MB, maxPartsPerTable: 4, copyFormat: ${copyFormat} }
verify: { chunkRows: 5000, jobs: 2 }`;

const differences = (r: VerifyResult, table: string) =>
  r.tables
    .find((t) => t.table === table)!
    .differences.map((d) => `${d.kind} ${Object.values(d.key).join(',')}`)
    .sort();

// Binary COPY where the types allow it from the 10, text COPY of everything from the 11 (where a
// float printed with the server's default digits would lose precision on the way).
describe.each([
  { major: 10, copyFormat: 'auto' },
  { major: 11, copyFormat: 'text' },
])('a PostgreSQL $major source → 17, copyFormat $copyFormat', ({ major, copyFormat }) => {
  it('assess, load (key-range parts), stream, verify exactly (one-ulp float changes), repair to the last digit, cut over, tear down', async () => {
    const pair = await startPair(major, 17);
    await sql(pair.sourceUrl, `ALTER DATABASE shop SET DateStyle = 'SQL, DMY'`);
    // PostgreSQL 10 has no key on a partitioned table: each leaf has its own.
    await sql(pair.sourceUrl, `
      CREATE TYPE mood AS ENUM ('low', 'high');
      CREATE DOMAIN amount AS double precision CHECK (VALUE > 0);
      CREATE TABLE measures (id bigint PRIMARY KEY, f8 float8, f4 real, fa float8[], d date, iv interval, t text, j jsonb, n numeric, amt amount, pt point, boxes box[]);
      INSERT INTO measures SELECT i, i * 0.1 + 0.2, i / 3.0, ARRAY[i * 0.1, 1.0 / i], date '2026-01-01' + i % 400, make_interval(days => -i % 7, secs => i % 60),
             repeat(md5(i::text), 3), jsonb_build_object('x', i * 0.1, 'big', 9007199254740993 + i), i * 1234567890123.456789012, i / 7.0::float8,
             point(i * 0.1, i / 3.0), ARRAY[box(point(0.1, 0.2), point(i * 0.3, i * 0.7))]
        FROM generate_series(1, 60000) i;
      CREATE TABLE labels (id int PRIMARY KEY, m mood, f float8, d date);
      INSERT INTO labels SELECT i, CASE WHEN i % 2 = 0 THEN 'low' ELSE 'high' END::mood, i * 0.7 + 0.1, date '2026-03-04' + i FROM generate_series(1, 2000) i;
      CREATE TABLE nokey (v text, f float8);
      ALTER TABLE nokey REPLICA IDENTITY FULL;
      INSERT INTO nokey SELECT 'v' || i, i * 1.1 FROM generate_series(1, 500) i;
      CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, v float8) PARTITION BY RANGE (at);
      CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
      CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
      ALTER TABLE events_a ADD PRIMARY KEY (id, at);
      ALTER TABLE events_b ADD PRIMARY KEY (id, at);
      INSERT INTO events SELECT i, date '2026-01-01' + i % 365, i * 0.3 FROM generate_series(1, 3000) i;
      ANALYZE;`);
    const ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, planExtra(copyFormat)), silentLogger);
    const assessed = await runAssess(ctx);
    expect(assessed.source.major).toBe(major);
    expect(assessed.findings.filter((f) => f.severity === 'blocker')).toEqual([]);
    const load = await runFullLoad(ctx);
    expect(load.rows).toBe(60000 + 2000 + 500 + 3000);
    const parts = await sql<{ n: number }>(pair.targetUrl, `SELECT count(*)::int AS n FROM pgshift.copy_progress WHERE table_name = 'measures' AND part > 0`);
    expect(parts[0].n).toBeGreaterThan(1);

    // Writes of every kind flow through CDC while the first verify runs.
    await startCdc(ctx);
    const writer = new pg.Client({ connectionString: pair.sourceUrl });
    await writer.connect();
    let writing = true;
    let writes = 0;
    const writes$ = (async () => {
      for (let i = 1; writing; i++) {
        await writer.query(`UPDATE measures SET f8 = f8 * 1.1 + 0.3, fa = fa || (f8 / 7), iv = iv - interval '1 day' WHERE id = $1`, [20000 + (i % 5000)]);
        await writer.query(`INSERT INTO events VALUES ($1::bigint, date '2026-01-01' + ($1::bigint % 365)::int, $1::bigint * 0.1)`, [100000 + i]);
        await writer.query(`INSERT INTO labels VALUES ($1::int, 'low', $1::int / 9.0, date '2026-12-31') ON CONFLICT (id) DO UPDATE SET f = labels.f * 3.3`, [3000 + (i % 50)]);
        writes++;
      }
    })();
    let moving: VerifyResult;
    try {
      await new Promise((r) => setTimeout(r, 500));
      moving = await runVerify(ctx);
    } finally {
      writing = false;
      await writes$;
      await writer.end();
    }
    expect(writes).toBeGreaterThan(20);
    expect(moving.schema).toEqual([]);
    expect(moving.differences).toEqual([]);
    expect(moving.verdict).toBe('equal');

    await waitForCatchUp(ctx, 60_000);
    // An independent check: every row in binary form (which prints no float, date or interval) on both sides.
    const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, TABLES, 'binary'), tableDigests(pair.targetUrl, TABLES, 'binary')]);
    expect(b).toEqual(a);

    // Planted on the target: a float one unit in the last place away, a float4 and an array
    // element changed, a row missing, one extra, in the first and the last chunk and a middle one.
    await setCdcPaused(ctx, true);
    await sql(pair.targetUrl, `
      UPDATE measures SET f8 = f8 * (1 + 2.220446049250313e-16) WHERE id = 1;
      UPDATE measures SET f4 = f4 + 0.001, n = n + 0.000000001 WHERE id = 30000;
      UPDATE measures SET fa[2] = fa[2] * (1 + 2.220446049250313e-16) WHERE id = 59999;
      UPDATE measures SET amt = amt * (1 + 2.220446049250313e-16) WHERE id = 45000;
      UPDATE measures SET pt = point(pt[0] * (1 + 2.220446049250313e-16), pt[1]) WHERE id = 50000;
      DELETE FROM measures WHERE id = 60000;
      INSERT INTO measures (id, f8) VALUES (60001, 0.1);
      UPDATE labels SET f = f * (1 + 2.220446049250313e-16) WHERE id = 1000;
      UPDATE events_b SET v = -0.0 WHERE id = 2500;
      DELETE FROM nokey WHERE v = 'v7';`);
    const exact = await runVerify(ctx, { exact: true });
    expect(differences(exact, 'public.measures')).toEqual(['different 1', 'different 30000', 'different 45000', 'different 50000', 'different 59999', 'extra 60001', 'missing 60000']);
    expect(differences(exact, 'public.labels')).toEqual(['different 1000']);
    expect(differences(exact, 'public.events_b')).toEqual([`different 2500,${(await sql(pair.sourceUrl, `SELECT to_char(at, 'YYYY-MM-DD') AS at FROM events WHERE id = 2500`))[0].at}`]);
    expect(exact.tables.find((t) => t.table === 'public.nokey')).toMatchObject({ method: 'whole-table', verdict: 'different' });
    expect(exact.differences.sort()).toEqual(['public.events_b', 'public.labels', 'public.measures', 'public.nokey']);
    expect(exact.tables.find((t) => t.table === 'public.measures')!.chunks).toBeGreaterThan(5);

    // The repair SQL restores floats to the last bit: its literals must not be printed with 15 digits.
    const repairFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'old-source-')), 'repair.sql');
    await runVerify(ctx, { exact: true, repairSql: repairFile, applyRepair: true });
    const repairText = readFileSync(repairFile, 'utf8');
    expect(repairText).toContain('DELETE FROM ONLY "public"."measures" WHERE "id" = \'60001\'::bigint;');
    expect(repairText).toContain('"n":37037036703703703.670360000'); // 30000 × 1234567890123.456789012, every digit
    expect(repairText).toContain('"big": 9007199254770993'); // 2^53 + 30001: not a JavaScript number
    await sql(pair.targetUrl, `INSERT INTO nokey VALUES ('v7', 7.7)`);
    const repaired = await runVerify(ctx, { exact: true });
    expect(repaired.tables.flatMap((t) => t.differences)).toEqual([]);
    expect(repaired.differences).toEqual([]);

    // And the rest of the way: streaming again, cut over (sequences, fence), torn down.
    await setCdcPaused(ctx, false);
    await waitForCatchUp(ctx, 60_000);
    const cut = await runCutover(ctx);
    expect(cut.windowMs).toBeGreaterThan(0);
    const [c, d] = await Promise.all([tableDigests(pair.sourceUrl, TABLES, 'binary'), tableDigests(pair.targetUrl, TABLES, 'binary')]);
    expect(d).toEqual(c);
    await runTeardown(ctx);
    const left = await sql<{ n: number }>(pair.sourceUrl, `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) AS n`);
    expect(Number(left[0].n)).toBe(0);
  });
});

describe('tables WITH OIDS on a PostgreSQL 11 source → 17', () => {
  it('an index on the oid column is refused before anything is made, the fix assess gives lets it through, and the rows arrive without their oids', async () => {
    const pair = await startPair(11, 17);
    await sql(pair.sourceUrl, `
      CREATE TABLE legacy (id int PRIMARY KEY, v text) WITH OIDS;
      INSERT INTO legacy SELECT i, 'v' || i FROM generate_series(1, 1000) i;
      CREATE TABLE docs (title text NOT NULL) WITH OIDS;
      CREATE UNIQUE INDEX docs_oid_key ON docs (oid);
      INSERT INTO docs SELECT 'doc ' || i FROM generate_series(1, 500) i;
      ANALYZE`);
    const ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl), silentLogger);
    const assessed = await runAssess(ctx);
    const oids = assessed.findings.filter((f) => f.code.startsWith('table.with-oids')).map((f) => [f.severity, f.code, f.object]);
    expect(oids).toEqual([
      ['blocker', 'table.with-oids-index', 'public.docs'],
      ['warning', 'table.with-oids', 'public.legacy'],
    ]);
    await expect(runFullLoad(ctx)).rejects.toMatchObject({ code: 'table.with-oids-index', exitCode: 3 });
    expect(await sql(pair.sourceUrl, `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots, (SELECT count(*) FROM pg_publication)::int AS pubs`)).toEqual([{ slots: 0, pubs: 0 }]);
    expect(await sql(pair.targetUrl, `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift')::int AS schemas, (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')::int AS tables`)).toEqual([{ schemas: 0, tables: 0 }]);

    // The fix assess names: the values in a real column, indexed instead, then WITHOUT OIDS.
    const doc = assessed.findings.find((f) => f.code === 'table.with-oids-index')!;
    expect(doc.fix).toContain('ALTER TABLE public.docs ADD COLUMN row_oid oid; UPDATE public.docs SET row_oid = oid');
    await sql(pair.sourceUrl, `
      ALTER TABLE docs ADD COLUMN row_oid oid; UPDATE docs SET row_oid = oid;
      ALTER TABLE docs ALTER row_oid SET NOT NULL; DROP INDEX docs_oid_key; ALTER TABLE docs ADD PRIMARY KEY (row_oid);
      ALTER TABLE docs SET WITHOUT OIDS`);
    expect((await runAssess(ctx)).findings.filter((f) => f.severity === 'blocker')).toEqual([]);
    expect((await runFullLoad(ctx)).rows).toBe(1500);
    await startCdc(ctx);
    await sql(pair.sourceUrl, `INSERT INTO legacy VALUES (1001, 'new'); UPDATE legacy SET v = 'changed' WHERE id <= 10; DELETE FROM legacy WHERE id = 500`);
    await waitForCatchUp(ctx, 60_000);
    expect((await runVerify(ctx)).verdict).toBe('equal');
    const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, ['public.legacy', 'public.docs']), tableDigests(pair.targetUrl, ['public.legacy', 'public.docs'])]);
    expect(b).toEqual(a);
    await runTeardown(ctx);
  });
});

describe('assess when the target cannot list its extensions', () => {
  it('says so as a warning naming the cause instead of failing (the embedded 10 ships control files it cannot parse)', async () => {
    const pair = await startPair(10, 10);
    const r = await runAssess(phaseContext(testPlan(pair.sourceUrl, pair.targetUrl), silentLogger));
    expect(r.findings.find((f) => f.code === 'target.extensions-unknown')).toMatchObject({
      severity: 'warning',
      message: expect.stringMatching(/cannot list the extensions the target offers \(.*control.*\)/),
    });
  });
});

describe('paused-replica snapshot from a PostgreSQL 10 primary and its standby → 17', () => {
  it('copies from the paused standby, resumes it, and CDC from its LSN makes the target exact under writes', async () => {
    const [primary, target] = await Promise.all([startServer(10, 'old-primary'), startServer(17, 'old-target')]);
    await sql(primary.url(), 'CREATE DATABASE shop');
    await sql(target.url(), 'CREATE DATABASE shop');
    await sql(primary.url('shop'), `
      CREATE TABLE readings (id bigint PRIMARY KEY, v float8, at timestamptz DEFAULT now());
      INSERT INTO readings SELECT i, i / 3.0 FROM generate_series(1, 50000) i;`);
    const replica = await startStandby(primary, 'old-replica');
    try {
      const ctx = phaseContext(
        parsePlan(`version: 1\nname: shop\nsnapshot: paused-replica\nsource: { url: "\${S}", replicaUrl: "\${R}" }\ntarget: { url: "\${T}" }\ncutover: { fence: database }\n`, 'plan', {
          S: primary.url('shop'),
          R: replica.url('shop'),
          T: target.url('shop'),
        }),
        silentLogger,
      );
      const writer = new pg.Client({ connectionString: primary.url('shop') });
      await writer.connect();
      let writing = true;
      const writes = (async () => {
        for (let i = 1; writing; i++) await writer.query(`INSERT INTO readings (id, v) VALUES ($1::bigint, $1::bigint / 7.0); UPDATE readings SET v = v * 1.1 WHERE id = $1::bigint - 49000`.split(';')[0], [50000 + i]);
      })();
      try {
        await runFullLoad(ctx);
        expect((await sql(replica.url(), 'SELECT pg_is_wal_replay_paused() AS p'))[0].p).toBe(false);
        await startCdc(ctx);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        writing = false;
        await writes;
        await writer.end();
      }
      await waitForCatchUp(ctx, 60_000);
      const [a, b] = await Promise.all([tableDigests(primary.url('shop'), ['public.readings'], 'binary'), tableDigests(target.url('shop'), ['public.readings'], 'binary')]);
      expect(b).toEqual(a);
      expect(a.get('public.readings')!.rows).toBeGreaterThan(50000);
    } finally {
      await replica.destroy();
    }
  });
});
