import { quoteIdent, quoteLiteral } from './ident.js';

/**
 * Roles are cluster-wide, so pg_dump of one database carries none of them, only their names: the
 * owner of every object, the grantees and grantors of its ACL, the roles of default privileges,
 * RLS policies and user mappings. A target without one of them fails the schema restore. These
 * rules decide which roles a migration needs, which of them the target lacks, and how a copy of
 * one may look on a target that does not allow every attribute (Amazon RDS: no SUPERUSER, no
 * REPLICATION attribute).
 */
export type NeedKind = 'owner' | 'grantee' | 'grantor' | 'default privileges' | 'policy' | 'user mapping' | 'member';

export interface RoleNeed {
  role: string;
  kind: NeedKind;
  /** The object that needs it, e.g. `table app.t`. */
  object: string;
}

export interface Membership {
  /** The role granted. */
  role: string;
  member: string;
  admin: boolean;
  /** PostgreSQL 16+: whether the member inherits the role's privileges, and may SET ROLE to it; null before 16. */
  inherit: boolean | null;
  set: boolean | null;
}

/** What ownership: target-user keeps: pg_restore --no-owner --no-privileges still names policy roles and user mappings. */
const KEPT_WITHOUT_OWNERSHIP: NeedKind[] = ['policy', 'user mapping'];

/**
 * The roles the migrated objects need, and the roles that log in as or through them: every member
 * (recursively) of a needed role is needed too, since the application's login roles are usually
 * members of a NOLOGIN owner. The result names, per role, why it is needed.
 */
export function neededRoles(needs: readonly RoleNeed[], memberships: readonly Membership[], keepOwnership: boolean): Map<string, RoleNeed[]> {
  const out = new Map<string, RoleNeed[]>();
  const add = (n: RoleNeed) => {
    const list = out.get(n.role) ?? [];
    list.push(n);
    out.set(n.role, list);
  };
  for (const n of needs) if (keepOwnership || KEPT_WITHOUT_OWNERSHIP.includes(n.kind)) add(n);
  const queue = [...out.keys()];
  while (queue.length) {
    const role = queue.shift()!;
    for (const m of memberships.filter((x) => x.role === role)) {
      if (!out.has(m.member)) queue.push(m.member);
      add({ role: m.member, kind: 'member', object: `role ${role}` });
    }
  }
  return out;
}

export interface MissingRole {
  role: string;
  needs: RoleNeed[];
}

/** The needed roles the target lacks, in name order; built-in roles (pg_*) exist on every newer major. */
export function missingRoles(needed: Map<string, RoleNeed[]>, targetRoles: ReadonlySet<string>): MissingRole[] {
  return [...needed]
    .filter(([role]) => !targetRoles.has(role) && !role.startsWith('pg_'))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([role, needs]) => ({ role, needs }));
}

/** One line per role: `app_owner (owner of table app.t and 3 more; grantee of ...)`. */
export function describeNeeds(m: MissingRole, perKind = 2): string {
  const byKind = new Map<NeedKind, string[]>();
  for (const n of m.needs) byKind.set(n.kind, [...(byKind.get(n.kind) ?? []), n.object]);
  const parts = [...byKind].map(([kind, objects]) => {
    const uniq = [...new Set(objects)];
    const shown = uniq.slice(0, perKind).join(', ');
    const label = kind === 'member' ? 'member of' : kind === 'default privileges' ? 'default privileges of' : kind === 'user mapping' ? 'user mapping on' : `${kind} of`;
    return `${label} ${shown}${uniq.length > perKind ? ` and ${uniq.length - perKind} more` : ''}`;
  });
  return `${m.role} (${parts.join('; ')})`;
}

export interface RoleAttributes {
  superuser: boolean;
  inherit: boolean;
  createrole: boolean;
  createdb: boolean;
  login: boolean;
  replication: boolean;
  bypassrls: boolean;
  connectionLimit: number;
  validUntil: string | null;
}

/** What the role pgshift connects to the target as may give a role it creates. */
export interface RoleCreator {
  superuser: boolean;
  createrole: boolean;
  createdb: boolean;
  replication: boolean;
  bypassrls: boolean;
  /** Amazon RDS (rds_superuser exists): REPLICATION is the rds_replication role there. */
  rds: boolean;
}

export interface RoleCopyPlan {
  /** The CREATE ROLE options. */
  options: string[];
  /** Attributes of the source's role the target does not allow this creator to give. */
  dropped: string[];
  /** Roles to grant in their place (RDS: rds_replication for REPLICATION). */
  grants: string[];
}

/**
 * The attributes a copy gets: every attribute of the source's role the creator may give. A
 * superuser may give all. Otherwise SUPERUSER never; REPLICATION and BYPASSRLS only by a creator
 * that has them (PostgreSQL's rule for CREATEROLE roles) — on RDS REPLICATION becomes membership
 * of rds_replication; CREATEDB only by a creator that has it (16+, and harmless before).
 */
export function planRoleCopy(a: RoleAttributes, creator: RoleCreator): RoleCopyPlan {
  const options: string[] = [];
  const dropped: string[] = [];
  const grants: string[] = [];
  const may = (attr: 'superuser' | 'replication' | 'bypassrls' | 'createdb') => creator.superuser || (attr !== 'superuser' && creator[attr]);
  const flag = (on: boolean, name: string, attr?: 'superuser' | 'replication' | 'bypassrls' | 'createdb') => {
    if (!on) return options.push(`NO${name}`);
    if (attr && !may(attr)) {
      if (attr === 'replication' && creator.rds) grants.push('rds_replication');
      dropped.push(name);
      return options.push(`NO${name}`);
    }
    options.push(name);
  };
  flag(a.superuser, 'SUPERUSER', 'superuser');
  flag(a.createdb, 'CREATEDB', 'createdb');
  flag(a.createrole, 'CREATEROLE');
  flag(a.inherit, 'INHERIT');
  flag(a.login, 'LOGIN');
  flag(a.replication, 'REPLICATION', 'replication');
  flag(a.bypassrls, 'BYPASSRLS', 'bypassrls');
  if (a.connectionLimit !== -1) options.push(`CONNECTION LIMIT ${Math.trunc(a.connectionLimit)}`);
  if (a.validUntil) options.push(`VALID UNTIL ${quoteLiteral(a.validUntil)}`);
  return { options, dropped, grants };
}

/** GUCs whose value is a list of (double-quoted) names: ALTER … SET takes them element by element. */
const LIST_GUCS = new Set(['search_path', 'temp_tablespaces', 'local_preload_libraries', 'session_preload_libraries', 'shared_preload_libraries', 'unix_socket_directories']);

/** Split a list GUC's stored value (`"$user", app, public`) into its elements, as SplitGUCList does. */
export function splitGucList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = value.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(value[i])) i++;
  };
  skipSpace();
  if (i >= n) return out;
  for (;;) {
    let item = '';
    if (value[i] === '"') {
      i++;
      for (; i < n; i++) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            item += '"';
            i++;
            continue;
          }
          i++;
          break;
        }
        item += value[i];
      }
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && !/\s/.test(value[i])) i++;
      item = value.slice(start, i);
    }
    out.push(item);
    skipSpace();
    if (i >= n || value[i] !== ',') break;
    i++;
    skipSpace();
  }
  return out;
}

/**
 * `name=value` as pg_db_role_setting stores it, as the tail of an ALTER ROLE/DATABASE … SET:
 * `name TO 'value'`, a list GUC element by element.
 */
export function settingClause(entry: string): string {
  const eq = entry.indexOf('=');
  const name = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  const ident = /^[a-z_][a-z0-9_.]*$/.test(name) ? name : quoteIdent(name);
  if (LIST_GUCS.has(name.toLowerCase())) {
    const items = splitGucList(value);
    return `${ident} TO ${items.length ? items.map(quoteLiteral).join(', ') : "''"}`;
  }
  return `${ident} TO ${quoteLiteral(value)}`;
}
