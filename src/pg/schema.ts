import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { noteChange } from '../core/changes.js';
import { SOURCE_ONLY_EXTENSIONS } from '../core/extensions.js';
import os from 'node:os';
import path from 'node:path';
import type { Endpoint } from './connect.js';
import { CONTROL_SCHEMA } from './catalog.js';
import { connectionArgs, runTool, toolEnv, type PgTool } from './tools.js';

/**
 * The schema travels with pg_dump/pg_restore: pre-data (types, tables, functions) before the
 * rows, post-data (indexes, constraints, triggers, foreign keys) after them, so that indexes are
 * built once over loaded data instead of maintained row by row. The dump is taken inside the
 * exported snapshot, so the schema is exactly the one the rows were read in.
 */
export interface SchemaDump {
  file: string;
  dispose(): void;
}

export async function dumpSchema(tool: PgTool, source: Endpoint, snapshotName: string | undefined): Promise<SchemaDump> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-schema-'));
  const file = path.join(dir, 'schema.dump');
  const args = [
    ...connectionArgs(source),
    '--schema-only',
    '--format=custom',
    `--file=${file}`,
    `--exclude-schema=${CONTROL_SCHEMA}`,
    '--no-publications',
    '--no-subscriptions',
  ];
  if (snapshotName) args.push(`--snapshot=${snapshotName}`);
  await runTool(tool.path, args, toolEnv(source), 'pg_dump of the source schema');
  return { file, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function restoreSection(
  tool: PgTool,
  target: Endpoint,
  dump: SchemaDump,
  section: 'pre-data' | 'post-data',
  options: {
    keepOwnership: boolean;
    /** A pg_restore -L list: the entries to restore (post-data without the early-built indexes). */
    listFile?: string;
    /** application_name of the restore session, so that a later run can end it if we die. */
    sessionName?: string;
  },
): Promise<void> {
  // One transaction: a crash or an error leaves the whole section or nothing, so a re-run can
  // simply run it again.
  const args = [...connectionArgs(target), `--section=${section}`, '--exit-on-error', '--single-transaction'];
  if (!options.keepOwnership) args.push('--no-owner', '--no-privileges');
  if (options.listFile) args.push(`--use-list=${options.listFile}`);
  args.push(dump.file);
  const env = toolEnv(target);
  noteChange(`schema ${section} restored on the target`);
  if (options.sessionName) env.PGAPPNAME = options.sessionName;
  await runTool(tool.path, args, env, `pg_restore ${section} into the target`);
}

// Which extensions stay on the source is a rule (core/extensions.ts); the dump's list filter reads it here.
export { SOURCE_ONLY_EXTENSIONS };

/**
 * A pg_restore -L list of the dump without the entries `skip` names (a line of `pg_restore --list`:
 * "id; classid objid TYPE schema name owner") nor pgshift's event triggers, written beside the dump.
 */
export async function restoreList(tool: PgTool, dump: SchemaDump, name: string, skip: (entry: { classId: string; objectId: string; line: string }) => boolean): Promise<string> {
  const listing = await runTool(tool.path, ['--list', dump.file], process.env, 'pg_restore --list of the schema dump');
  const lines = listing.split('\n').map((line) => {
    const m = /^\s*\d+;\s+(\d+)\s+(\d+)\s/.exec(line);
    // pgshift's own DDL capture on the source (its functions live in the excluded control schema).
    const ours = /\sEVENT TRIGGER - pgshift_ddl/.test(line);
    return m && (ours || skip({ classId: m[1], objectId: m[2], line })) ? `;${line}` : line;
  });
  const file = path.join(path.dirname(dump.file), `${name}.list`);
  writeFileSync(file, lines.join('\n'));
  return file;
}

/**
 * Pre-data without the source-only extensions, nor the schemas (by their oid on the source) that
 * pgshift created with the extensions they hold (src/pg/extensions.ts).
 */
export function preDataList(tool: PgTool, dump: SchemaDump, createdSchemaOids: readonly string[] = []): Promise<string> {
  const names = SOURCE_ONLY_EXTENSIONS.join('|');
  const re = new RegExp(`\\s(EXTENSION - |COMMENT - EXTENSION )(${names})\\s`);
  const schemas = new Set(createdSchemaOids);
  return restoreList(tool, dump, 'pre-data', ({ classId, objectId, line }) => re.test(`${line} `) || (classId === NAMESPACE_CLASS && schemas.has(objectId) && /\sSCHEMA - /.test(line)));
}

/** pg_namespace's oid, the class id of a schema's entry in a dump's table of contents. */
const NAMESPACE_CLASS = '2615';
