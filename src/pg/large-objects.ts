import type pg from 'pg';
import { grantStatements } from '../core/acl.js';
import { quoteIdent } from '../core/ident.js';
import { largeObjectChanges, type LargeObjectChanges } from '../core/large-objects.js';

/**
 * Large objects (pg_largeobject) are not part of any table and logical replication does not carry
 * them: the full load copies them, inside the same snapshot as the rows, one object at a time with
 * its OID, owner and grants (lomacl) kept, so references to them in the copied rows stay valid.
 * Changes to large objects after the snapshot are not replicated: the cut-over carries them once
 * the source is sealed (syncLargeObjects), and verify compares them.
 */
export async function copyLargeObjects(source: pg.Client, target: pg.Client, keepOwnership: boolean, only?: string[]): Promise<{ objects: number; bytes: number }> {
  const list = await source.query<{ oid: string; owner: string; acl: string[] | null }>(
    `SELECT oid::text, pg_get_userbyid(lomowner) AS owner, lomacl::text[] AS acl FROM pg_largeobject_metadata WHERE $1::oid[] IS NULL OR oid = ANY ($1::oid[]) ORDER BY oid`,
    [only ?? null],
  );
  let bytes = 0;
  for (const lo of list.rows) {
    const data = await source.query<{ d: Buffer }>('SELECT lo_get($1::oid) AS d', [lo.oid]);
    const payload = data.rows[0].d;
    bytes += payload.length;
    await target.query('BEGIN');
    try {
      // Idempotent: a re-run replaces what an earlier attempt wrote.
      await target.query('SELECT lo_unlink($1::oid) FROM pg_largeobject_metadata WHERE oid = $1::oid', [lo.oid]);
      await target.query('SELECT lo_from_bytea($1::oid, $2::bytea)', [lo.oid, payload]);
      if (keepOwnership) {
        const role = await target.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [lo.owner]);
        if (role.rowCount) {
          await target.query(`ALTER LARGE OBJECT ${Number(lo.oid)} OWNER TO ${quoteIdent(lo.owner)}`);
          // A grantee the target lacks was refused before the load (assess: roles.missing).
          if (lo.acl) for (const sql of grantStatements(`LARGE OBJECT ${Number(lo.oid)}`, lo.acl, lo.owner)) await target.query(sql);
        }
      }
      await target.query('COMMIT');
    } catch (err) {
      await target.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
  return { objects: list.rowCount ?? 0, bytes };
}

/** Each large object's content digest (and owner, when ownership is kept), by OID. */
export async function largeObjectDigests(c: pg.Client, withOwner: boolean): Promise<Map<string, string>> {
  const r = await c.query<{ oid: string; d: string }>(
    `SELECT oid::text, md5(lo_get(oid)) || CASE WHEN $1 THEN ' ' || pg_get_userbyid(lomowner) ELSE '' END AS d FROM pg_largeobject_metadata ORDER BY oid`,
    [withOwner],
  );
  return new Map(r.rows.map((x) => [x.oid, x.d]));
}

/**
 * Make the target's large objects the source's: the ones missing or different (by digest) copied,
 * the ones the source no longer has removed. Run inside the cut-over window, writes fenced.
 */
export async function syncLargeObjects(source: pg.Client, target: pg.Client, keepOwnership: boolean): Promise<LargeObjectChanges & { bytes: number }> {
  const changes = largeObjectChanges(await largeObjectDigests(source, keepOwnership), await largeObjectDigests(target, keepOwnership));
  for (const oid of changes.remove) await target.query('SELECT lo_unlink($1::oid)', [oid]);
  const copied = changes.copy.length ? await copyLargeObjects(source, target, keepOwnership, changes.copy) : { bytes: 0 };
  return { ...changes, bytes: copied.bytes };
}
