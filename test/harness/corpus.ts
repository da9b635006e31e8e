import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * The corpus of real-world shapes (test/fixtures/corpus/*.sql, in file order; a file whose first
 * line is `-- requires: N` only on a source of major N or later), the write workload run on it
 * while CDC streams, and comparisons that share no code with pgshift: every table's rows and the
 * catalog (owners, constraints, indexes, comments, sequences, materialized views, large objects).
 */
const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus');

export function corpusFiles(major: number): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .filter((f) => {
      const m = /^-- requires: (\d+)/.exec(readFileSync(path.join(DIR, f), 'utf8'));
      return !m || major >= Number(m[1]);
    });
}

export async function loadCorpus(url: string, major: number): Promise<string[]> {
  const files = corpusFiles(major);
  await withClient(url, async (c) => {
    for (const f of files) await c.query(readFileSync(path.join(DIR, f), 'utf8'));
  });
  return files;
}

/** Writes while CDC runs: key changes, delete and re-insert, TOAST updates, a large transaction, TRUNCATE, sequences. */
export const WORKLOAD: string[] = [
  // Key changes (the row moves), and a key change in a partitioned table across partitions.
  `UPDATE corpus.types SET id = id + 100000 WHERE id BETWEEN 4 AND 60`,
  `UPDATE corpus.measure SET at = at + 366 WHERE id BETWEEN 1 AND 30`,
  `UPDATE "Odd Schema"."Table ""Quoted"" Name" SET "Id" = "Id" + 1000, "col with space" = 'moved' WHERE "Id" <= 10`,
  // Delete and re-insert the same key with other values.
  `DELETE FROM many.t001 WHERE id = 1; INSERT INTO many.t001 (id, v) VALUES (1, 're-inserted')`,
  `DELETE FROM corpus.types WHERE id = 2; INSERT INTO corpus.types (id, tx, f8, mon) VALUES (2, 'back again', 'NaN', 12.34)`,
  // TOAST: an unchanged TOAST value beside a changed column, a changed one, a new large one.
  `UPDATE corpus.blobs SET small = 'changed beside 20 MB' WHERE id = 1`,
  `UPDATE corpus.blobs SET big = big || 'tail' WHERE id = 2`,
  `UPDATE corpus.blobs SET big = repeat('y', 3000000), bin = NULL WHERE id = 3`,
  `INSERT INTO corpus.blobs VALUES (100, 'new', repeat(md5('n'), 50000), decode(repeat('ab', 100000), 'hex'))`,
  // A large transaction.
  `BEGIN;
   INSERT INTO corpus.measure (id, at, region, value, note) SELECT 100000 + i, date '2023-01-01' + (i % 1090), (ARRAY['eu', 'us', 'apac'])[1 + i % 3], i, 'bulk' FROM generate_series(1, 20000) i;
   UPDATE corpus.measure SET value = -value WHERE id BETWEEN 100000 AND 105000;
   DELETE FROM corpus.measure WHERE id BETWEEN 105001 AND 106000;
   COMMIT`,
  // TRUNCATE, and rows after it.
  `TRUNCATE many.t002; INSERT INTO many.t002 (id, v) VALUES (7, 'after truncate')`,
  // Inheritance: rows of the parent and of a child.
  `INSERT INTO corpus.dog VALUES (500, 'late dog', 3, 'mixed'); UPDATE corpus.animal SET legs = 2 WHERE id = 1; DELETE FROM corpus.cat WHERE id = 3`,
  // A DEFERRABLE key (replicated under REPLICA IDENTITY FULL): two positions swapped, a key moved, a row gone.
  `BEGIN; UPDATE corpus.playlist_item SET position = 3 - position WHERE id IN (1, 2); UPDATE corpus.playlist_item SET id = id + 1000 WHERE id > 295; DELETE FROM corpus.playlist_item WHERE id = 10; COMMIT`,
  // Circular deferrable foreign keys in one transaction.
  `BEGIN; INSERT INTO corpus.team VALUES (99, 'late team', 9999); INSERT INTO corpus.player VALUES (9999, 99, NULL); COMMIT`,
  // A zero-column table: rows in and out.
  `INSERT INTO corpus.nothing DEFAULT VALUES; INSERT INTO corpus.nothing SELECT FROM generate_series(1, 3); DELETE FROM corpus.nothing WHERE ctid = (SELECT min(ctid) FROM corpus.nothing)`,
  // Sequences: descending, cycling past their end, identity.
  `INSERT INTO corpus.ledger (amount) SELECT i FROM generate_series(1, 50) i`,
  `SELECT nextval('corpus.cycle_up') FROM generate_series(1, 9)`,
  `SELECT nextval('corpus.cycle_down') FROM generate_series(1, 5)`,
  `INSERT INTO corpus.ident_down (v) VALUES ('late')`,
  `INSERT INTO corpus.ticket (note) VALUES ('late'); INSERT INTO corpus.voucher (note) VALUES ('late')`,
  // The unlogged table: carried only at the cut-over.
  `INSERT INTO corpus.cache VALUES ('late', '{"v": "late"}'); DELETE FROM corpus.cache WHERE k = 'k1'`,
  `UPDATE corpus.types SET jb = jsonb_set(coalesce(jb, '{}'), '{late}', 'true'), co = ROW('New St', 'Genève', NULL, '(1,1)') WHERE id = 1`,
  `UPDATE "ünï.cødé"."日本語 テーブル" SET "値" = 'さようなら' WHERE id < 10`,
  // Large objects: a new one, one rewritten, one removed (nothing replicates them).
  `SELECT lo_from_bytea(777777, '\\x6c617465'::bytea)`,
  `SELECT lo_put(min(oid), 0, '\\x52455752495454454e') FROM pg_largeobject_metadata`,
  `SELECT lo_unlink(min(oid)) FROM pg_largeobject_metadata WHERE oid > (SELECT min(oid) FROM pg_largeobject_metadata)`,
  // Keyless tables: one of ten equal rows changed, one deleted; a json column in the identity.
  `UPDATE corpus.dupes SET b = 'changed' WHERE ctid = (SELECT min(ctid) FROM corpus.dupes WHERE a = 1)`,
  `DELETE FROM corpus.dupes WHERE ctid = (SELECT min(ctid) FROM corpus.dupes WHERE a = 2)`,
  `UPDATE corpus.keyless_json SET doc = '{"changed": true}' WHERE id = 5`,
  `DELETE FROM corpus.keyless_json WHERE id = 6`,
  `UPDATE corpus.by_index SET code = 'renamed', v = -1 WHERE code = 'code-1'`,
  `UPDATE corpus.composite_key SET region = 'west' WHERE seq < 20`,
  `INSERT INTO corpus.orders (at, qty) VALUES ('2026-06-01', 7); UPDATE corpus.orders SET at = '2025-02-02' WHERE id = 1`,
  `UPDATE corpus.wide SET c299 = 'late' WHERE id = 1`,
  // Matched on every column, a TOASTed one included; unchanged TOAST beside a changed column.
  `UPDATE corpus.keyless_toast SET a = a + 10 WHERE a = 1; DELETE FROM corpus.keyless_toast WHERE a = 2`,
  `UPDATE corpus.bounded SET a = '[-3:-2]={7,8}' WHERE id = 2`,
  `SELECT nextval('corpus.small_seq') FROM generate_series(1, 20)`,
  // Rows of a table owned by a NOLOGIN role under row-level security, and of an extension type.
  `UPDATE owned.accounts SET balance = balance + 1 WHERE id % 4 = 0; INSERT INTO owned.accounts VALUES (1000, 't1', 0, 'new')`,
  `UPDATE corpus.tagged SET attrs = attrs || hstore('late', 'yes') WHERE id < 20`,
  // Changes across the chunks of odd keys.
  `UPDATE corpus.icu_key SET n = -n WHERE n % 9 = 0; DELETE FROM corpus.icu_key WHERE n % 13 = 0`,
  `UPDATE corpus.float_key SET v = 'changed' WHERE k > 100 OR k = 'NaN'; DELETE FROM corpus.float_key WHERE k < -200`,
  `UPDATE corpus.tz_key SET at = at + interval '1 year' WHERE v % 50 = 0`,
  `UPDATE corpus.enum_key SET m = 'happy', n = n + 100000 WHERE m = 'meh' AND n < 300`,
  `DELETE FROM corpus.bytea_key WHERE v % 7 = 0; UPDATE corpus.bool_key SET b = NOT b WHERE n % 10 = 0`,
];

/** Schema changes while CDC runs (cdc.ddl: follow carries them), with rows around them. */
export const DDL_WORKLOAD: string[] = [
  `ALTER TABLE corpus.ticket ADD COLUMN priority int DEFAULT 3`,
  `INSERT INTO corpus.ticket (note, priority) VALUES ('after add column', 1)`,
  `CREATE INDEX ledger_amount_idx ON corpus.ledger (amount)`,
  `CREATE TABLE corpus.newcomer (id int PRIMARY KEY, "Name" text, at timestamptz DEFAULT now())`,
  `INSERT INTO corpus.newcomer (id, "Name") SELECT i, 'new ' || i FROM generate_series(1, 25) i`,
  `COMMENT ON TABLE corpus.newcomer IS 'created while CDC ran'`,
  `UPDATE corpus.ticket SET priority = 2 WHERE id % 2 = 0`,
  // On a partitioned table (reaching every partition) and an inheritance parent.
  `ALTER TABLE corpus.measure ADD COLUMN quality smallint`,
  `CREATE INDEX measure_region_idx ON corpus.measure (region, at)`,
  `UPDATE corpus.measure SET quality = 1 WHERE id % 100 = 0`,
  `ALTER TABLE corpus.animal ADD COLUMN born date`,
  `UPDATE corpus.dog SET born = '2020-02-02' WHERE id < 5`,
  // A new table with an odd name in a migrated schema, and a column dropped.
  `CREATE TABLE "Odd Schema"."new.table ""x""" ("Key" int PRIMARY KEY, "v a l" text)`,
  `INSERT INTO "Odd Schema"."new.table ""x""" VALUES (1, 'one'), (2, 'two')`,
  `ALTER TABLE corpus.wide DROP COLUMN c150`,
  `TRUNCATE corpus.events; INSERT INTO corpus.events VALUES (1, '2020-01-01', 'old'), (2, '2030-01-01', 'new')`,
  // A generated column added, a column's type changed (a rewrite), a column renamed, a new
  // partition, a table dropped, a sequence made and used.
  `ALTER TABLE corpus.computed ADD COLUMN tripled int GENERATED ALWAYS AS (id * 3) STORED`,
  `INSERT INTO corpus.computed (id) VALUES (11)`,
  `ALTER TABLE corpus.moods ALTER COLUMN id TYPE bigint`,
  `ALTER TABLE corpus.legacy RENAME COLUMN qty TO quantity`,
  `UPDATE corpus.legacy SET quantity = 9 WHERE id = 2`,
  `CREATE TABLE corpus.measure_2026 PARTITION OF corpus.measure FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
  `INSERT INTO corpus.measure (id, at, region, value) VALUES (900001, '2026-05-05', 'eu', 1.5)`,
  `DROP TABLE many.t200`,
  // An unlogged table made under CDC: unlogged.mode copy-at-cutover carries it in the window.
  `CREATE UNLOGGED TABLE corpus.late_cache (k int PRIMARY KEY, v text); INSERT INTO corpus.late_cache SELECT i, 'late ' || i FROM generate_series(1, 30) i`,
  `CREATE SEQUENCE corpus.late_seq INCREMENT -2 START -7 MINVALUE -1000 MAXVALUE -1; SELECT nextval('corpus.late_seq'), nextval('corpus.late_seq')`,
];

export async function runStatements(url: string, statements: string[]): Promise<void> {
  await withClient(url, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

const CANONICAL = `SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET bytea_output = 'hex'`;
const USER_TABLES = `c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift') AND n.nspname NOT LIKE 'pg\\_%'`;

/**
 * Every user table's rows, each table's own (ONLY), printed as text under the same settings on
 * both sides, sorted and hashed: no key, order or type support needed (zero-column tables too).
 */
export async function rowDigests(url: string): Promise<Record<string, { rows: number; sha: string }>> {
  return withClient(url, async (c) => {
    await c.query(CANONICAL);
    const tables = await c.query<{ t: string; cols: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t,
              coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') AS cols
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_TABLES} ORDER BY 1`,
    );
    const out: Record<string, { rows: number; sha: string }> = {};
    for (const { t, cols } of tables.rows) {
      const chunks: Buffer[] = [];
      for await (const chunk of c.query(copyTo(`COPY (SELECT ${cols} FROM ONLY ${t}) TO STDOUT`))) chunks.push(chunk as Buffer);
      const lines = Buffer.concat(chunks).toString('utf8').split('\n');
      lines.pop();
      lines.sort();
      out[t] = { rows: lines.length, sha: createHash('sha256').update(lines.join('\n')).digest('hex') };
    }
    return out;
  });
}

/** The catalog as canonical text, object by object: what must be the same after the move. */
export async function catalogFacts(url: string): Promise<Record<string, Record<string, string>>> {
  return withClient(url, async (c) => {
    // 17's MAINTAIN privilege (m) appears in a newer target's ACLs of the same grants: left out.
    const noMaintain = (v: string) => (v ? v.replace(/=([a-zA-Z*]*)\//g, (_all, privs: string) => `=${privs.replace(/m\*?/g, '')}/`) : v);
    const q = async (text: string) => Object.fromEntries((await c.query<{ k: string; v: string }>(text)).rows.map((r) => [r.k, noMaintain(r.v)]));
    const userNs = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift') AND n.nspname NOT LIKE 'pg\\_%'`;
    return {
      relations: await q(`SELECT format('%I.%I', n.nspname, c.relname) AS k,
          format('%s %s owner=%s persistence=%s populated=%s', c.relkind, coalesce(pg_get_partkeydef(c.oid), ''), pg_get_userbyid(c.relowner), c.relpersistence, c.relispopulated) AS v
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userNs} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')`),
      partitions: await q(`SELECT format('%I.%I', n.nspname, c.relname) AS k, format('%s of %s', pg_get_expr(c.relpartbound, c.oid), i.inhparent::regclass) AS v
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_inherits i ON i.inhrelid = c.oid WHERE ${userNs}`),
      columns: await q(`SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS k,
          format('%s notnull=%s default=%s', format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)) AS v
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE ${userNs} AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped`),
      constraints: await q(`SELECT format('%I.%I.%I', n.nspname, c.relname, k.conname) AS k,
          format('%s deferrable=%s deferred=%s validated=%s', pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred, k.convalidated) AS v
          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          -- PostgreSQL 18 keeps NOT NULL as constraints too (contype n); the columns compare NOT NULL.
          WHERE ${userNs} AND k.contype <> 'n'`),
      indexes: await q(`SELECT format('%I.%I', n.nspname, ic.relname) AS k, pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid AS v
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace WHERE ${userNs}`),
      comments: await q(`SELECT format('%s %s %s', d.classoid::regclass, pg_describe_object(d.classoid, d.objoid, d.objsubid), d.objsubid) AS k, d.description AS v
          FROM pg_description d WHERE d.objoid >= 16384 AND pg_describe_object(d.classoid, d.objoid, d.objsubid) NOT LIKE '%pgshift%'
          UNION ALL SELECT 'schema ' || n.nspname, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n WHERE ${userNs} AND obj_description(n.oid, 'pg_namespace') IS NOT NULL`),
      sequences: await q(`SELECT format('%I.%I', schemaname, sequencename) AS k,
          format('%s start=%s inc=%s min=%s max=%s cycle=%s last=%s', data_type, start_value, increment_by, min_value, max_value, cycle, last_value) AS v
          FROM pg_sequences WHERE schemaname NOT IN ('pgshift')`),
      types: await q(`SELECT format('%I.%I', n.nspname, t.typname) AS k,
          format('%s %s', t.typtype, coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod))) AS v
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE ${userNs} AND t.typtype IN ('e', 'd', 'c') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')`),
      largeObjects: await q(`SELECT 'lo ' || m.oid AS k, format('owner=%s md5=%s acl=%s', pg_get_userbyid(m.lomowner), md5(lo_get(m.oid)), m.lomacl) AS v FROM pg_largeobject_metadata m`),
      acls: await q(`SELECT format('%I.%I', n.nspname, c.relname) AS k, format('rls=%s force=%s acl=%s', c.relrowsecurity, c.relforcerowsecurity, c.relacl) AS v
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userNs} AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          UNION ALL SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname), a.attacl::text
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userNs} AND a.attacl IS NOT NULL
          UNION ALL SELECT 'schema ' || n.nspname, format('owner=%s acl=%s', pg_get_userbyid(n.nspowner), n.nspacl) FROM pg_namespace n WHERE ${userNs} AND n.nspname <> 'public'
          UNION ALL SELECT format('default %s %s %s', pg_get_userbyid(d.defaclrole), coalesce(d.defaclnamespace::regnamespace::text, '-'), d.defaclobjtype), d.defaclacl::text FROM pg_default_acl d`),
      policies: await q(`SELECT format('%I.%I.%I', schemaname, tablename, policyname) AS k, format('%s %s roles=%s using=%s check=%s', permissive, cmd, roles, qual, with_check) AS v FROM pg_policies`),
      roles: await q(`SELECT r.rolname AS k, format('login=%s super=%s createdb=%s member of %s', r.rolcanlogin, r.rolsuper, r.rolcreatedb,
          (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)) AS v
          FROM pg_roles r WHERE r.rolname NOT LIKE 'pg\\_%' AND r.rolname NOT IN ('postgres', 'shop_app')`),
      extensions: await q(`SELECT extname AS k, extversion AS v FROM pg_extension`),
    };
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
