import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { aclTolerance, canonicalAcl } from '../../src/core/acl.js';
import { runAssess } from '../../src/phases/assess.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runCutover } from '../../src/phases/cutover.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runVerify } from '../../src/phases/verify.js';
import { copyRoles, readOwnedObjects, readPolicies, type RoleCopyResult } from '../../src/pg/roles.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { runCli } from '../harness/cli.js';
import { testPlan, writePlanFile } from '../harness/plan.js';
import { hasMajor, sql, startPair, startServer, withClients } from '../harness/servers.js';

/**
 * A database shaped like production ones: objects owned by a NOLOGIN role, application roles
 * with table, column and default-privilege grants, an RLS policy for a role, a login role that is
 * a member of the owner with its own settings, a large object with a grant, and the common contrib
 * extensions at the versions the source has (older than the target's defaults), one of them in its
 * own schema.
 */
const EXTENSIONS = [
  'hstore', 'ltree', 'pg_trgm', 'btree_gist', 'citext', 'cube', 'earthdistance', 'intarray', 'fuzzystrmatch', 'pgcrypto', 'uuid-ossp', 'unaccent', 'tablefunc', 'seg', 'isn',
  'bloom', 'btree_gin', 'dblink', 'dict_int', 'intagg', 'lo', 'pg_stat_statements', 'pg_buffercache', 'pgrowlocks', 'pgstattuple', 'postgres_fdw', 'tsm_system_rows',
  'tcn', 'amcheck', 'pg_visibility', 'moddatetime', 'file_fdw', 'pageinspect', 'sslinfo', 'autoinc', 'insert_username', 'refint', 'pg_freespacemap', 'pg_prewarm', 'dict_xsyn', 'tsm_system_time',
];

const SHAPE = `
  CREATE ROLE app_owner NOLOGIN;
  CREATE ROLE app_ro NOLOGIN;
  CREATE ROLE app_rw NOLOGIN BYPASSRLS;
  CREATE ROLE app_user LOGIN PASSWORD 'user-secret-pw' IN ROLE app_owner, app_rw CONNECTION LIMIT 20;
  CREATE ROLE "Auditor Ä" NOLOGIN;
  COMMENT ON ROLE app_owner IS 'owns the application schema';
  ALTER ROLE app_user SET search_path = "$user", app, public;
  ALTER ROLE app_user IN DATABASE shop SET work_mem = '8MB';
  ALTER DATABASE shop SET statement_timeout = '30s';
  CREATE SCHEMA ext;
  CREATE EXTENSION hstore WITH SCHEMA ext VERSION '1.7';
  ${EXTENSIONS.filter((e) => e !== 'hstore').map((e) => `CREATE EXTENSION "${e}";`).join('\n  ')}
  CREATE SCHEMA app AUTHORIZATION app_owner;
  GRANT USAGE ON SCHEMA ext TO PUBLIC;
  SET ROLE app_owner;
  CREATE TABLE app.accounts (id int PRIMARY KEY, tenant text NOT NULL, attrs ext.hstore, path ltree, email citext, secret text, during tstzrange,
    EXCLUDE USING gist (tenant WITH =, during WITH &&));
  CREATE INDEX accounts_trgm ON app.accounts USING gin (tenant gin_trgm_ops);
  CREATE SEQUENCE app.invoice_no;
  CREATE FUNCTION app.tenant_of(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT tenant FROM app.accounts WHERE id = $1';
  CREATE VIEW app.tenants AS SELECT DISTINCT tenant FROM app.accounts;
  ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO app_ro;
  ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO app_rw;
  CREATE TABLE app.later (id int PRIMARY KEY);
  RESET ROLE;
  GRANT USAGE ON SCHEMA app TO app_ro, app_rw, "Auditor Ä";
  GRANT SELECT, INSERT, UPDATE, DELETE ON app.accounts TO app_rw;
  GRANT SELECT (id, tenant) ON app.accounts TO "Auditor Ä";
  GRANT UPDATE ON SEQUENCE app.invoice_no TO app_rw;
  REVOKE EXECUTE ON FUNCTION app.tenant_of(int) FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION app.tenant_of(int) TO app_ro;
  ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
  CREATE POLICY tenant_read ON app.accounts FOR SELECT TO app_ro USING (tenant = current_setting('app.tenant', true));
  CREATE POLICY rw_all ON app.accounts TO app_rw USING (true) WITH CHECK (tenant <> '');
  INSERT INTO app.accounts SELECT i, 't' || (i % 7), ext.hstore('k', i::text), ('top.n' || i)::ltree, 'User' || i || '@Example.com', md5(i::text),
    tstzrange(timestamptz '2026-01-01' + make_interval(days => i), timestamptz '2026-01-01' + make_interval(days => i + 1))
    FROM generate_series(1, 500) i;
  INSERT INTO app.later SELECT generate_series(1, 10);
  SELECT lo_from_bytea(424242, 'large object with a grant');
  ALTER LARGE OBJECT 424242 OWNER TO app_owner;
  GRANT SELECT ON LARGE OBJECT 424242 TO app_ro;
  ANALYZE;`;

const ROLES = ['app_owner', 'app_ro', 'app_rw', 'app_user', 'Auditor Ä'];

async function extensionVersions(url: string): Promise<Record<string, string>> {
  const rows = await sql<{ name: string; version: string }>(url, `SELECT extname AS name, extversion AS version FROM pg_extension WHERE extname <> 'plpgsql'`);
  return Object.fromEntries(rows.map((r) => [r.name, r.version]));
}

/** Owners, ACLs (MAINTAIN tolerated from a pre-17 source) and policies of one side, comparable with the other's. */
async function catalogPrivileges(url: string, tolerance: ReturnType<typeof aclTolerance>) {
  return withClients(url, url, async (c) => {
    const objects = (await readOwnedObjects(c)).map((o) => `${o.category} ${o.object}: owner ${o.owner}; ${o.acl ? canonicalAcl(o.acl, tolerance) : '-'}`).sort();
    const policies = (await readPolicies(c)).map((p) => `${p.object}: ${p.definition}`).sort();
    return { objects, policies };
  });
}

const cases = [
  { source: 13, target: 17 },
  ...(hasMajor(15) ? [{ source: 13, target: 15 }] : []),
];

describe.each(cases)('roles, privileges and extensions, PostgreSQL $source → $target', ({ source, target }) => {
  it('missing roles: assess names them as a blocker and full-load refuses before anything is created (exit 3); roles: copy loads, verify is equal, the catalogs agree', async () => {
    const pair = await startPair(source, target);
    await sql(pair.sourceUrl, SHAPE);
    const env = { SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl };
    const requireFile = writePlanFile();

    // assess lists every extension with the versions, and the missing roles as a blocker.
    const assessed = await runCli(['assess', '--config', requireFile, '--json'], env);
    expect(assessed.code).toBe(3);
    const report = JSON.parse(assessed.stdout).result;
    const missing = report.findings.find((f: { code: string }) => f.code === 'roles.missing');
    expect(missing).toMatchObject({ severity: 'blocker', fix: expect.stringMatching(/roles: copy/) });
    for (const r of ROLES) expect(missing.object).toContain(r);
    expect(missing.message).toMatch(/app_owner \(owner of/);
    expect(missing.message).toMatch(/app_user \(member of role app_owner/);
    expect(report.roles.missing.map((m: { role: string }) => m.role).sort()).toEqual([...ROLES].sort());
    const hstore = report.extensions.find((e: { name: string }) => e.name === 'hstore');
    expect(hstore).toMatchObject({ source: '1.7', install: '1.7', relation: 'same' });
    expect(hstore.available).toContain('1.7');
    if (target === 17) expect(hstore.targetDefault).toBe('1.8');
    expect(report.extensions.map((e: { name: string }) => e.name).sort()).toEqual([...EXTENSIONS].sort());

    // An extension the target does not offer at all (adminpack left PostgreSQL in 17) is a blocker of its own.
    if (target === 17) {
      await sql(pair.sourceUrl, 'CREATE EXTENSION adminpack');
      const withAdminpack = JSON.parse((await runCli(['assess', '--config', requireFile, '--json'], env)).stdout).result;
      expect(withAdminpack.findings.find((f: { object: string }) => f.object === 'extension adminpack')).toMatchObject({ severity: 'blocker', code: 'extension.missing' });
      expect(withAdminpack.extensions.find((e: { name: string }) => e.name === 'adminpack')).toMatchObject({ source: '2.1', install: null, relation: 'unavailable', available: [] });
      await sql(pair.sourceUrl, 'DROP EXTENSION adminpack');
    }

    // full-load refuses with the roles named; nothing was created on either server.
    const refused = await runCli(['full-load', '--config', requireFile, '--json'], env);
    expect(refused.code).toBe(3);
    expect(refused.stderr + refused.stdout).toMatch(/roles\.missing|app_owner/);
    const sourceObjects = await sql<{ n: number }>(pair.sourceUrl, `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift') AS n`);
    expect(Number(sourceObjects[0].n)).toBe(0);
    const targetObjects = await sql<{ n: number }>(pair.targetUrl, `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname IN ('pgshift', 'app', 'ext')) + (SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)) AS n`, [ROLES]);
    expect(Number(targetObjects[0].n)).toBe(0);

    // roles: copy — created before the schema, with their attributes, memberships, settings and passwords.
    const plan = testPlan(pair.sourceUrl, pair.targetUrl, 'roles: copy');
    const ctx = phaseContext(plan, silentLogger);
    const load = await runFullLoad(ctx);
    expect(load.postData).toBe('done');
    expect(load.roles!.created.map((c) => c.role).sort()).toEqual([...ROLES].sort());
    expect(load.roles!.created.find((c) => c.role === 'app_user')).toMatchObject({ dropped: [], password: 'copied' });
    expect(load.roles!.skipped).toEqual([]);
    const journaled = await sql<{ detail: { created: Array<{ role: string }> } }>(pair.targetUrl, `SELECT detail FROM pgshift.phase WHERE phase = 'full-load:roles'`);
    expect(journaled[0].detail.created.map((c) => c.role).sort()).toEqual([...ROLES].sort());
    // Every extension at the source's version, not the target's default.
    expect(await extensionVersions(pair.targetUrl)).toEqual(await extensionVersions(pair.sourceUrl));
    expect(load.extensions.find((e) => e.name === 'hstore')).toMatchObject({ source: '1.7', target: '1.7', action: 'created', relation: 'same' });

    const roleFacts = `SELECT r.rolname, r.rolcanlogin, r.rolbypassrls, r.rolconnlimit, r.rolpassword IS NOT NULL AS has_password,
        (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS member_of,
        shobj_description(r.oid, 'pg_authid') AS comment
      FROM pg_authid r WHERE r.rolname = ANY($1) ORDER BY 1`;
    expect(await sql(pair.targetUrl, roleFacts, [ROLES])).toEqual(await sql(pair.sourceUrl, roleFacts, [ROLES]));
    const passwords = `SELECT rolpassword FROM pg_authid WHERE rolname = 'app_user'`;
    expect(await sql(pair.targetUrl, passwords)).toEqual(await sql(pair.sourceUrl, passwords));
    const settings = `SELECT CASE WHEN s.setrole = 0 THEN '-' ELSE pg_get_userbyid(s.setrole) END AS role, s.setdatabase <> 0 AS in_db, s.setconfig
      FROM pg_db_role_setting s WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = 'shop')) AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = 'app_user')) ORDER BY 1, 2`;
    expect(await sql(pair.targetUrl, settings)).toEqual(await sql(pair.sourceUrl, settings));

    // The schema tier: owners, ACLs, default privileges, policies and extensions all equal.
    await startCdc(ctx);
    await sql(pair.sourceUrl, `UPDATE app.accounts SET attrs = ext.hstore(ARRAY['k', 'seen'], ARRAY[id::text, 'yes']) WHERE id <= 50`);
    await waitForCatchUp(ctx, 60_000);
    const verified = await runVerify(ctx);
    expect(verified.schema).toEqual([]);
    expect(verified.verdict).toBe('equal');
    const tolerance = aclTolerance(source, target);
    const [a, b] = await Promise.all([catalogPrivileges(pair.sourceUrl, tolerance), catalogPrivileges(pair.targetUrl, tolerance)]);
    expect(b).toEqual(a);
    expect(a.objects.find((o) => o.startsWith('object large object 424242'))).toMatch(/app_ro:SELECT\/app_owner/);
    expect(a.policies.join('\n')).toMatch(/tenant_read on app.accounts: PERMISSIVE FOR SELECT TO app_ro/);
    // The application's login role works on the target as on the source: through its membership, with RLS.
    const asUser = (url: string) => url.replace(/\/\/[^@]*@/, '//app_user:user-secret-pw@');
    expect(await sql(asUser(pair.targetUrl), `SELECT current_setting('work_mem') AS w, current_setting('search_path') AS p`)).toEqual([{ w: '8MB', p: '"$user", app, public' }]);

    // What the schema tier catches: a lost column grant, a changed owner, a dropped policy, a lost default privilege.
    await sql(pair.targetUrl, `
      REVOKE SELECT (tenant) ON app.accounts FROM "Auditor Ä";
      ALTER SEQUENCE app.invoice_no OWNER TO app_rw;
      DROP POLICY tenant_read ON app.accounts;
      ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app REVOKE SELECT ON TABLES FROM app_ro;`);
    const planted = await runVerify(ctx);
    expect(planted.verdict).toBe('different');
    expect(planted.schema.map((d) => `${d.kind} ${d.object} ${d.problem}`).sort()).toEqual([
      'acl column app.accounts.tenant missing on target',
      'acl sequence app.invoice_no different',
      'default-acl default privileges of app_owner in schema app on tables missing on target',
      'owner sequence app.invoice_no different',
      'policy policy tenant_read on app.accounts missing on target',
    ]);
    expect(planted.schema.find((d) => d.kind === 'owner')!.fix).toMatch(/^ALTER SEQUENCE app.invoice_no OWNER TO app_owner/);
    await sql(pair.targetUrl, `
      GRANT SELECT (tenant) ON app.accounts TO "Auditor Ä";
      ALTER SEQUENCE app.invoice_no OWNER TO app_owner;
      GRANT UPDATE ON SEQUENCE app.invoice_no TO app_rw; -- merged into the owner's own rights while app_rw owned it
      CREATE POLICY tenant_read ON app.accounts FOR SELECT TO app_ro USING (tenant = current_setting('app.tenant', true));
      ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app GRANT SELECT ON TABLES TO app_ro;`);
    expect((await runVerify(ctx)).schema).toEqual([]);

    // A version the plan did not accept is a difference, named with its fix; accepted, it is not.
    if (target === 17) {
      await sql(pair.targetUrl, `ALTER EXTENSION hstore UPDATE TO '1.8'`);
      const differs = await runVerify(ctx);
      expect(differs.verdict).toBe('different');
      expect(differs.schema).toEqual([
        expect.objectContaining({ kind: 'extension', object: 'hstore', source: '1.7', target: '1.8', fix: expect.stringMatching(/extensions\.acceptNewer: \[hstore\]/) }),
      ]);
      const accepting = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, `roles: copy\nextensions: { acceptNewer: [hstore] }`), silentLogger);
      const accepted = await runVerify(accepting);
      expect(accepted.schema).toEqual([]);
      expect(accepted.verdict).toBe('equal');
      // And the cut-over gate lets the accepted upgrade through.
      const cut = await runCutover(accepting);
      expect(cut.windowMs).toBeGreaterThan(0);
    }

    // Teardown leaves the roles it created (they own the data) and names them.
    const torn = await runTeardown(ctx);
    expect(torn.keptRoles.sort()).toEqual([...ROLES].sort());
    expect((await sql(pair.targetUrl, `SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, [ROLES])).length).toBe(ROLES.length);
  });
});

describe('roles: copy onto a target like Amazon RDS, from a source that hides password hashes', () => {
  it('drops SUPERUSER, REPLICATION and BYPASSRLS and says so, grants rds_replication instead, creates login roles without a password', async () => {
    const pair = await startPair(13, 17);
    await sql(pair.sourceUrl, `
      CREATE ROLE etl LOGIN SUPERUSER REPLICATION BYPASSRLS PASSWORD 'etl-secret-pw';
      CREATE ROLE app_owner NOLOGIN;
      GRANT app_owner TO etl;
      CREATE ROLE reader LOGIN PASSWORD 'reader-pw';`);
    await sql(pair.targetUrl, `
      CREATE ROLE rds_superuser NOLOGIN;
      CREATE ROLE rds_replication NOLOGIN;
      CREATE ROLE migrator LOGIN PASSWORD 'migrator-pw' CREATEROLE CREATEDB IN ROLE rds_superuser;
      GRANT rds_replication TO migrator WITH ADMIN OPTION;
      GRANT CREATE ON DATABASE shop TO migrator;`);
    const as = (url: string, user: string, password: string) => url.replace(/\/\/[^@]*@/, `//${user}:${password}@`);
    let journaled: RoleCopyResult | undefined;
    const result = await withClients(as(pair.sourceUrl, 'reader', 'reader-pw'), as(pair.targetUrl, 'migrator', 'migrator-pw'), (source, target) =>
      copyRoles(source, target, ['app_owner', 'etl'], { source: 130000, target: 170000 }, silentLogger, async (r) => {
        journaled = r;
      }),
    );
    expect(result.created).toEqual([
      { role: 'app_owner', dropped: [], granted: [], password: 'not readable' },
      { role: 'etl', dropped: ['SUPERUSER', 'REPLICATION', 'BYPASSRLS'], granted: ['rds_replication'], password: 'not readable' },
    ]);
    expect(result.memberships).toEqual(['app_owner → etl']);
    expect(result.skipped).toEqual([]);
    expect(journaled).toEqual(result);
    const etl = await sql(pair.targetUrl, `SELECT rolsuper, rolreplication, rolbypassrls, rolcanlogin, rolpassword IS NULL AS no_password,
        (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid) AS member_of
      FROM pg_authid a WHERE rolname = 'etl'`);
    expect(etl).toEqual([{ rolsuper: false, rolreplication: false, rolbypassrls: false, rolcanlogin: true, no_password: true, member_of: 'app_owner,rds_replication' }]);
  });
});

describe('an extension version the target does not offer, PostgreSQL 13 → 17', () => {
  it("installs the nearest newer version (not the default), which verify and the cut-over gate refuse until the plan accepts it", async () => {
    const [src, tgt] = await Promise.all([
      startServer(13, 'ext-src', undefined, { extensions: [{ name: 'pgshift_probe', defaultVersion: '1.1', versions: ['1.0', '1.1'] }] }),
      startServer(17, 'ext-tgt', undefined, { extensions: [{ name: 'pgshift_probe', defaultVersion: '1.3', versions: ['1.2', '1.3'] }] }),
    ]);
    for (const c of [src, tgt]) {
      await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'app-secret-pw'`);
      await sql(c.url(), 'CREATE DATABASE shop');
    }
    await sql(src.url('shop'), `CREATE EXTENSION pgshift_probe; CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 100) i;`);
    // The gate's schema check, not its need of a recent passing verify, is what this is about.
    const plan = (extra = '') => {
      const p = testPlan(src.url('shop'), tgt.url('shop'), extra);
      p.cutover.verifyMaxAgeMinutes = 0;
      return p;
    };
    const ctx = phaseContext(plan(), silentLogger);

    const assessed = await runAssess(ctx);
    expect(assessed.extensions.find((e) => e.name === 'pgshift_probe')).toMatchObject({ source: '1.1', targetDefault: '1.3', available: ['1.2', '1.3'], install: '1.2', relation: 'newer', newerAccepted: false });
    expect(assessed.findings.find((f) => f.object === 'extension pgshift_probe')).toMatchObject({ severity: 'warning', code: 'extension.version', fix: expect.stringMatching(/extensions\.acceptNewer: \[pgshift_probe\]/) });

    const load = await runFullLoad(ctx);
    expect(load.extensions).toEqual([{ name: 'pgshift_probe', source: '1.1', target: '1.2', relation: 'newer', action: 'created' }]);
    expect(await sql(tgt.url('shop'), 'SELECT pgshift_probe_version() AS v')).toEqual([{ v: '1.2' }]);
    await startCdc(ctx);
    await waitForCatchUp(ctx, 60_000);

    const refused = await runVerify(ctx);
    expect(refused.schema).toEqual([expect.objectContaining({ kind: 'extension', object: 'pgshift_probe', source: '1.1', target: '1.2', problem: 'different' })]);
    await expect(runCutover(ctx, { dryRun: true })).rejects.toMatchObject({ code: 'cutover.extension', exitCode: 3, hint: expect.stringMatching(/extensions\.acceptNewer: \[pgshift_probe\]/) });

    const accepting = phaseContext(plan(`extensions: { acceptNewer: '*' }`), silentLogger);
    expect((await runVerify(accepting)).verdict).toBe('equal');
    expect((await runCutover(accepting, { dryRun: true })).dryRun).toBe(true);
    await runTeardown(accepting);
  });
});
