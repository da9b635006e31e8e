import { mkdtempSync, rmSync } from 'node:fs';
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
  options: { jobs: number; keepOwnership: boolean },
): Promise<void> {
  const args = [...connectionArgs(target), `--section=${section}`, '--exit-on-error'];
  if (!options.keepOwnership) args.push('--no-owner', '--no-privileges');
  if (section === 'post-data' && options.jobs > 1) args.push(`--jobs=${options.jobs}`);
  else args.push('--single-transaction');
  args.push(dump.file);
  await runTool(tool.path, args, toolEnv(target), `pg_restore ${section} into the target`);
}
