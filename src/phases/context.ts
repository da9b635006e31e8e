import { decideUnlogged, type UnloggedDecision } from '../core/unlogged.js';
import { logicalDecodingProblem } from '../core/source-rules.js';
import type pg from 'pg';
import type { Plan } from '../config/schema.js';
import { gateRefused, inputError } from '../core/errors.js';
import { displayName } from '../core/ident.js';
import { assignGroups, describeEmptyGroup, describeTables, describeUnmatched } from '../core/groups.js';
import type { Logger } from '../core/log.js';
import { connect, endpointFor, majorOf, serverVersionNum, type Endpoint } from '../pg/connect.js';
import { listTables, setting, type TableInfo } from '../pg/catalog.js';
import { sameDatabase } from '../pg/identity.js';

/**
 * What every phase starts from: the plan, a logger, the two endpoints, and helpers to open the
 * sessions and resolve the plan's groups against the source catalog.
 */
export interface PhaseContext {
  plan: Plan;
  log: Logger;
  source: Endpoint;
  target: Endpoint;
  /** Aborted when the operator or the runner interrupts pgshift (SIGINT/SIGTERM): stop, leave a resumable state. */
  signal: AbortSignal;
}

export function phaseContext(plan: Plan, log: Logger, signal: AbortSignal = new AbortController().signal): PhaseContext {
  return { plan, log, source: endpointFor('source', plan.source), target: endpointFor('target', plan.target), signal };
}

export interface Sessions {
  source: pg.Client;
  target: pg.Client;
  sourceVersion: number;
  targetVersion: number;
  close(): Promise<void>;
}

/** Open one session on each side and read their versions; fails with exit 2 when either is unreachable. */
export async function openSessions(ctx: PhaseContext): Promise<Sessions> {
  const source = await connect(ctx.source);
  let target: pg.Client;
  try {
    target = await connect(ctx.target);
  } catch (err) {
    await source.end().catch(() => {});
    throw err;
  }
  const close = async () => {
    await Promise.all([source.end().catch(() => {}), target.end().catch(() => {})]);
  };
  const [sourceVersion, targetVersion] = await Promise.all([serverVersionNum(source), serverVersionNum(target)]);
  // Before anything else: a plan that names one database twice would load, publish and subscribe
  // a database into itself (and create pgshift's control schema in the application's database).
  if (await sameDatabase(source, target).catch(async (err) => {
    await close();
    throw err;
  })) {
    await close();
    throw inputError('plan.same-database', `source ${ctx.source.label} and target ${ctx.target.label} are the same database`, 'point target.url at the new server (an empty database there)');
  }
  return {
    source,
    target,
    sourceVersion,
    targetVersion,
    close,
  };
}

/** The preconditions of logical replication on the source: refused with exit 3, nothing changed. */
export async function requireLogicalSource(s: Sessions, ctx: PhaseContext): Promise<void> {
  const rdsFlag = await setting(s.source, 'rds.logical_replication');
  const decoding = logicalDecodingProblem({ wal_level: await setting(s.source, 'wal_level'), 'rds.logical_replication': rdsFlag }, rdsFlag !== undefined);
  if (decoding) throw gateRefused(decoding.code, `source ${ctx.source.label}: ${decoding.message}`, decoding.fix);
  if (majorOf(s.targetVersion) < majorOf(s.sourceVersion)) {
    throw gateRefused(
      'target.version',
      `target ${ctx.target.label} is PostgreSQL ${majorOf(s.targetVersion)}, older than the source's ${majorOf(s.sourceVersion)}`,
      'migrate to a target of the same or a newer major version',
    );
  }
}

export interface ResolvedGroup {
  name: string;
  /** Tables that hold rows: ordinary tables and partition leaves, largest first. */
  tables: TableInfo[];
  /** Partitioned parents: created by the schema, hold no rows themselves. */
  parents: TableInfo[];
}

/** The plan's decision (unlogged.mode, unlogged.skip) for each UNLOGGED table of the source. */
export function unloggedOf(ctx: PhaseContext, all: TableInfo[]): UnloggedDecision<TableInfo> {
  return decideUnlogged(
    all.filter((t) => t.persistence === 'u' && t.kind === 'r'),
    ctx.plan.unlogged,
  );
}

export async function resolveGroups(ctx: PhaseContext, source: pg.Client, versionNum: number, only?: string): Promise<ResolvedGroup[]> {
  const all = await listTables(source, versionNum);
  // Unlogged tables the plan has pgshift make logged migrate like the rest (see unloggedOf).
  const madeLogged = new Set(unloggedOf(ctx, all).makeLogged.map(displayName));
  const copyable = all.filter((t) => t.persistence === 'p' || madeLogged.has(displayName(t)));
  const { groups, unassigned, unmatched } = assignGroups(copyable, ctx.plan.groups);
  for (const u of unmatched) ctx.log.warn(`group ${u.group}: ${describeUnmatched(u).message}`);
  const leaves = unassigned.filter((t) => t.kind === 'r');
  if (leaves.length > 0) ctx.log.warn(`${leaves.length} table(s) are in no group and will not be migrated: ${describeTables(leaves)}`);
  if (only && !groups.has(only)) {
    throw inputError('group.unknown', `group ${only} is not in the plan`, `use one of: ${[...groups.keys()].join(', ')}`);
  }
  const result: ResolvedGroup[] = [];
  for (const [name, tables] of groups) {
    if (only && name !== only) continue;
    const data = tables.filter((t) => t.kind === 'r').sort((a, b) => b.bytes - a.bytes);
    if (data.length === 0) {
      const { message, fix } = describeEmptyGroup(name, unmatched);
      throw inputError('group.empty', message, fix);
    }
    result.push({ name, tables: data, parents: tables.filter((t) => t.kind === 'p') });
  }
  return result;
}
