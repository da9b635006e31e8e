import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { phaseContext } from '../../src/phases/context.js';
import type { PgshiftError } from '../../src/core/errors.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { listTables } from '../../src/pg/catalog.js';
import { copyFormatOf } from '../../src/pg/copy.js';
import { diffSchemas, schemaDiffOptions } from '../../src/pg/schema-diff.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { runCli } from '../harness/cli.js';
import { testPlan, writePlanFile } from '../harness/plan.js';
import { sql, startPair, seedSample, withClients } from '../harness/servers.js';

describe('full-load 13 → 17', () => {
  it('copies the sample schema and data exactly, with post-data and sequences', async () => {
    const pair = await startPair(13, 17);
    await seedSample(pair.sourceUrl, 0.05);
    // Indexes that the early builds must get exactly right, or leave to post-data.
    await sql(pair.sourceUrl, `
      CREATE EXTENSION IF NOT EXISTS btree_gist;
      CREATE TABLE shop."Idx Cases" (id int, code text NOT NULL, during tsrange, note text);
      INSERT INTO shop."Idx Cases" SELECT i, 'c' || i, tsrange('2020-01-01'::timestamp + i * interval '1 day', '2020-01-01'::timestamp + (i + 1) * interval '1 day'), 'n' FROM generate_series(1, 500) i;
      ALTER TABLE shop."Idx Cases" ADD CONSTRAINT "Idx Cases pk" PRIMARY KEY (id);
      ALTER TABLE shop."Idx Cases" ADD CONSTRAINT idx_cases_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED;
      ALTER TABLE shop."Idx Cases" ADD CONSTRAINT idx_cases_no_overlap EXCLUDE USING gist (during WITH &&);
      CREATE UNIQUE INDEX idx_cases_ident ON shop."Idx Cases" (code, id);
      ALTER TABLE shop."Idx Cases" REPLICA IDENTITY USING INDEX idx_cases_ident;
      CREATE INDEX idx_cases_lower ON shop."Idx Cases" (lower(note));
      CREATE INDEX idx_cases_partial ON shop."Idx Cases" (id) WHERE id > 10;
      ALTER TABLE shop."Idx Cases" CLUSTER ON idx_cases_lower;`);
    const plan = testPlan(pair.sourceUrl, pair.targetUrl);
    const result = await runFullLoad(phaseContext(plan, silentLogger));
    expect(result.postData).toBe('done');
    // Built per table as tables landed; post-data brought the rest (partitioned, exclusion).
    expect(result.indexesBuiltEarly).toBeGreaterThan(5);
    const diffs = await withClients(pair.sourceUrl, pair.targetUrl, (s, t) => diffSchemas(s, t, schemaDiffOptions(plan)));
    expect(diffs).toEqual([]); // btree_gist 1.5 on 13 is installed at 1.5 on 17, not its default 1.7
    const ident = await sql(pair.targetUrl, `SELECT c.relreplident AS r, i.indisreplident AS ri, i2.indisclustered AS cl
      FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid AND i.indexrelid = 'shop.idx_cases_ident'::regclass
      JOIN pg_index i2 ON i2.indexrelid = 'shop.idx_cases_lower'::regclass WHERE c.oid = 'shop."Idx Cases"'::regclass`);
    expect(ident).toEqual([{ r: 'i', ri: true, cl: true }]);
    expect(result.groups).toHaveLength(1);
    expect(result.rows).toBeGreaterThan(0);
    const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, SAMPLE_TABLES), tableDigests(pair.targetUrl, SAMPLE_TABLES)]);
    expect(b).toEqual(a);
    const idx = await sql(pair.targetUrl, `SELECT count(*)::int n FROM pg_indexes WHERE schemaname = 'shop'`);
    expect(idx[0].n).toBeGreaterThan(5);
    const seq = await sql(pair.targetUrl, `SELECT last_value::text v FROM shop.orders_id_seq`);
    const srcSeq = await sql(pair.sourceUrl, `SELECT last_value::text v FROM shop.orders_id_seq`);
    expect(seq[0].v).toBe(srcSeq[0].v);
    const slots = await sql(pair.sourceUrl, `SELECT slot_name FROM pg_replication_slots`);
    expect(slots.map((r) => r.slot_name)).toEqual(['pgshift_shop_all']);
    // pgshift status reads the journal only (it would work from another machine mid-load).
    const st = await runCli(['status', '--json', '-c', writePlanFile()], { SOURCE_URL: 'postgresql://nobody@127.0.0.1:1/unreachable', TARGET_URL: pair.targetUrl });
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout).result;
    expect(status).toMatchObject({ found: true, tables: { done: 10 } });
    expect(status.streams).toEqual([expect.objectContaining({ group: 'all', state: 'loaded', snapshotMode: 'exported' })]);
    expect(status.loads).toEqual([expect.objectContaining({ scope: '*', state: 'done', tables: 10, tablesDone: 10 })]);
    expect(status.loads[0].bytes).toBe(result.bytes);
    expect(status.phases.map((p: { phase: string }) => p.phase)).toEqual(expect.arrayContaining(['full-load', 'full-load:pre-data', 'full-load:post-data']));
  });
});

describe('full-load copy formats, 13 → 17', () => {
  it('copies built-in types in binary and user, reg* and their array types in text, exactly, whatever each database prints by default', async () => {
    const pair = await startPair(13, 17);
    // Text COPY must not depend on how each side prints and reads dates and intervals by default.
    await sql(pair.sourceUrl, `ALTER DATABASE shop SET DateStyle = 'SQL, DMY'; ALTER DATABASE shop SET IntervalStyle = 'sql_standard'`);
    await sql(pair.targetUrl, `ALTER DATABASE shop SET DateStyle = 'SQL, MDY'; ALTER DATABASE shop SET IntervalStyle = 'sql_standard'`);
    await sql(pair.sourceUrl, `
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TYPE pair AS (a int, b text);
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE builtin (id int PRIMARY KEY, f float8, r real, n numeric, ts timestamptz, d date, iv interval, b bytea,
        j jsonb, js json, arr int[], tarr text[], rng int4range, ip inet, u uuid, bits varbit, pt point, t text, bp char(5), g int GENERATED ALWAYS AS (id * 2) STORED);
      INSERT INTO builtin VALUES
        (1, '-0', 'NaN', 'NaN', 'infinity', '-infinity', '1 mon -2 days 03:04:05.678', '\\x00ff', '{"a": [1, 2.50, null]}', '{"b" : 1,  "b": 2}',
         '{1,NULL,3}', '{"x y","",NULL}', '[1,10)', '10.1.2.3/8', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', B'10101', '(1.5,-2)', 'naïve 東京 🐘', 'ab'),
        (2, 1e-310, '3.4e38', '1.000', '2024-02-29 23:59:59.999999+05:30', '0044-03-15 BC', '-178000000 years', '', 'null', '[]',
         '{}', '{}', 'empty', '::1', '00000000-0000-0000-0000-000000000000', B'', '(0,0)', '', NULL),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      CREATE TABLE user_types (id int PRIMARY KEY, m mood, ms mood[], p pair, pos posint, rc regclass, rt regtype[], d date, iv interval, f float8);
      INSERT INTO user_types VALUES (1, 'ok', '{happy,sad}', '(1,"x")', 7, 'builtin', '{int4,mood}', '2026-03-04', '-1 day +02:03:04', 0.1 + 0.2),
        (2, NULL, '{}', NULL, NULL, NULL, NULL, '2026-12-31', '1 year -2 mons', 1e-310);
      -- Enums and domains over built-in types travel in binary (their OIDs differ between the servers).
      CREATE DOMAIN tag_list AS text[] CHECK (cardinality(VALUE) < 10);
      CREATE DOMAIN deep_pos AS posint;
      CREATE TABLE labelled (id int PRIMARY KEY, m mood NOT NULL, pos posint, tags tag_list);
      INSERT INTO labelled VALUES (1, 'happy', 3, '{a,"b c"}'), (2, 'sad', NULL, NULL);
      CREATE TABLE nested (id int PRIMARY KEY, deep deep_pos);
      INSERT INTO nested VALUES (1, 5);
      -- citext and hstore have known binary forms; an array of citext holds the type's OID.
      CREATE EXTENSION citext; CREATE EXTENSION hstore;
      CREATE TABLE ext_types (id int PRIMARY KEY, email citext, attrs hstore);
      INSERT INTO ext_types VALUES (1, 'Ann@Example.COM', 'a=>1, "b c"=>NULL, é=>"x\\"y"'), (2, NULL, '');
      CREATE TABLE ext_arrays (id int PRIMARY KEY, emails citext[]);
      INSERT INTO ext_arrays VALUES (1, '{A@b.c,NULL}');`);
    const tables = await withClients(pair.sourceUrl, pair.targetUrl, async (s) => listTables(s, 130000));
    const byName = new Map(tables.map((t) => [t.name, t]));
    expect(copyFormatOf(byName.get('builtin')!)).toBe('binary');
    expect(copyFormatOf(byName.get('builtin')!, 'text')).toBe('text');
    expect(byName.get('user_types')!.columns.map((c) => [c.name, c.binaryCopy])).toEqual([
      ['id', true], ['m', true], ['ms', false], ['p', false], ['pos', true], ['rc', false], ['rt', false], ['d', true], ['iv', true], ['f', true],
    ]);
    expect(copyFormatOf(byName.get('user_types')!)).toBe('text');
    expect(byName.get('labelled')!.columns.map((c) => [c.name, c.binaryCopy])).toEqual([
      ['id', true], ['m', true], ['pos', true], ['tags', true],
    ]);
    expect(byName.get('nested')!.columns.map((c) => [c.name, c.binaryCopy])).toEqual([['id', true], ['deep', false]]);
    expect(copyFormatOf(byName.get('ext_types')!)).toBe('binary');
    expect(copyFormatOf(byName.get('ext_arrays')!)).toBe('text');
    expect(copyFormatOf(byName.get('labelled')!)).toBe('binary');

    const result = await runFullLoad(phaseContext(testPlan(pair.sourceUrl, pair.targetUrl), silentLogger));
    expect(result.rows).toBe(11);
    // Every value as the server prints it, under the same settings on both sides; regclass and
    // regtype by name (the OIDs differ between the two servers, the names must not).
    const rows = async (c: pg.Client) => {
      await c.query(`SET extra_float_digits = 3; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'`);
      const r = await c.query(`SELECT 'b' || id AS k, row_to_json(builtin)::text AS v FROM builtin
        UNION ALL SELECT 'u' || id, row_to_json(user_types)::text FROM user_types
        UNION ALL SELECT 'l' || id, row_to_json(labelled)::text FROM labelled
        UNION ALL SELECT 'n' || id, row_to_json(nested)::text FROM nested
        UNION ALL SELECT 'x' || id, row_to_json(ext_types)::text FROM ext_types
        UNION ALL SELECT 'y' || id, row_to_json(ext_arrays)::text FROM ext_arrays ORDER BY 1`);
      return r.rows;
    };
    const [a, b] = await withClients(pair.sourceUrl, pair.targetUrl, (s, t) => Promise.all([rows(s), rows(t)]));
    expect(b).toEqual(a);
    expect(a).toHaveLength(11);
    expect(b[6].v).toContain('"rc":"builtin","rt":["integer","mood"]');
  });
});

// From 14 every split is by block range (TID Range Scans read only their pages); before 14 a ctid
// condition filters a whole-table scan, so an integer key's ranges are used where there is one.
describe.each([
  { major: 15, bigSplit: 'ctid' },
  { major: 13, bigSplit: 'key' },
])('full-load of split tables, $major → 17', ({ major, bigSplit }) => {
  it(`splits a large table by ${bigSplit === 'key' ? 'key' : 'block'} range and a key-less one by block range, parts side by side, exactly`, async () => {
    const pair = await startPair(major, 17);
    await sql(pair.sourceUrl, `
      CREATE TABLE big (id bigint PRIMARY KEY, payload text, n int);
      INSERT INTO big SELECT i, repeat(md5(i::text), 4), i % 97 FROM generate_series(1, 150000) i;
      CREATE TABLE heap_only (a int, b text);
      INSERT INTO heap_only SELECT i % 1000, repeat('h', 100) FROM generate_series(1, 100000) i;
      CREATE TABLE small (id int PRIMARY KEY);
      INSERT INTO small SELECT generate_series(1, 10);
      SELECT lo_from_bytea(424242, decode(repeat('ab', 300000), 'hex'));
      SELECT lo_from_bytea(424243, 'small object');
      ANALYZE;`);
    // Publishing heap_only (no key) would break its UPDATE and DELETE on the source: refused
    // before anything is created, unless the plan consents to REPLICA IDENTITY FULL.
    const settings = 'fullLoad: { jobs: 3, splitTablesLargerThan: 4MB, maxPartsPerTable: 5 }';
    const refused = await runFullLoad(phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, settings), silentLogger)).then(
      () => undefined,
      (err: PgshiftError) => err,
    );
    expect([refused?.exitCode, refused?.code]).toEqual([3, 'table.no-key']);
    expect(refused?.message).toMatch(/^public\.heap_only: no primary key and REPLICA IDENTITY DEFAULT/);
    expect(await sql(pair.sourceUrl, `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots, (SELECT count(*) FROM pg_publication)::int AS pubs, (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift')::int AS schemas`)).toEqual([{ slots: 0, pubs: 0, schemas: 0 }]);
    expect(await sql(pair.targetUrl, `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgshift'`)).toEqual([{ n: 0 }]);
    const plan = testPlan(pair.sourceUrl, pair.targetUrl, `${settings}\ncdc: { replicaIdentityFull: [public.heap_only] }`);
    const result = await runFullLoad(phaseContext(plan, silentLogger));
    expect(result.rows).toBe(250010);
    expect(await sql(pair.sourceUrl, `SELECT relreplident AS r FROM pg_class WHERE oid = 'public.heap_only'::regclass`)).toEqual([{ r: 'f' }]);
    await sql(pair.sourceUrl, `UPDATE heap_only SET b = b WHERE a = 1; DELETE FROM heap_only WHERE a = 2`); // the application's writes keep working
    await sql(pair.targetUrl, `DELETE FROM heap_only WHERE a = 2`);
    const tables = ['public.big', 'public.heap_only', 'public.small'];
    const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, tables), tableDigests(pair.targetUrl, tables)]);
    expect(b).toEqual(a);
    const parts = await sql(pair.targetUrl, `SELECT table_name AS t, count(*) FILTER (WHERE part > 0)::int AS parts, bool_or(part = 0) AS whole FROM pgshift.copy_progress WHERE state = 'done' GROUP BY 1 ORDER BY 1`);
    // Parts = ceil(size / 4 MB), at most 5; the whole table is recorded done once every part is.
    expect(parts.map((p) => [p.t, p.parts >= 2 && p.parts <= 5, p.whole])).toEqual([
      ['big', true, true],
      ['heap_only', true, true],
      ['small', false, true],
    ]);
    expect(parts[2].parts).toBe(0);
    const conditions = await sql(pair.targetUrl, `SELECT table_name AS t, bool_and(condition LIKE 'ctid%') AS ctid, bool_and(condition LIKE '"id" %' OR condition LIKE 'id %') AS key
      FROM pgshift.copy_progress WHERE part > 1 GROUP BY 1 ORDER BY 1`);
    expect(conditions).toEqual([
      { t: 'big', ctid: bigSplit === 'ctid', key: bigSplit === 'key' },
      { t: 'heap_only', ctid: true, key: false },
    ]);
    // Large objects travel with the snapshot, OIDs kept.
    const lo = await sql(pair.targetUrl, `SELECT oid::int AS oid, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid`);
    const src = await sql(pair.sourceUrl, `SELECT oid::int AS oid, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid`);
    expect(lo).toEqual(src);
    expect(lo.map((x) => x.oid)).toEqual([424242, 424243]);
  });
});
