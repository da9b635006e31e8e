import { beforeAll, describe, expect, it } from 'vitest';
import { freePort, type LocalCluster } from '../../src/local/cluster.js';
import { runCli } from '../harness/cli.js';
import { writePlanFile } from '../harness/plan.js';
import { sql, startServer, withClient } from '../harness/servers.js';
import { CONTROL_SCHEMA_SQL } from '../../src/journal/journal.js';
import { connect, endpointFor } from '../../src/pg/connect.js';
import { createSubscription } from '../../src/pg/replication.js';

/**
 * Every kind of bad input ends in one line on stderr, exit 2 (input) or 3 (gate), and no change
 * on either server.
 */
let target: LocalCluster;
let source: LocalCluster;
let replicaLevel: LocalCluster;
let newer: LocalCluster;
const plan = writePlanFile();

beforeAll(async () => {
  [target, source, replicaLevel, newer] = await Promise.all([
    startServer(15, 'bad-target'),
    startServer(15, 'bad-source'),
    startServer(15, 'bad-replica-level', { wal_level: 'replica' }),
    startServer(17, 'bad-newer'),
  ]);
  for (const c of [source, replicaLevel, newer]) await sql(c.url(), 'CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, $$a$$)');
  await sql(target.url(), 'SELECT 1');
});

async function unchanged(...clusters: LocalCluster[]) {
  for (const c of clusters) {
    const [s] = await sql(
      c.url(),
      `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots, (SELECT count(*) FROM pg_publication)::int AS pubs,
              (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift')::int AS schemas,
              (SELECT count(*) FROM pg_subscription)::int AS subs`,
    );
    expect(s).toEqual({ slots: 0, pubs: 0, schemas: 0, subs: 0 });
  }
  const tables = await sql(target.url(), `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
  expect(tables[0].n).toBe(0);
}

function expectOneLine(stderr: string) {
  const lines = stderr.trim().split('\n').filter((l) => l.startsWith('pgshift: '));
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('bad input', () => {
  it('unreachable host: exit 2', async () => {
    const port = await freePort();
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: `postgresql://postgres:x@127.0.0.1:${port}/postgres`, TARGET_URL: target.url() });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(new RegExp(`source 127.0.0.1:${port}/postgres is unreachable \\(ECONNREFUSED\\) — check the host and port`));
    await unchanged(target);
  });

  it('wrong password: exit 2, the password never printed', async () => {
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: source.url('postgres', 'postgres', 'Wr0ngPassw0rd'), TARGET_URL: target.url() });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/source 127.0.0.1:\d+\/postgres: password authentication failed for user "postgres"/);
    expect(r.stderr + r.stdout).not.toContain('Wr0ngPassw0rd');
    await unchanged(source, target);
  });

  it('database that does not exist: exit 2', async () => {
    const r = await runCli(['assess', '-c', plan], { SOURCE_URL: source.url('nosuchdb'), TARGET_URL: target.url() });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/database "nosuchdb" does not exist/);
  });

  it('wal_level not logical: exit 3, nothing created', async () => {
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: replicaLevel.url(), TARGET_URL: target.url() });
    expect(r.code).toBe(3);
    expect(expectOneLine(r.stderr)).toMatch(/wal_level is replica; logical decoding needs wal_level = logical — set wal_level = logical/);
    await unchanged(replicaLevel, target);
  });

  it('source newer than pg_dump: exit 2 naming the binary to use, nothing created', async () => {
    await sql(newer.url(), 'CREATE DATABASE tgt');
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: newer.url(), TARGET_URL: newer.url('tgt'), PGSHIFT_PG_BIN: '/usr/lib/postgresql/15/bin' });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/pg_dump is PostgreSQL 15 but the source server is PostgreSQL 17.*install the PostgreSQL 17 \(or newer\) client tools and set fullLoad.pgBinDir/);
    await unchanged(newer);
    expect(await sql(newer.url('tgt'), `SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace`)).toEqual([{ n: 0 }]);
  });

  it('target older than source: exit 3', async () => {
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: newer.url(), TARGET_URL: target.url() });
    expect(r.code).toBe(3);
    expect(expectOneLine(r.stderr)).toMatch(/target 127.0.0.1:\d+\/postgres is PostgreSQL 15, older than the source's 17/);
    await unchanged(newer, target);
  });

  it('missing plan, unknown key and unset variable: exit 2 with file and line', async () => {
    let r = await runCli(['full-load', '-c', '/nonexistent/migration.yml'], {});
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/\/nonexistent\/migration.yml: cannot read the plan file/);
    r = await runCli(['full-load', '-c', writePlanFile('colour: blue')], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/migration.yml:1: unknown key colour/);
    r = await runCli(['full-load', '-c', plan], { SOURCE_URL: source.url() });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/migration.yml:6: target.url: environment variable TARGET_URL is not set/);
    r = await runCli(['full-load', '--json', '-c', plan], { SOURCE_URL: source.url() });
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { code: 'plan.env' } });
    await unchanged(source, target);
  });

  it('a table without a replica identity: full-load refuses (exit 3), nothing created, the application still updates it', async () => {
    await sql(source.url(), 'CREATE TABLE public.events (at timestamptz, what text); INSERT INTO events VALUES (now(), $$boot$$)');
    try {
      const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
      expect(r.code).toBe(3);
      expect(expectOneLine(r.stderr)).toMatch(/^pgshift: public\.events: no primary key and REPLICA IDENTITY DEFAULT: UPDATE and DELETE fail on the source once it is published.* — add a primary key, ALTER TABLE public\.events REPLICA IDENTITY FULL, or list it under cdc\.replicaIdentityFull/);
      await unchanged(source, target);
      await sql(source.url(), `UPDATE events SET what = 'still writable'; DELETE FROM events`);
    } finally {
      await sql(source.url(), 'DROP TABLE public.events');
    }
  });

  it('a DEFERRABLE primary key (never a replica identity): full-load refuses (exit 3), nothing created, the application still updates it', async () => {
    await sql(source.url(), 'CREATE TABLE public.positions (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, pos int); INSERT INTO positions VALUES (1, 1), (2, 2)');
    try {
      const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
      expect(r.code).toBe(3);
      expect(expectOneLine(r.stderr)).toMatch(/^pgshift: public\.positions: a DEFERRABLE primary key \(never a replica identity\) and REPLICA IDENTITY DEFAULT: UPDATE and DELETE fail on the source once it is published.* — make the primary key NOT DEFERRABLE, ALTER TABLE public\.positions REPLICA IDENTITY FULL/);
      await unchanged(source, target);
      // Swapping two positions is what such a key is for.
      await sql(source.url(), `UPDATE positions SET id = 3 - id; DELETE FROM positions WHERE id = 2`);
    } finally {
      await sql(source.url(), 'DROP TABLE public.positions');
    }
  });

  it("a schema named pgshift that is the application's: full-load refuses (exit 3) before using it, teardown leaves it and its rows", async () => {
    await sql(source.url(), `CREATE SCHEMA pgshift; CREATE TABLE pgshift.orders (id int PRIMARY KEY, total numeric); INSERT INTO pgshift.orders VALUES (1, 9.5)`);
    try {
      const r = await runCli(['full-load', '--json', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
      expect(r.code).toBe(3);
      expect(expectOneLine(r.stderr)).toMatch(/^pgshift: schema pgshift \(source\): the source has a schema named pgshift that pgshift did not make.* — rename that schema/);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 3, error: { code: 'control-schema.foreign' } });
      const td = await runCli(['teardown', '--yes', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
      expect(td.stderr).toMatch(/teardown left schema "?pgshift"? on the source: pgshift did not make it/);
      expect(await sql(source.url(), `SELECT total::text FROM pgshift.orders`)).toEqual([{ total: '9.5' }]);
      expect(await sql(source.url(), `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots, (SELECT count(*) FROM pg_publication)::int AS pubs,
        (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pgshift')::int AS relations`)).toEqual([{ slots: 0, pubs: 0, relations: 2 }]);
    } finally {
      await sql(source.url(), 'DROP SCHEMA pgshift CASCADE');
    }
    // pgshift's own schema, made and marked in one statement and nothing more (a run killed right
    // after it), is its own: a re-run goes on, teardown drops it.
    await sql(source.url(), CONTROL_SCHEMA_SQL);
    const assessed = await runCli(['assess', '--json', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
    expect(assessed.stdout).toContain('"findings"');
    expect(assessed.stdout).not.toContain('control-schema.foreign');
    await runCli(['teardown', '--yes', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
    await unchanged(source, target);
  });

  it('row-level security that would hide rows from the source role: full-load refuses (exit 3), nothing created; a read under it fails instead of coming back short', async () => {
    // The role owns its database and table, so ownership and privileges pass: only the policy,
    // forced on the owner too, stands between it and half of the rows.
    await sql(source.url(), `CREATE ROLE rls_mig LOGIN REPLICATION PASSWORD 'rls-mig-pw'`);
    await sql(source.url(), 'CREATE DATABASE rls OWNER rls_mig');
    await sql(target.url(), 'CREATE ROLE rls_mig');
    const url = source.url('rls', 'rls_mig', 'rls-mig-pw');
    await sql(url, `CREATE TABLE public.notes (id int PRIMARY KEY, tenant text NOT NULL);
      INSERT INTO notes SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 10) i;
      CREATE POLICY only_even ON notes USING (tenant = 'even');
      ALTER TABLE notes ENABLE ROW LEVEL SECURITY; ALTER TABLE notes FORCE ROW LEVEL SECURITY`);
    const ddlOff = writePlanFile('cdc: { ddl: off }');
    try {
      const r = await runCli(['full-load', '--json', '-c', ddlOff], { SOURCE_URL: url, TARGET_URL: target.url() });
      expect(r.code).toBe(3);
      expect(expectOneLine(r.stderr)).toMatch(/^pgshift: public\.notes: row-level security is forced on it .*hide rows from rls_mig.* — as a superuser, ALTER ROLE rls_mig BYPASSRLS/);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 3, error: { code: 'table.row-security' } });
      await unchanged(target);
      expect(await sql(url, `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots, (SELECT count(*) FROM pg_publication)::int AS pubs`)).toEqual([{ slots: 0, pubs: 0 }]);

      // pgshift's own sessions read with row_security = off: the policy makes the read fail, never shrink.
      const c = await connect(endpointFor('source', { url }));
      try {
        await expect(c.query('SELECT count(*)::int AS n FROM notes')).rejects.toThrow(/row-level security/);
        await sql(source.url(), 'ALTER ROLE rls_mig BYPASSRLS');
        expect((await c.query('SELECT count(*)::int AS n FROM notes')).rows).toEqual([{ n: 10 }]);
      } finally {
        await c.end();
      }
    } finally {
      await sql(source.url(), 'DROP DATABASE rls');
      await sql(source.url(), 'DROP ROLE rls_mig');
      await sql(target.url(), 'DROP ROLE rls_mig');
    }
  });

  it('the same database twice, whatever the URLs say: exit 2 before anything is touched', async () => {
    const other = source.url().replace('127.0.0.1', 'localhost');
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: other });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/source 127\.0\.0\.1:\d+\/postgres and target localhost:\d+\/postgres are the same database — point target\.url at the new server/);
    await unchanged(source);
  });

  it('an unknown connection parameter: exit 2 at plan load, naming it', async () => {
    const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: `${source.url()}?bogusparam=1`, TARGET_URL: target.url() });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/migration.yml:\d+: source.url: unknown connection parameter bogusparam — remove \?bogusparam= from the URL/);
    await unchanged(source, target);
  });

  it('verify before full-load: exit 3 with the next step', async () => {
    const r = await runCli(['verify', '--json', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url() });
    expect(r.code).toBe(3);
    expect(expectOneLine(r.stderr)).toMatch(/target 127\.0\.0\.1:\d+\/postgres has no table public\.t and no pgshift journal: nothing was loaded there yet — run pgshift full-load first/);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 3, error: { code: 'verify.not-loaded' } });
    await unchanged(source, target);
  });

  it('a target role that cannot create schemas: exit 3 before the slot, naming the role and the grant', async () => {
    await sql(target.url(), `CREATE ROLE weak_target LOGIN PASSWORD 'weak-pw'; REVOKE CREATE ON DATABASE postgres FROM PUBLIC; REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    try {
      const r = await runCli(['full-load', '-c', plan], { SOURCE_URL: source.url(), TARGET_URL: target.url('postgres', 'weak_target', 'weak-pw') });
      expect(r.code).toBe(3);
      expect(expectOneLine(r.stderr)).toMatch(/target role weak_target: cannot create schemas in the target database.* — GRANT CREATE ON DATABASE/);
      await unchanged(source, target);
    } finally {
      await sql(target.url(), 'DROP ROLE weak_target');
    }
  });

  it('a CREATE SUBSCRIPTION that fails leaves no password in the message or in a server log that logs every statement', async () => {
    for (const q of [`ALTER SYSTEM SET log_statement = 'all'`, 'ALTER SYSTEM SET log_min_duration_statement = 0', 'SELECT pg_reload_conf()']) await sql(target.url(), q);
    const secret = 'Sup3r-S3cret-PW-7741';
    const closed = await freePort();
    try {
      const err = await withClient(target.url(), (c) =>
        createSubscription(c, { name: 'pgshift_secret_probe', conninfo: `host=127.0.0.1 port=${closed} user=postgres password=${secret} dbname=postgres`, publication: 'nothing', slot: 'nothing', streaming: false }).then(
          () => undefined,
          (e: Error) => e,
        ),
      );
      expect(err?.message).toMatch(/could not connect to the publisher/);
      expect(err?.message).not.toContain(secret);
      expect(target.log()).toMatch(/pgshift_exec_with_secret/); // the call was logged, its parameters were not
      expect(target.log()).not.toContain(secret);
    } finally {
      for (const q of ['ALTER SYSTEM RESET log_statement', 'ALTER SYSTEM RESET log_min_duration_statement', 'SELECT pg_reload_conf()']) await sql(target.url(), q);
    }
    await unchanged(target);
  });

  it('an unknown option is exit 2', async () => {
    const r = await runCli(['full-load', '--frobnicate'], {});
    expect(r.code).toBe(2);
  });

  it('demo: a major without binaries, one too old for the sample, or a target older than the source: exit 2 before any server starts', async () => {
    let r = await runCli(['demo', '--source-major', '9'], {});
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/--source-major 9: no PostgreSQL 9 binaries on this machine — choose one of .*13/);
    r = await runCli(['demo', '--source-major', '11'], {});
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/--source-major 11: the demo's sample schema needs PostgreSQL 12 or later/);
    r = await runCli(['demo', '--source-major', '17', '--target-major', '13'], {});
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/--target-major 13 is older than --source-major 17/);
    expect(r.stderr).not.toMatch(/starting PostgreSQL/);
  });
});
