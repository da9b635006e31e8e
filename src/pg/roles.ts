import type pg from 'pg';
import { parseAclItem } from '../core/acl.js';
import { quoteIdent, quoteLiteral } from '../core/ident.js';
import type { Logger } from '../core/log.js';
import { missingRoles, neededRoles, planRoleCopy, settingClause, type Membership, type MissingRole, type RoleAttributes, type RoleCreator, type RoleNeed } from '../core/roles.js';
import { CONTROL_SCHEMA, USER_SCHEMAS } from './catalog.js';
import { execWithSecret } from './replication.js';
import { SOURCE_ONLY_EXTENSIONS } from './schema.js';

/**
 * Roles and privileges in the catalogs: what the migrated objects name (owners, ACLs, default
 * privileges, policies, user mappings), and the copy of roles from the source to the target.
 */

/** Not an object an extension created (those come with the extension, their ACLs included). */
const notMember = (catalog: string, oid: string) => `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

/**
 * Every object pg_dump carries with an owner or an ACL, as (category, object, owner, acl): the
 * ACL as the server applies it (acldefault where it was never written), columns and default
 * privileges with their explicit ACL only. One list for both the roles a migration needs and the
 * schema tier's comparison of owners and grants.
 */
const OWNED_OBJECTS = (prokind: string) => `
  SELECT 'object' AS category, 'schema ' || quote_ident(n.nspname) AS object, pg_get_userbyid(n.nspowner) AS owner, coalesce(n.nspacl, acldefault('n', n.nspowner))::text[] AS acl
    FROM pg_namespace n WHERE ${USER_SCHEMAS} AND ${notMember('pg_namespace', 'n.oid')}
     -- the source-only extensions' schemas (pglogical's is named after it), on the source and as the restore left them on the target
     AND n.nspname NOT IN (${SOURCE_ONLY_EXTENSIONS.map((e) => `'${e}'`).join(', ')})
  UNION ALL
  SELECT 'object', CASE WHEN c.relkind = 'S' THEN 'sequence ' ELSE 'table ' END || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
         pg_get_userbyid(c.relowner), coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text[]
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ${USER_SCHEMAS} AND c.relname NOT LIKE 'awsdms\\_%' AND ${notMember('pg_class', 'c.oid')}
  UNION ALL
  SELECT 'column', 'column ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname), pg_get_userbyid(c.relowner), a.attacl::text[]
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_SCHEMAS} AND ${notMember('pg_class', 'c.oid')}
  UNION ALL
  SELECT 'object', CASE ${prokind} WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
         pg_get_userbyid(p.proowner), coalesce(p.proacl, acldefault('f', p.proowner))::text[]
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_SCHEMAS} AND ${notMember('pg_proc', 'p.oid')}
  UNION ALL
  SELECT 'object', 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname), pg_get_userbyid(t.typowner), coalesce(t.typacl, acldefault('T', t.typowner))::text[]
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE ${USER_SCHEMAS} AND ${notMember('pg_type', 't.oid')} AND t.typcategory <> 'A'
     -- multiranges come with their range type (14+); a table's row type with its table
     AND t.typtype IN ('b', 'd', 'e', 'r', 'c') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  UNION ALL
  SELECT 'object', 'large object ' || l.oid, pg_get_userbyid(l.lomowner), coalesce(l.lomacl, acldefault('L', l.lomowner))::text[] FROM pg_largeobject_metadata l
  UNION ALL
  SELECT 'object', 'foreign-data wrapper ' || quote_ident(w.fdwname), pg_get_userbyid(w.fdwowner), coalesce(w.fdwacl, acldefault('F', w.fdwowner))::text[]
    FROM pg_foreign_data_wrapper w WHERE ${notMember('pg_foreign_data_wrapper', 'w.oid')}
  UNION ALL
  SELECT 'object', 'server ' || quote_ident(s.srvname), pg_get_userbyid(s.srvowner), coalesce(s.srvacl, acldefault('S', s.srvowner))::text[]
    FROM pg_foreign_server s WHERE ${notMember('pg_foreign_server', 's.oid')}
  UNION ALL
  SELECT 'object', 'collation ' || quote_ident(n.nspname) || '.' || quote_ident(o.collname), pg_get_userbyid(o.collowner), NULL
    FROM pg_collation o JOIN pg_namespace n ON n.oid = o.collnamespace WHERE ${USER_SCHEMAS} AND ${notMember('pg_collation', 'o.oid')}
  UNION ALL
  SELECT 'object', 'operator ' || o.oid::regoperator::text, pg_get_userbyid(o.oprowner), NULL
    FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE ${USER_SCHEMAS} AND ${notMember('pg_operator', 'o.oid')}
  UNION ALL
  SELECT 'object', 'text search configuration ' || quote_ident(n.nspname) || '.' || quote_ident(o.cfgname), pg_get_userbyid(o.cfgowner), NULL
    FROM pg_ts_config o JOIN pg_namespace n ON n.oid = o.cfgnamespace WHERE ${USER_SCHEMAS} AND ${notMember('pg_ts_config', 'o.oid')}
  UNION ALL
  SELECT 'object', 'text search dictionary ' || quote_ident(n.nspname) || '.' || quote_ident(o.dictname), pg_get_userbyid(o.dictowner), NULL
    FROM pg_ts_dict o JOIN pg_namespace n ON n.oid = o.dictnamespace WHERE ${USER_SCHEMAS} AND ${notMember('pg_ts_dict', 'o.oid')}
  UNION ALL
  SELECT 'object', 'event trigger ' || quote_ident(e.evtname), pg_get_userbyid(e.evtowner), NULL
    FROM pg_event_trigger e WHERE e.evtname NOT LIKE 'pgshift%' AND ${notMember('pg_event_trigger', 'e.oid')}
  UNION ALL
  SELECT 'default-acl', 'default privileges of ' || quote_ident(pg_get_userbyid(a.defaclrole)) || coalesce(' in schema ' || quote_ident(n.nspname), '') || ' on '
           || CASE a.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' ELSE a.defaclobjtype::text END,
         pg_get_userbyid(a.defaclrole), a.defaclacl::text[]
    FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace
   WHERE n.oid IS NULL OR n.nspname <> '${CONTROL_SCHEMA}'`;

export interface OwnedObject {
  category: 'object' | 'column' | 'default-acl';
  object: string;
  owner: string;
  acl: string[] | null;
}

export async function readOwnedObjects(c: pg.Client): Promise<OwnedObject[]> {
  const v = Number((await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
  // pg_proc.prokind is 11+; a 10 has proisagg and no procedures.
  return (await c.query<OwnedObject>(OWNED_OBJECTS(v >= 110000 ? 'p.prokind' : `CASE WHEN p.proisagg THEN 'a' ELSE 'f' END`))).rows;
}

export interface PolicyFacts {
  /** `policy p on s.t`, or `row security on s.t`. */
  object: string;
  definition: string;
  roles: string[];
}

/** RLS policies (with their roles) and the tables that enable or force row security. */
export async function readPolicies(c: pg.Client): Promise<PolicyFacts[]> {
  const r = await c.query<PolicyFacts>(
    `SELECT 'policy ' || quote_ident(p.policyname) || ' on ' || quote_ident(p.schemaname) || '.' || quote_ident(p.tablename) AS object,
            concat_ws(' ', p.permissive, 'FOR', p.cmd, 'TO', array_to_string(p.roles, ', '), 'USING', coalesce(p.qual, '-'), 'WITH CHECK', coalesce(p.with_check, '-')) AS definition,
            p.roles::text[] AS roles
       FROM pg_policies p WHERE p.schemaname NOT IN ('pg_catalog', 'information_schema', '${CONTROL_SCHEMA}')
     UNION ALL
     SELECT 'row security on ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
            concat_ws(' ', CASE WHEN c.relrowsecurity THEN 'enabled' ELSE 'disabled' END, CASE WHEN c.relforcerowsecurity THEN 'forced' END), '{}'
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (c.relrowsecurity OR c.relforcerowsecurity) AND ${USER_SCHEMAS}`,
  );
  return r.rows;
}

/** The roles the source's objects name, each with why; memberships separately (core/roles.ts closes over them). */
export async function readRoleNeeds(c: pg.Client): Promise<RoleNeed[]> {
  const needs: RoleNeed[] = [];
  for (const o of await readOwnedObjects(c)) {
    needs.push({ role: o.owner, kind: o.category === 'default-acl' ? 'default privileges' : 'owner', object: o.object });
    for (const text of o.acl ?? []) {
      const item = parseAclItem(text);
      if (item.grantee) needs.push({ role: item.grantee, kind: 'grantee', object: o.object });
      if (item.grantor) needs.push({ role: item.grantor, kind: 'grantor', object: o.object });
    }
  }
  for (const p of await readPolicies(c)) for (const role of p.roles) if (role !== 'public') needs.push({ role, kind: 'policy', object: p.object });
  const um = await c.query<{ role: string; server: string }>(`SELECT usename AS role, srvname AS server FROM pg_user_mappings WHERE umuser <> 0`);
  for (const u of um.rows) needs.push({ role: u.role, kind: 'user mapping', object: `server ${u.server}` });
  return needs;
}

export async function readMemberships(c: pg.Client, versionNum: number): Promise<Membership[]> {
  const v16 = versionNum >= 160000;
  const r = await c.query<Membership>(
    `SELECT pg_get_userbyid(m.roleid) AS role, pg_get_userbyid(m.member) AS member, m.admin_option AS admin,
            ${v16 ? 'm.inherit_option' : 'NULL::boolean'} AS inherit, ${v16 ? 'm.set_option' : 'NULL::boolean'} AS set
       FROM pg_auth_members m`,
  );
  return r.rows;
}

export async function readRoleNames(c: pg.Client): Promise<Set<string>> {
  return new Set((await c.query<{ n: string }>('SELECT rolname AS n FROM pg_roles')).rows.map((r) => r.n));
}

/** What the connected role may give a role it creates. */
export async function readRoleCreator(c: pg.Client): Promise<RoleCreator & { name: string }> {
  const r = await c.query<RoleCreator & { name: string }>(
    `SELECT rolname AS name, rolsuper AS superuser, rolcreaterole AS createrole, rolcreatedb AS createdb, rolreplication AS replication, rolbypassrls AS bypassrls,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') AS rds
       FROM pg_roles WHERE rolname = current_user`,
  );
  return r.rows[0];
}

/** The attributes and comment of these roles on a server. */
export async function readRoleAttributes(c: pg.Client, roles: string[]): Promise<SourceRole[]> {
  const r = await c.query<SourceRole>(
    `SELECT rolname AS name, rolsuper AS superuser, rolinherit AS inherit, rolcreaterole AS createrole, rolcreatedb AS createdb, rolcanlogin AS login,
            rolreplication AS replication, rolbypassrls AS bypassrls, rolconnlimit AS "connectionLimit",
            CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil = 'infinity' THEN NULL ELSE rolvaliduntil::text END AS "validUntil",
            shobj_description(oid, 'pg_authid') AS comment
       FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
    [roles],
  );
  return r.rows;
}

/** Whether this session may read password hashes (pg_authid: superusers only; never on RDS). */
export async function passwordsReadable(c: pg.Client): Promise<boolean> {
  return (await c.query<{ ok: boolean }>(`SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS ok`)).rows[0].ok;
}

export interface SourceRole extends RoleAttributes {
  name: string;
  comment: string | null;
}

export interface RoleCopyResult {
  created: Array<{ role: string; dropped: string[]; granted: string[]; password: 'copied' | 'none on the source' | 'not readable' }>;
  memberships: string[];
  settings: string[];
  /** Settings and memberships the target refused, with its reason. */
  skipped: string[];
}

/**
 * Create `roles` (missing on the target) as they are on the source, in one target transaction
 * with `record` (the journal's row of what was created), so that a crash leaves all of them or
 * none: attributes the target's role may give, comments, password hashes where the source lets
 * us read pg_authid (through a bound parameter, never in a statement a server could log), then the
 * memberships between the source's roles that touch a created role, the settings of the created
 * roles (ALTER ROLE … SET), and the source database's own settings (ALTER DATABASE … SET and
 * ALTER ROLE … IN DATABASE … SET). A setting or membership the target refuses (a parameter
 * unknown to its major, a grant it does not allow) is skipped and listed, not fatal.
 */
export async function copyRoles(
  source: pg.Client,
  target: pg.Client,
  roles: string[],
  versions: { source: number; target: number },
  log: Logger,
  record: (result: RoleCopyResult) => Promise<void>,
): Promise<RoleCopyResult> {
  const result: RoleCopyResult = { created: [], memberships: [], settings: [], skipped: [] };
  const attrs = await readRoleAttributes(source, roles);
  const passwords = (await passwordsReadable(source))
    ? new Map((await source.query<{ name: string; hash: string | null }>('SELECT rolname AS name, rolpassword AS hash FROM pg_authid WHERE rolname = ANY($1)', [roles])).rows.map((x) => [x.name, x.hash]))
    : undefined;
  const creator = await readRoleCreator(target);
  const created = new Set(roles);
  const targetDb = (await target.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  const attempt = attempter(target, result.skipped);
  await target.query('BEGIN');
  try {
    for (const a of attrs) result.created.push(await createRole(target, a, creator, passwords, attempt, log));
    const existing = await readRoleNames(target);
    await copyMemberships(source, target, versions, created, existing, attempt, result.memberships);
    await copyRoleSettings(source, roles, targetDb, existing, attempt, result.settings);
    await record(result);
    await target.query('COMMIT');
  } catch (err) {
    await target.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return result;
}

/** Runs one statement of the role copy; false when the target refuses it. */
type Attempt = (what: string, sql: string) => Promise<boolean>;

/** A statement the target may refuse runs under a savepoint: refused, it is rolled back and listed in `skipped` with the reason. */
function attempter(target: pg.Client, skipped: string[]): Attempt {
  return async (what, sql) => {
    await target.query('SAVEPOINT pgshift_role_step');
    try {
      await target.query(sql);
      await target.query('RELEASE SAVEPOINT pgshift_role_step');
      return true;
    } catch (err) {
      await target.query('ROLLBACK TO SAVEPOINT pgshift_role_step');
      skipped.push(`${what}: ${(err as Error).message}`);
      return false;
    }
  };
}

/** One role: its attributes the creator may give, its password hash (bound, never logged), the predefined roles granted instead, its comment. */
async function createRole(target: pg.Client, a: SourceRole, creator: Awaited<ReturnType<typeof readRoleCreator>>, passwords: Map<string, string | null> | undefined, attempt: Attempt, log: Logger): Promise<RoleCopyResult['created'][number]> {
  const p = planRoleCopy(a, creator);
  const create = `CREATE ROLE ${quoteIdent(a.name)} WITH ${p.options.join(' ')}`;
  const hash = passwords?.get(a.name);
  if (hash) await execWithSecret(target, `${create.replace(/%/g, '%%')} PASSWORD %L`, hash, log, 'a role password hash');
  else await target.query(create);
  const granted: string[] = [];
  for (const g of p.grants) if (await attempt(`GRANT ${g} TO ${a.name}`, `GRANT ${quoteIdent(g)} TO ${quoteIdent(a.name)}`)) granted.push(g);
  if (a.comment !== null) await target.query(`COMMENT ON ROLE ${quoteIdent(a.name)} IS ${quoteLiteral(a.comment)}`);
  return { role: a.name, dropped: p.dropped, granted, password: hash ? 'copied' : passwords ? 'none on the source' : 'not readable' };
}

/** The source's memberships that touch a created role, between roles the target has, granted where the target lacks them. */
async function copyMemberships(source: pg.Client, target: pg.Client, versions: { source: number; target: number }, created: Set<string>, existing: Set<string>, attempt: Attempt, out: string[]): Promise<void> {
  const edges = (await readMemberships(source, versions.source)).filter((m) => (created.has(m.role) || created.has(m.member)) && existing.has(m.role) && existing.has(m.member));
  const have = new Set((await readMemberships(target, versions.target)).map((m) => `${m.role}\u0000${m.member}`));
  for (const m of edges) {
    if (have.has(`${m.role}\u0000${m.member}`)) continue;
    const options = [m.admin ? 'ADMIN TRUE' : '', versions.target >= 160000 && m.inherit !== null ? `INHERIT ${m.inherit ? 'TRUE' : 'FALSE'}` : '', versions.target >= 160000 && m.set !== null ? `SET ${m.set ? 'TRUE' : 'FALSE'}` : ''].filter(Boolean);
    const with_ = options.length ? (versions.target >= 160000 ? ` WITH ${options.join(', ')}` : m.admin ? ' WITH ADMIN OPTION' : '') : '';
    const text = `GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}${with_}`;
    if (await attempt(text, text)) out.push(`${m.role} → ${m.member}${m.admin ? ' (admin)' : ''}`);
  }
}

/** The created roles' settings and the source database's own (ALTER DATABASE … SET, ALTER ROLE … IN DATABASE … SET). */
async function copyRoleSettings(source: pg.Client, roles: string[], targetDb: string, existing: Set<string>, attempt: Attempt, out: string[]): Promise<void> {
  const settings = await source.query<{ role: string | null; here: boolean; config: string[] }>(
    `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END AS role, s.setdatabase <> 0 AS here, s.setconfig AS config
       FROM pg_db_role_setting s
      WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) OR (s.setdatabase = 0 AND pg_get_userbyid(s.setrole) = ANY($1))`,
    [roles],
  );
  for (const s of settings.rows) {
    if (s.role && !existing.has(s.role)) continue;
    const head = s.role === null ? `ALTER DATABASE ${quoteIdent(targetDb)}` : s.here ? `ALTER ROLE ${quoteIdent(s.role)} IN DATABASE ${quoteIdent(targetDb)}` : `ALTER ROLE ${quoteIdent(s.role)}`;
    for (const entry of s.config) {
      const text = `${head} SET ${settingClause(entry)}`;
      if (await attempt(text, text)) out.push(text);
    }
  }
}

/**
 * The roles the source's objects and their members need that the target lacks (core/roles.ts's
 * rules over both catalogs).
 */
export async function readMissingRoles(source: pg.Client, target: pg.Client, sourceVersion: number, keepOwnership: boolean): Promise<MissingRole[]> {
  const needed = neededRoles(await readRoleNeeds(source), await readMemberships(source, sourceVersion), keepOwnership);
  return missingRoles(needed, await readRoleNames(target));
}
