import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePlan } from '../config/load.js';
import { applyProposal } from '../config/plan-writer.js';
import { parseServerUrl } from '../config/url.js';
import { inputError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ProposedGroup } from '../core/grouping.js';
import { proposalFrom, runAssess, type AssessResult } from './assess.js';
import { phaseContext } from './context.js';

/**
 * `pgshift init`: the first plan. From the two servers' URLs it writes a commented migration.yml
 * that passes the schema — `$schema` for editors, the groups assess proposes, the URLs left as
 * ${SOURCE_URL} and ${TARGET_URL} (secrets stay in the environment) — and never overwrites a file.
 * The settings only the cut-over needs are left as comments: no phase before it asks for them.
 */
export interface InitOptions {
  file: string;
  sourceUrl?: string;
  targetUrl?: string;
  /** Migration name; by default the source database's name made into an identifier. */
  name?: string;
  env: Record<string, string | undefined>;
  log: Logger;
}

export interface InitResult {
  file: string;
  name: string;
  groups: ProposedGroup[];
  source: AssessResult['source'];
  target: AssessResult['target'];
  tables: number;
  blockers: number;
  warnings: number;
  /** The URLs came from flags: the plan still reads them from the environment, which must be set. */
  exportNeeded: boolean;
}

export const SOURCE_VAR = 'SOURCE_URL';
export const TARGET_VAR = 'TARGET_URL';

export async function runInit(options: InitOptions): Promise<InitResult> {
  const { file, log } = options;
  const sourceUrl = urlFrom(options.sourceUrl, options.env[SOURCE_VAR], '--source-url', SOURCE_VAR);
  const targetUrl = urlFrom(options.targetUrl, options.env[TARGET_VAR], '--target-url', TARGET_VAR);
  refuseExisting(file);
  const name = options.name ?? nameFrom(sourceUrl);
  const env = { [SOURCE_VAR]: sourceUrl, [TARGET_VAR]: targetUrl };
  const template = planTemplate(name, schemaReference(file));
  const plan = parsePlan(template, file, env);
  log.info(`init: reading ${SOURCE_VAR} and ${TARGET_VAR} to propose the groups`);
  const assessed = await runAssess(phaseContext(plan, log));
  const proposal = proposalFrom(assessed, plan.cdc.engine);
  const { text } = applyProposal(template, proposal, file);
  // What is written must load as it is: the same check every phase makes.
  parsePlan(text, file, env);
  refuseExisting(file);
  try {
    writeFileSync(file, text, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') refuseExisting(file);
    throw inputError('init.write', `${file}: cannot write the plan (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'pass --config with a path in a writable directory', err);
  }
  return {
    file,
    name,
    groups: proposal.groups,
    source: assessed.source,
    target: assessed.target,
    tables: assessed.tables.length,
    blockers: assessed.blockers,
    warnings: assessed.findings.filter((f) => f.severity === 'warning').length,
    exportNeeded: options.env[SOURCE_VAR] !== sourceUrl || options.env[TARGET_VAR] !== targetUrl,
  };
}

function urlFrom(flag: string | undefined, env: string | undefined, flagName: string, variable: string): string {
  const url = flag || env;
  if (!url) {
    throw inputError(
      'init.url',
      `pgshift init needs both servers: neither ${flagName} nor ${variable} is set`,
      `export ${variable}=postgresql://user@host:5432/dbname (the plan reads it from there), or pass ${flagName}`,
    );
  }
  try {
    parseServerUrl(url);
  } catch (err) {
    throw inputError('init.url', `${flagName === '--source-url' ? 'source' : 'target'} URL: ${(err as Error).message}`, 'write postgresql://user@host:port/dbname');
  }
  return url;
}

function refuseExisting(file: string): void {
  if (existsSync(file)) {
    throw inputError('init.exists', `${file} already exists; pgshift init never overwrites a plan`, 'edit it, remove it first, or pass --config with another file name');
  }
}

/** The source database's name as a migration name (lower-case letters, digits and _, from a letter). */
export function nameFrom(url: string): string {
  const db = parseServerUrl(url).database.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  const name = /^[a-z]/.test(db) ? db : `db_${db}`;
  return name.slice(0, 40).replace(/_+$/, '') || 'migration';
}

/** The JSON Schema of the plan, as a path relative to the plan file (editors resolve it from there). */
function schemaReference(file: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'schema', 'migration.schema.json');
    if (existsSync(candidate)) {
      const rel = path.relative(path.dirname(path.resolve(file)), candidate).split(path.sep).join('/');
      return rel.startsWith('.') ? rel : `./${rel}`;
    }
    const up = path.dirname(dir);
    if (up === dir) return './schema/migration.schema.json';
    dir = up;
  }
}

function planTemplate(name: string, schema: string): string {
  return `# yaml-language-server: $schema=${schema}
# The migration plan, written by pgshift init from what it read on both servers. Every key, its
# default and what is allowed: the JSON Schema below; the decisions in order: docs/guide.md.
$schema: ${schema}
version: 1
name: ${name} # prefixes every object pgshift creates (slots, publications, schema pgshift)
source:
  url: \${${SOURCE_VAR}} # the primary: slots, CDC and the fence act here; secrets stay in the environment
  # replicaUrl: \${REPLICA_URL} # with snapshot: paused-replica, the physical replica the rows are read from
target:
  url: \${${TARGET_VAR}}
  # tls: { mode: verify-full, ca: /etc/ssl/rds-global-bundle.pem } # what Amazon RDS wants
snapshot: exported # or paused-replica: copy from a replica paused at a known LSN (source.replicaUrl)
fullLoad: { jobs: 4 } # tables, or parts of large tables, copied at once
cdc: { engine: native } # native logical replication, or dms (AWS DMS CDC-only tasks: docs/dms.md)
# roles: copy # create the roles the migrated objects need that the target lacks (assess lists them)
# extensions: { acceptNewer: [hstore] } # newer extension versions on the target that verify accepts
# Needed by pgshift cutover and rollback only; every phase before them runs without:
# cutover:
#   fence: roles # roles: these roles read-only; database: the whole database; pgbouncer: PAUSE
#   roles: [app_rw] # the application roles that write
#   rollback: true # reverse replication from the switch on, so pgshift rollback can move back
`;
}
