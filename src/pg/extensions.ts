import type pg from 'pg';
import { chooseExtensionVersion, compareVersions, type VersionChoice } from '../core/extensions.js';
import { failure } from '../core/errors.js';
import { quoteIdent, quoteLiteral } from '../core/ident.js';
import { SOURCE_ONLY_EXTENSIONS } from './schema.js';

/**
 * Extensions on the target at the source's version. pg_dump writes `CREATE EXTENSION IF NOT
 * EXISTS name WITH SCHEMA s` without a version, which a newer server answers with its newest;
 * pgshift creates each extension first, at the version chosen by core/extensions.ts, and the
 * restore's statement then finds it there. An extension's schema other than public is created
 * with it (with its owner), and the dump's entry for that schema is left out of the restore.
 */
export interface SourceExtension {
  name: string;
  version: string;
  schema: string;
  schemaOwner: string;
  requires: string[];
}

export interface ExtensionInstall {
  name: string;
  source: string;
  /** The version on the target after the install (or already there). */
  target: string | null;
  relation: VersionChoice['relation'];
  /** 'left to the restore': the target cannot list its versions (a broken control file), so pg_restore creates it at its default. */
  action: 'created' | 'updated' | 'already there' | 'unavailable' | 'left to the restore';
}

export async function readSourceExtensions(c: pg.Client): Promise<SourceExtension[]> {
  const r = await c.query<SourceExtension>(
    `SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema, pg_get_userbyid(n.nspowner) AS "schemaOwner",
            coalesce((SELECT array_agg(x.extname ORDER BY x.extname) FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                       WHERE d.classid = 'pg_extension'::regclass AND d.objid = e.oid AND d.refclassid = 'pg_extension'::regclass), '{}') AS requires
       FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname <> ALL ($1) ORDER BY e.extname`,
    // plpgsql: in every database initdb makes, and never in a dump.
    [[...SOURCE_ONLY_EXTENSIONS, 'plpgsql']],
  );
  // Required extensions first.
  const byName = new Map(r.rows.map((e) => [e.name, e]));
  const out: SourceExtension[] = [];
  const visit = (e: SourceExtension, seen: Set<string>) => {
    if (out.includes(e) || seen.has(e.name)) return;
    seen.add(e.name);
    for (const req of e.requires) if (byName.has(req)) visit(byName.get(req)!, seen);
    out.push(e);
  };
  for (const e of r.rows) visit(e, new Set());
  return out;
}

/** Available versions per extension on a server (pg_available_extension_versions). */
export async function availableVersions(c: pg.Client): Promise<Map<string, string[]>> {
  const r = await c.query<{ name: string; versions: string[] }>(`SELECT name, array_agg(version) AS versions FROM pg_available_extension_versions GROUP BY name`);
  return new Map(r.rows.map((x) => [x.name, x.versions]));
}

/**
 * Create the source's extensions on the target (one transaction): each at the chosen version, its
 * schema first when the target lacks it; an extension already there is updated when it is older
 * than the chosen version and otherwise left as it is. Returns what each got.
 */
export async function installExtensions(target: pg.Client, extensions: SourceExtension[], keepOwnership: boolean): Promise<ExtensionInstall[]> {
  const available = await availableVersions(target).catch(() => undefined);
  if (!available) return extensions.map((e) => ({ name: e.name, source: e.version, target: null, relation: 'unavailable' as const, action: 'left to the restore' as const }));
  const installed = new Map((await target.query<{ name: string; version: string }>('SELECT extname AS name, extversion AS version FROM pg_extension')).rows.map((r) => [r.name, r.version]));
  const out: ExtensionInstall[] = [];
  await target.query('BEGIN');
  try {
    for (const e of extensions) {
      const choice = chooseExtensionVersion(e.version, available.get(e.name) ?? []);
      const have = installed.get(e.name);
      if (have !== undefined) {
        if (choice.version !== null && compareVersions(have, choice.version) < 0) {
          await target.query(`ALTER EXTENSION ${quoteIdent(e.name)} UPDATE TO ${quoteLiteral(choice.version)}`);
          out.push({ name: e.name, source: e.version, target: choice.version, relation: choice.relation, action: 'updated' });
        } else {
          out.push({ name: e.name, source: e.version, target: have, relation: have === e.version ? 'same' : compareVersions(have, e.version) > 0 ? 'newer' : 'older', action: 'already there' });
        }
        continue;
      }
      if (choice.version === null) {
        // assess reports this as a blocker; a load that gets here lets pg_restore say it.
        out.push({ name: e.name, source: e.version, target: null, relation: 'unavailable', action: 'unavailable' });
        continue;
      }
      const owner = keepOwnership ? ` AUTHORIZATION ${quoteIdent(e.schemaOwner)}` : '';
      await target.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(e.schema)}${owner}`);
      try {
        await target.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(e.name)} WITH SCHEMA ${quoteIdent(e.schema)} VERSION ${quoteLiteral(choice.version)}`);
      } catch (err) {
        throw failure('extension.create', `extension ${e.name} ${choice.version} could not be created on the target: ${(err as Error).message}`, `create it by hand (CREATE EXTENSION ${e.name} VERSION '${choice.version}') and run full-load again`, err);
      }
      installed.set(e.name, choice.version);
      out.push({ name: e.name, source: e.version, target: choice.version, relation: choice.relation, action: 'created' });
    }
    await target.query('COMMIT');
  } catch (err) {
    await target.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return out;
}

/**
 * The source oids of the extensions' schemas that exist on the target now (other than public,
 * which pg_dump never creates): their CREATE SCHEMA entries are left out of the pre-data restore.
 */
export async function extensionSchemasOnTarget(source: pg.Client, target: pg.Client): Promise<string[]> {
  const r = await source.query<{ oid: string; name: string }>(
    `SELECT DISTINCT n.oid::text AS oid, n.nspname AS name FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE n.nspname NOT IN ('public', 'pg_catalog') AND e.extname <> ALL ($1)`,
    [SOURCE_ONLY_EXTENSIONS],
  );
  if (!r.rowCount) return [];
  const there = new Set((await target.query<{ n: string }>('SELECT nspname AS n FROM pg_namespace WHERE nspname = ANY($1)', [r.rows.map((x) => x.name)])).rows.map((x) => x.n));
  return r.rows.filter((x) => there.has(x.name)).map((x) => x.oid);
}
