import { quoteIdent } from './ident.js';

/**
 * Access control lists as PostgreSQL prints them (aclitem: `grantee=privileges/grantor`, an empty
 * grantee for PUBLIC, names double-quoted when they need it, `*` after a privilege that carries
 * the grant option), and the rules that decide which differences between two servers' ACLs are
 * the majors' doing rather than the migration's.
 */
export interface AclItem {
  /** '' for PUBLIC. */
  grantee: string;
  grantor: string;
  /** Privilege letters, each followed by '*' when it is grantable: e.g. 'r*w'. */
  privileges: string;
}

/** The privilege letters of aclitem and the keyword GRANT takes for each. */
export const PRIVILEGE_KEYWORDS: Record<string, string> = {
  r: 'SELECT',
  a: 'INSERT',
  w: 'UPDATE',
  d: 'DELETE',
  D: 'TRUNCATE',
  x: 'REFERENCES',
  t: 'TRIGGER',
  X: 'EXECUTE',
  U: 'USAGE',
  C: 'CREATE',
  c: 'CONNECT',
  T: 'TEMPORARY',
  s: 'SET',
  A: 'ALTER SYSTEM',
  m: 'MAINTAIN',
};

function readName(text: string, at: number): [string, number] {
  if (text[at] !== '"') {
    let end = at;
    while (end < text.length && text[end] !== '=' && text[end] !== '/') end++;
    return [text.slice(at, end), end];
  }
  let out = '';
  let i = at + 1;
  for (; i < text.length; i++) {
    if (text[i] === '"') {
      if (text[i + 1] === '"') {
        out += '"';
        i++;
        continue;
      }
      return [out, i + 1];
    }
    out += text[i];
  }
  return [out, i];
}

export function parseAclItem(text: string): AclItem {
  const [grantee, eq] = readName(text, 0);
  const slash = text.indexOf('/', eq);
  const privileges = text.slice(eq + 1, slash < 0 ? undefined : slash);
  const grantor = slash < 0 ? '' : readName(text, slash + 1)[0];
  return { grantee, grantor, privileges };
}

/** Each privilege of an item on its own: [letter, grantable]. */
export function privilegeLetters(privileges: string): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  for (let i = 0; i < privileges.length; i++) {
    if (privileges[i] === '*') continue;
    out.push([privileges[i], privileges[i + 1] === '*']);
  }
  return out;
}

/**
 * Differences between the ACLs of two majors that no migration can or should remove, each a
 * documented change of PostgreSQL:
 *   - MAINTAIN (`m`, PostgreSQL 17): an owner's default privileges on a relation include it from
 *     17 on, so a table whose ACL was written out (any GRANT) shows `arwdDxtm` on a 17 target
 *     where a 16-or-older source shows `arwdDxt`. It is ignored when the source is older than 17.
 */
export interface AclTolerance {
  ignoreMaintain: boolean;
}

export function aclTolerance(sourceMajor: number, targetMajor: number): AclTolerance {
  return { ignoreMaintain: sourceMajor < 17 && targetMajor >= 17 };
}

/**
 * One canonical text per ACL: one entry per grantee, grantor and privilege, sorted, so that two
 * ACLs that grant the same compare equal however they were written.
 */
export function canonicalAcl(items: readonly string[], tolerance: AclTolerance): string {
  const out: string[] = [];
  for (const text of items) {
    const item = parseAclItem(text);
    for (const [letter, grantable] of privilegeLetters(item.privileges)) {
      if (tolerance.ignoreMaintain && letter === 'm') continue;
      out.push(`${item.grantee || 'PUBLIC'}:${PRIVILEGE_KEYWORDS[letter] ?? letter}${grantable ? '*' : ''}/${item.grantor}`);
    }
  }
  return [...new Set(out)].sort().join(' ');
}

/**
 * The schema public of a new database changed in PostgreSQL 15: owned by pg_database_owner, and
 * PUBLIC may no longer CREATE in it. A pg_dump older than 15 writes nothing for a public schema left
 * as its initdb made it, so such a source's untouched public schema arrives as the target's
 * default. That exact pair (and only it) is tolerated; any other owner or grant is compared.
 */
export function publicSchemaDefaultsTolerated(
  source: { owner: string; acl: readonly string[]; bootstrapSuperuser: string; major: number },
  target: { owner: string; acl: readonly string[]; major: number },
): boolean {
  if (!(source.major < 15 && target.major >= 15)) return false;
  const none = { ignoreMaintain: false };
  const b = source.bootstrapSuperuser;
  const oldDefault = canonicalAcl([`${aclName(b)}=UC/${aclName(b)}`, `=UC/${aclName(b)}`], none);
  const newDefault = canonicalAcl(['pg_database_owner=UC/pg_database_owner', '=U/pg_database_owner'], none);
  return source.owner === b && canonicalAcl(source.acl, none) === oldDefault && target.owner === 'pg_database_owner' && canonicalAcl(target.acl, none) === newDefault;
}

/** A role name as aclitem prints it. */
function aclName(name: string): string {
  return /^[A-Za-z0-9_]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * The statements that give an object the ACL `items` (read on the source), for an object whose
 * ACL on the target is still its default: the owner's own rights are revoked first when the
 * source's ACL does not give them all back, PUBLIC's default rights (functions, types, ...) too.
 * `on` is the SQL object, e.g. `LARGE OBJECT 16403` or `TABLE s.t`.
 */
export function grantStatements(on: string, items: readonly string[], owner: string): string[] {
  const out = [`REVOKE ALL ON ${on} FROM PUBLIC`, `REVOKE ALL ON ${on} FROM ${quoteIdent(owner)}`];
  for (const text of items) {
    const item = parseAclItem(text);
    const to = item.grantee === '' ? 'PUBLIC' : quoteIdent(item.grantee);
    const letters = privilegeLetters(item.privileges);
    const plain = letters.filter(([, g]) => !g).map(([l]) => PRIVILEGE_KEYWORDS[l]);
    const grantable = letters.filter(([, g]) => g).map(([l]) => PRIVILEGE_KEYWORDS[l]);
    if (plain.length) out.push(`GRANT ${plain.join(', ')} ON ${on} TO ${to}`);
    if (grantable.length) out.push(`GRANT ${grantable.join(', ')} ON ${on} TO ${to} WITH GRANT OPTION`);
  }
  return out;
}
