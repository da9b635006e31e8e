import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { createSample } from '../../src/local/sample.js';
import type { LocalCluster } from '../../src/local/cluster.js';
import { runAssess, type AssessResult, type Finding } from '../../src/phases/assess.js';
import { phaseContext } from '../../src/phases/context.js';
import { runCli } from '../harness/cli.js';
import { any, until } from '../harness/faults.js';
import { repeatUntilStopped } from '../harness/load.js';
import { planYaml, writePlanFile } from '../harness/plan.js';
import { sql, startServer } from '../harness/servers.js';

/**
 * Every finding of assess, built for real on a PostgreSQL 13 source migrating to 17, and a clean
 * schema that yields no blocker.
 */
let source: LocalCluster;
let target: LocalCluster;
let clean: LocalCluster;
let dirty: AssessResult;
let holder: pg.Client;

function plan(extra: string, sourceUrl = source.url('dirty')) {
  return parsePlan(planYaml(extra), 'migration.yml', { SOURCE_URL: sourceUrl, TARGET_URL: target.url('tgt') });
}

const ASSESS = `assess: { walSampleSeconds: 0.5, longTransactionSeconds: 1, lobExactBelow: 64kB, lobSampleRows: 500 }`;

beforeAll(async () => {
  [source, target, clean] = await Promise.all([
    startServer(13, 'assess-src', { max_prepared_transactions: 5, max_replication_slots: 1, max_wal_senders: 1, max_slot_wal_keep_size: "'1MB'", wal_sender_timeout: "'5s'", logical_decoding_work_mem: "'16MB'" }, {
      extensions: [{ name: 'pgshift_probe', defaultVersion: '1.1', versions: ['1.0', '1.1'] }],
    }),
    startServer(17, 'assess-tgt', { max_logical_replication_workers: 1 }, { extensions: [{ name: 'pgshift_probe', defaultVersion: '1.0', versions: ['1.0'] }] }),
    startServer(13, 'assess-clean'),
  ]);
  await sql(source.url(), 'CREATE DATABASE dirty');
  await sql(target.url(), 'CREATE DATABASE tgt');
  await sql(target.url('tgt'), `CREATE FUNCTION audit_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
    CREATE EVENT TRIGGER target_ddl ON ddl_command_start EXECUTE FUNCTION audit_ddl()`);
  const d = source.url('dirty');
  await sql(d, `
    CREATE EXTENSION adminpack;
    CREATE EXTENSION pgshift_probe;
    CREATE TABLE no_key (a int, b text);
    CREATE TABLE no_key_unique (a int NOT NULL, b text);
    CREATE UNIQUE INDEX no_key_unique_a ON no_key_unique (a);
    CREATE TABLE ri_nothing (id int PRIMARY KEY); ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;
    CREATE TABLE ri_full (a int, b text); ALTER TABLE ri_full REPLICA IDENTITY FULL;
    CREATE TABLE ri_index (a int NOT NULL, b text); CREATE UNIQUE INDEX ri_index_a ON ri_index (a); ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_a;
    CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
    CREATE FOREIGN DATA WRAPPER dummy_fdw; CREATE SERVER remote FOREIGN DATA WRAPPER dummy_fdw;
    CREATE FOREIGN TABLE remote_things (id int) SERVER remote;
    CREATE TABLE measurements (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
    CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    CREATE TABLE gen (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty int, twice int GENERATED ALWAYS AS (qty * 2) STORED);
    CREATE MATERIALIZED VIEW gen_summary AS SELECT count(*) FROM gen;
    CREATE TABLE pk_and_unique (id int PRIMARY KEY, email text UNIQUE);
    CREATE TABLE docs (id int PRIMARY KEY, body jsonb, note varchar(20), raw bytea);
    INSERT INTO docs VALUES (1, jsonb_build_object('big', repeat('x', 300000)), 'short', 'abc'), (2, '{}', 'x', NULL);
    CREATE TABLE many_docs (id int PRIMARY KEY, body text);
    INSERT INTO many_docs SELECT i, repeat('y', 100) FROM generate_series(1, 20000) i;
    CREATE TABLE never_analyzed (id int PRIMARY KEY);
    CREATE SEQUENCE loose_seq;
    CREATE SEQUENCE tight_seq AS integer; SELECT setval('tight_seq', 2000000000);
    SELECT lo_create(0);
    CREATE FUNCTION note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
    CREATE EVENT TRIGGER ddl_watch ON ddl_command_end EXECUTE FUNCTION note_ddl();
    CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.orphan (id int PRIMARY KEY);
  `);
  await sql(d, `ANALYZE no_key, no_key_unique, ri_nothing, ri_full, ri_index, measurements_2026, gen, pk_and_unique, docs, many_docs, elsewhere.orphan`);
  await sql(d, 'BEGIN; PREPARE TRANSACTION $$stuck$$');
  holder = new pg.Client({ connectionString: d });
  await holder.connect();
  await holder.query('BEGIN; SELECT txid_current()');
  const [{ pid }] = (await holder.query('SELECT pg_backend_pid() AS pid')).rows;
  // Older than longTransactionSeconds (1) by the time assess reads it.
  await until('the held transaction is over a second old', () => any(d, `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND now() - xact_start > interval '1.2 s'`, [pid]));
  // WAL written while assess samples its rate, against a 1MB max_slot_wal_keep_size.
  const stopWriter = repeatUntilStopped(() => sql(d, 'INSERT INTO many_docs SELECT 100000 + (random() * 1e8)::int, repeat($$z$$, 2000) FROM generate_series(1, 200) ON CONFLICT DO NOTHING'), 50);
  try {
    dirty = await runAssess(phaseContext(plan(`${ASSESS.replace('}', ', copyRate: 1kB }')}
groups:
  - { name: public, tables: [public.*] }
  - { name: ghost, tables: [nothing.here] }
cdc: { engine: dms, dms: { plugin: pglogical, lobMaxSizeKb: 32 } }`), silentLogger));
  } finally {
    await stopWriter();
  }
});

afterAll(async () => {
  await holder?.end().catch(() => {});
  await sql(source.url('dirty'), 'ROLLBACK PREPARED $$stuck$$').catch(() => {});
});

function find(code: string, object?: string): Finding | undefined {
  return dirty.findings.find((f) => f.code === code && (object === undefined || f.object === object));
}

describe('assess finds every situation on a real source', () => {
  it('servers: versions, settings, slots, workers, transactions, extensions, triggers, large objects', () => {
    expect(dirty.source.major).toBe(13);
    expect(dirty.target.major).toBe(17);
    expect(find('source.slots')).toMatchObject({ severity: 'blocker', message: expect.stringMatching(/2 replication slot\(s\) needed/) });
    expect(find('target.workers')).toBeUndefined(); // engine dms: no apply workers on the target
    expect(find('source.pglogical')?.severity).toBe('blocker');
    expect(find('source.wal_senders')).toMatchObject({ severity: 'blocker', message: expect.stringMatching(/2 WAL sender\(s\) needed/) });
    expect(find('source.wal_sender_timeout')?.severity).toBe('warning');
    expect(find('source.logical_decoding_work_mem')?.severity).toBe('info');
    expect(find('target.event-trigger', 'event trigger target_ddl')?.severity).toBe('warning');
    expect(find('source.long-transaction')?.severity).toBe('warning');
    expect(find('source.prepared-transaction', 'prepared transaction stuck')?.severity).toBe('blocker');
    expect(find('extension.missing', 'extension adminpack')?.severity).toBe('blocker');
    expect(find('extension.version', 'extension pgshift_probe')).toMatchObject({ severity: 'warning', message: "the target offers only older versions than the source's 1.1; the full load installs 1.0" });
    expect(dirty.extensions.find((e) => e.name === 'pgshift_probe')).toMatchObject({ source: '1.1', available: ['1.0'], install: '1.0', relation: 'older' });
    expect(find('source.event-trigger', 'event trigger ddl_watch')?.severity).toBe('warning');
    expect(find('source.large-objects')?.object).toBe('1 large object(s)');
    expect(find('wal.headroom')).toMatchObject({ severity: 'blocker' });
    expect(dirty.wal.bytesPerSecond).toBeGreaterThan(0);
  });

  it('tables: keys and replica identities, kinds, generated and identity columns, statistics, groups', () => {
    // DMS publishes nothing on the source: a key-less table is safe there, its updates just not carried.
    expect(find('table.no-key', 'public.no_key')).toMatchObject({ severity: 'warning', message: expect.stringMatching(/DMS carries its inserts but not its UPDATE and DELETE/) });
    expect(find('table.no-key', 'public.no_key_unique')?.severity).toBe('warning');
    expect(find('table.replica-identity-nothing', 'public.ri_nothing')?.severity).toBe('blocker');
    expect(find('table.replica-identity-full', 'public.ri_full')?.severity).toBe('blocker'); // DMS + pglogical
    expect(find('table.replica-identity-index', 'public.ri_index')?.severity).toBe('info');
    // An unlogged table with no unlogged.mode in the plan: a blocker naming the settings to choose.
    expect(find('unlogged.undecided', 'public.scratch')).toMatchObject({ severity: 'blocker', fix: expect.stringContaining('unlogged') });
    expect(find('table.foreign', 'public.remote_things')?.severity).toBe('info');
    expect(find('table.matview', 'public.gen_summary')?.severity).toBe('info');
    expect(find('table.partitioned', 'public.measurements')?.severity).toBe('info');
    expect(find('table.generated', 'public.gen')?.message).toMatch(/twice/);
    expect(find('table.identity', 'public.gen')?.message).toMatch(/id/);
    expect(find('table.no-statistics', 'public.never_analyzed')?.severity).toBe('info');
    expect(find('table.unassigned', 'elsewhere.orphan')?.severity).toBe('warning');
    expect(find('group.pattern', 'group ghost')?.severity).toBe('warning');
    expect(find('group.empty', 'group ghost')?.severity).toBe('blocker');
    expect(find('table.no-key', 'public.docs')).toBeUndefined();
  });

  it('sequences: owned by no column, and an int4 near its limit', () => {
    expect(find('sequence.unowned', 'public.loose_seq')?.severity).toBe('info');
    expect(find('sequence.near-limit', 'public.tight_seq')).toMatchObject({ severity: 'warning', message: expect.stringMatching(/93.1% of its maximum 2147483647/) });
    expect(find('sequence.near-limit', 'public.loose_seq')).toBeUndefined();
  });

  it('LOBs: exact and sampled sizes, limits and truncation', () => {
    const docs = dirty.tables.find((t) => t.table === 'public.docs')!;
    expect(docs.lob).toMatchObject({ exact: true, mode: 'limited', truncatedAtTaskLimit: true });
    expect(docs.lob!.columns.find((c) => c.column === 'body')!.maxBytes).toBe(300011);
    expect(docs.lob!.columns.map((c) => c.column)).toEqual(['body', 'raw']); // varchar(20) is not a LOB
    expect(docs.lob!.limitKb).toBe(Math.ceil((300011 * 3) / 1024));
    expect(find('lob.truncation', 'public.docs')?.fix).toBe(`use lobMaxSizeKb: ${docs.lob!.limitKb} for this table`);
    const many = dirty.tables.find((t) => t.table === 'public.many_docs')!;
    expect(many.lob!.exact).toBe(false);
    expect(many.lob!.rowsScanned).toBeLessThan(20000);
    expect(many.lob!.samplePercent).toBeLessThan(100);
    expect(dirty.lobScan.sampledTables).toBeGreaterThanOrEqual(1);
  });

  it('batch apply: a key and no other unique constraint', () => {
    const by = (t: string) => dirty.tables.find((p) => p.table === t)!.batchApply;
    expect(by('public.pk_and_unique')).toBe(false);
    expect(by('public.no_key')).toBe(false);
    expect(by('public.docs')).toBe(true);
  });

  it('proposes seed and balanced groups', () => {
    expect(dirty.proposal.seed[0]).toMatchObject({ name: 'many_docs', tables: ['public.many_docs'] });
    expect(dirty.proposal.seed.at(-1)).toMatchObject({ name: 'rest', tables: ['*.*'] });
    const balanced = dirty.proposal.balanced;
    const batch = new Set(dirty.tables.filter((t) => t.batchApply).map((t) => t.table));
    for (const g of balanced) {
      const kinds = new Set(g.tables.map((t) => batch.has(t)));
      expect(kinds.size).toBe(1); // never mixes batch-apply eligibility
    }
  });

  it('privileges: a role that cannot replicate, publish or read', async () => {
    await sql(source.url('dirty'), `CREATE ROLE weak LOGIN PASSWORD 'weak-pw'; GRANT SELECT ON public.docs TO weak`);
    const r = await runAssess(phaseContext(plan(`${ASSESS}\ngroups: [{ name: docs, tables: [public.docs] }, { name: gen, tables: [public.gen] }]`, source.url('dirty', 'weak', 'weak-pw')), silentLogger));
    expect(r.findings.find((f) => f.code === 'source.privilege.replication')).toMatchObject({ severity: 'blocker', object: 'source role weak' });
    expect(r.findings.find((f) => f.code === 'table.privilege.owner' && f.object === 'public.docs')?.severity).toBe('blocker');
    expect(r.findings.find((f) => f.code === 'table.privilege.select' && f.object === 'public.gen')?.severity).toBe('blocker');
    expect(r.findings.find((f) => f.code === 'target.workers')).toMatchObject({ severity: 'blocker', message: expect.stringMatching(/max_logical_replication_workers is 1/) });
  });

  it('a clean schema has no blocker', async () => {
    await sql(clean.url(), 'CREATE ROLE shop_app');
    // The sample grants to it: a target without it would be a blocker (roles.missing).
    await sql(target.url(), 'CREATE ROLE shop_app');
    await sql(clean.url(), 'CREATE DATABASE shop');
    const c = new pg.Client({ connectionString: clean.url('shop') });
    await c.connect();
    await createSample(c, 0.02);
    await c.end();
    const r = await runAssess(phaseContext(plan(ASSESS, clean.url('shop')), silentLogger));
    expect(r.findings.filter((f) => f.severity === 'blocker')).toEqual([]);
    expect(r.blockers).toBe(0);
    // Default servers keep WAL for slots without limit: a real risk, reported as a warning.
    expect(r.findings.find((f) => f.code === 'wal.unlimited')?.severity).toBe('warning');
    expect(r.findings.find((f) => f.code === 'source.wal_sender_timeout')).toBeUndefined();
  });

  it('writes the proposed plan, and a re-run keeps the edits', async () => {
    const file = writePlanFile(ASSESS + '\ncdc: { engine: dms, dms: { plugin: test_decoding } }');
    const env = { SOURCE_URL: clean.url('shop'), TARGET_URL: target.url('tgt') };
    const first = await runCli(['assess', '--write-plan', '-c', file], env);
    expect(first.code, first.stderr).toBe(0);
    const written = readFileSync(file, 'utf8');
    expect(written).toContain('groups:');
    expect(written).toContain('name: rest');
    expect(parsePlan(written, file, env).groups.length).toBeGreaterThan(1);
    // People edit the groups; assess must not undo that.
    const edited = written.replace(/groups:[\s\S]*?(?=\n\w)/, 'groups:\n  - { name: mine, tables: ["*.*"] }');
    writeFileSync(file, edited);
    const again = await runCli(['assess', '--write-plan', '-c', file], env);
    expect(again.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(edited);
  });

  it('bad input: unreachable server, no privilege to connect, missing database → exit 2', async () => {
    const file = writePlanFile(ASSESS);
    await sql(clean.url(), `CREATE ROLE nobody LOGIN PASSWORD 'nobody-pw'; REVOKE CONNECT ON DATABASE shop FROM PUBLIC`);
    const noConnect = await runCli(['assess', '-c', file], { SOURCE_URL: clean.url('shop', 'nobody', 'nobody-pw'), TARGET_URL: target.url('tgt') });
    expect(noConnect.code).toBe(2);
    expect(noConnect.stderr).toMatch(/permission denied for database "shop"/);
    const missing = await runCli(['assess', '-c', file], { SOURCE_URL: clean.url('nope'), TARGET_URL: target.url('tgt') });
    expect(missing.code).toBe(2);
    const unreachable = await runCli(['assess', '-c', file], { SOURCE_URL: 'postgresql://u:p@127.0.0.1:1/db', TARGET_URL: target.url('tgt') });
    expect(unreachable.code).toBe(2);
  });
});
