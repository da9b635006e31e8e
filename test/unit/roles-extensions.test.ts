import { describe, expect, it } from 'vitest';
import { aclTolerance, canonicalAcl, grantStatements, parseAclItem, publicSchemaDefaultsTolerated } from '../../src/core/acl.js';
import { acceptsNewer, chooseExtensionVersion, compareVersions, extensionVersionProblem } from '../../src/core/extensions.js';
import { describeNeeds, missingRoles, neededRoles, planRoleCopy, settingClause, splitGucList, type RoleAttributes } from '../../src/core/roles.js';

describe('extension versions', () => {
  it('compares dotted versions numerically', () => {
    expect(compareVersions('1.10', '1.9')).toBe(1);
    expect(compareVersions('1.7', '1.8')).toBe(-1);
    expect(compareVersions('1.4', '1.4')).toBe(0);
    expect(compareVersions('1.4.1', '1.4')).toBe(1);
    expect(compareVersions('2.0beta', '2.0')).toBe(1);
  });

  it("installs the source's version where the target offers it, else the nearest newer, else the nearest older", () => {
    expect(chooseExtensionVersion('1.7', ['1.4', '1.5', '1.6', '1.7', '1.8'])).toEqual({ version: '1.7', relation: 'same' });
    expect(chooseExtensionVersion('1.3', ['1.4', '1.10', '1.5'])).toEqual({ version: '1.4', relation: 'newer' });
    expect(chooseExtensionVersion('2.1', ['1.4', '1.10', '1.5'])).toEqual({ version: '1.10', relation: 'older' });
    expect(chooseExtensionVersion('1.0', [])).toEqual({ version: null, relation: 'unavailable' });
  });

  it('a version difference is a problem unless the plan accepts the newer one', () => {
    expect(extensionVersionProblem('hstore', '1.7', '1.7', [])).toBeUndefined();
    expect(extensionVersionProblem('hstore', '1.7', '1.8', ['hstore'])).toBeUndefined();
    expect(extensionVersionProblem('hstore', '1.7', '1.8', '*')).toBeUndefined();
    expect(extensionVersionProblem('hstore', '1.7', '1.8', ['ltree'])?.fix).toMatch(/extensions\.acceptNewer: \[hstore\]/);
    // Older on the target is never accepted by acceptNewer.
    expect(extensionVersionProblem('hstore', '1.8', '1.7', '*')?.fix).toMatch(/ALTER EXTENSION hstore UPDATE TO '1.8'/);
    expect(acceptsNewer(['a', 'b'], 'b')).toBe(true);
    expect(acceptsNewer([], 'b')).toBe(false);
  });
});

describe('ACLs', () => {
  it('parses aclitems with PUBLIC, quoted names and grant options', () => {
    expect(parseAclItem('app_ro=r/app_owner')).toEqual({ grantee: 'app_ro', grantor: 'app_owner', privileges: 'r' });
    expect(parseAclItem('=UC/postgres')).toEqual({ grantee: '', grantor: 'postgres', privileges: 'UC' });
    expect(parseAclItem('"we""ird role"=r*w/"Own Er"')).toEqual({ grantee: 'we"ird role', grantor: 'Own Er', privileges: 'r*w' });
  });

  it('compares grants however they were written, and ignores MAINTAIN only from a pre-17 source to a 17+ target', () => {
    const src = canonicalAcl(['app_owner=arwdDxt/app_owner', 'app_ro=r/app_owner'], aclTolerance(13, 17));
    expect(canonicalAcl(['app_ro=r/app_owner', 'app_owner=arwdDxtm/app_owner'], aclTolerance(13, 17))).toBe(src);
    expect(canonicalAcl(['app_ro=r/app_owner', 'app_owner=arwdDxtm/app_owner'], aclTolerance(17, 17))).not.toBe(src);
    expect(canonicalAcl(['app_ro=r/app_owner', 'app_owner=arwdDxtm/app_owner'], aclTolerance(13, 16))).not.toBe(src);
    // A grant option and a missing grant are differences.
    expect(canonicalAcl(['app_owner=arwdDxt/app_owner', 'app_ro=r*/app_owner'], aclTolerance(13, 17))).not.toBe(src);
    expect(canonicalAcl(['app_owner=arwdDxt/app_owner'], aclTolerance(13, 17))).not.toBe(src);
  });

  it("tolerates exactly the 15+ defaults of schema public for a pre-15 source's untouched public schema", () => {
    const source = { owner: 'postgres', acl: ['postgres=UC/postgres', '=UC/postgres'], bootstrapSuperuser: 'postgres', major: 13 };
    const target = { owner: 'pg_database_owner', acl: ['pg_database_owner=UC/pg_database_owner', '=U/pg_database_owner'], major: 17 };
    expect(publicSchemaDefaultsTolerated(source, target)).toBe(true);
    expect(publicSchemaDefaultsTolerated({ ...source, major: 15 }, target)).toBe(false);
    expect(publicSchemaDefaultsTolerated({ ...source, acl: ['postgres=UC/postgres', '=U/postgres', 'app=C/postgres'] }, target)).toBe(false);
    expect(publicSchemaDefaultsTolerated({ ...source, owner: 'app_owner' }, target)).toBe(false);
  });

  it('writes the grants that rebuild an ACL on an object at its defaults', () => {
    expect(grantStatements('LARGE OBJECT 42', ['app_owner=rw/app_owner', 'app_ro=r/app_owner', '=r*/app_owner'], 'app_owner')).toEqual([
      'REVOKE ALL ON LARGE OBJECT 42 FROM PUBLIC',
      'REVOKE ALL ON LARGE OBJECT 42 FROM "app_owner"',
      'GRANT SELECT, UPDATE ON LARGE OBJECT 42 TO "app_owner"',
      'GRANT SELECT ON LARGE OBJECT 42 TO "app_ro"',
      'GRANT SELECT ON LARGE OBJECT 42 TO PUBLIC WITH GRANT OPTION',
    ]);
  });
});

describe('roles', () => {
  const needs = [
    { role: 'app_owner', kind: 'owner' as const, object: 'table app.t' },
    { role: 'app_owner', kind: 'owner' as const, object: 'schema app' },
    { role: 'app_ro', kind: 'grantee' as const, object: 'table app.t' },
    { role: 'reporting', kind: 'policy' as const, object: 'policy p on app.t' },
    { role: 'postgres', kind: 'owner' as const, object: 'schema public' },
  ];
  const memberships = [
    { role: 'app_owner', member: 'app_user', admin: false, inherit: null, set: null },
    { role: 'app_user', member: 'app_batch', admin: false, inherit: null, set: null },
    { role: 'unrelated', member: 'someone', admin: false, inherit: null, set: null },
  ];

  it('needs owners, grantees, policy roles and the members of each, recursively', () => {
    const needed = neededRoles(needs, memberships, true);
    expect([...needed.keys()].sort()).toEqual(['app_batch', 'app_owner', 'app_ro', 'app_user', 'postgres', 'reporting']);
    const missing = missingRoles(needed, new Set(['postgres', 'app_ro']));
    expect(missing.map((m) => m.role)).toEqual(['app_batch', 'app_owner', 'app_user', 'reporting']);
    expect(describeNeeds(missing[1])).toBe('app_owner (owner of table app.t, schema app)');
    expect(describeNeeds(missing[2])).toBe('app_user (member of role app_owner)');
  });

  it('without kept ownership only policy roles and user mappings are needed', () => {
    expect([...neededRoles(needs, memberships, false).keys()]).toEqual(['reporting']);
  });

  it('built-in roles are never missing', () => {
    expect(missingRoles(new Map([['pg_read_all_data', []]]), new Set())).toEqual([]);
  });

  const attrs: RoleAttributes = { superuser: true, inherit: true, createrole: true, createdb: true, login: true, replication: true, bypassrls: true, connectionLimit: 5, validUntil: null };

  it('a superuser creator copies every attribute', () => {
    const p = planRoleCopy(attrs, { superuser: true, createrole: true, createdb: true, replication: true, bypassrls: true, rds: false });
    expect(p.dropped).toEqual([]);
    expect(p.options).toEqual(['SUPERUSER', 'CREATEDB', 'CREATEROLE', 'INHERIT', 'LOGIN', 'REPLICATION', 'BYPASSRLS', 'CONNECTION LIMIT 5']);
  });

  it('on RDS SUPERUSER, REPLICATION and BYPASSRLS are dropped and said, REPLICATION becomes rds_replication', () => {
    const p = planRoleCopy(attrs, { superuser: false, createrole: true, createdb: true, replication: false, bypassrls: false, rds: true });
    expect(p.dropped).toEqual(['SUPERUSER', 'REPLICATION', 'BYPASSRLS']);
    expect(p.grants).toEqual(['rds_replication']);
    expect(p.options).toContain('NOSUPERUSER');
    expect(p.options).toContain('CREATEDB');
  });

  it('splits list settings as the server stores them and quotes every value', () => {
    expect(splitGucList('"$user", app, public')).toEqual(['$user', 'app', 'public']);
    expect(splitGucList('"we""ird", "a b"')).toEqual(['we"ird', 'a b']);
    expect(splitGucList('')).toEqual([]);
    expect(settingClause('search_path="$user", app, public')).toBe(`search_path TO '$user', 'app', 'public'`);
    expect(settingClause('work_mem=8MB')).toBe(`work_mem TO '8MB'`);
    expect(settingClause("application_name=it's")).toBe(`application_name TO 'it''s'`);
    expect(settingClause('myapp.tenant=42')).toBe(`myapp.tenant TO '42'`);
  });
});

describe('reports', () => {
  it('assess shows each extension with its versions and the roles missing on the target', async () => {
    const { assessMarkdown } = await import('../../src/report/markdown.js');
    const md = assessMarkdown({
      source: { label: 'src', version: '13.23', major: 13 },
      target: { label: 'tgt', version: '17.10', major: 17 },
      groups: [],
      proposal: { rule: 'seed', seed: [], balanced: [] },
      tables: [],
      sequences: 0,
      lobScan: { tables: 0, rowsScanned: 0, exactTables: 0, sampledTables: 0, ms: 0 },
      wal: { bytesPerSecond: 0, maxSlotWalKeepSize: null, headroomHours: null, loadHours: 0 },
      extensions: [
        { name: 'hstore', source: '1.7', targetDefault: '1.8', available: ['1.4', '1.7', '1.8'], install: '1.7', relation: 'same', newerAccepted: false },
        { name: 'ltree', source: '1.0', targetDefault: '1.3', available: ['1.1', '1.3'], install: '1.1', relation: 'newer', newerAccepted: false },
      ],
      roles: { mode: 'require', missing: [{ role: 'app_owner', neededAs: 'app_owner (owner of table app.t)' }] },
      findings: [],
      blockers: 0,
      seconds: 1,
    });
    expect(md).toContain("| hstore | 1.7 | 1.8 | 1.4, 1.7, 1.8 | 1.7 (the source's) |");
    expect(md).toContain('| ltree | 1.0 | 1.3 | 1.1, 1.3 | 1.1 (newer, not accepted: extensions.acceptNewer) |');
    expect(md).toContain('#### Roles missing on the target (roles: require)');
    expect(md).toContain('| app_owner | owner of table app.t |');
  });
});
