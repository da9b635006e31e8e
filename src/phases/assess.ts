import { assignGroups } from '../core/groups.js';
import { decideUnlogged } from '../core/unlogged.js';
import { balancedGroups, seedGroups, type ProposedGroup } from '../core/grouping.js';
import { displayName } from '../core/ident.js';
import { lobAdvice, type LobAdvice } from '../core/lob.js';
import { runPool } from '../core/pool.js';
import {
  bySeverity,
  extensionFindings,
  pgDumpFindings,
  roleFindings,
  serverFindings,
  serverObjectFindings,
  walHeadroom,
  type ExtensionReport,
  type Finding,
  type RoleCopyFacts,
  type RolesReport,
  type ServerFacts,
} from '../core/assess-findings.js';
import { groupAssignmentFindings, lobTruncationFindings, relationFindings, sequenceFindings, unloggedFindings, type RelationFacts } from '../core/table-findings.js';
import type { MissingRole } from '../core/roles.js';
import type { PlanProposal } from '../config/plan-writer.js';
import { ddlMode } from '../config/schema.js';
import { connect, majorOf } from '../pg/connect.js';
import { readRelations, readSequences, readServerFacts, sampleWalRate, scanLobs, type LobScan } from '../pg/inventory.js';
import { findTool } from '../pg/tools.js';
import { passwordsReadable, readMissingRoles, readRoleAttributes, readRoleCreator } from '../pg/roles.js';
import { openSessions, type PhaseContext, type Sessions } from './context.js';

/**
 * Assess: read both servers and report every blocker and risk before the first byte moves, with
 * the object, why it matters and the fix; propose the groups and per-table settings of the plan.
 * Reads catalogs only, except a bounded LOB sample whose cost is reported. The findings are rules
 * in core (assess-findings.ts, table-findings.ts); this phase reads their facts and runs them.
 */
export type { ExtensionReport, Finding, RolesReport, Severity } from '../core/assess-findings.js';

export interface TableProfile {
  table: string;
  group: string | null;
  kind: string;
  bytes: number;
  estimatedBytes: number;
  rowEstimate: number;
  key: 'primary key' | 'replica identity index' | 'replica identity full' | 'none';
  batchApply: boolean;
  lob: (LobAdvice & { columns: LobScan['columns']; exact: boolean; rowsScanned: number; samplePercent: number }) | null;
}

export interface AssessResult {
  source: { label: string; version: string; major: number };
  target: { label: string; version: string; major: number };
  groups: Array<{ name: string; tables: number; bytes: number; rowEstimate: number }>;
  proposal: { rule: 'seed' | 'balanced'; seed: ProposedGroup[]; balanced: ProposedGroup[] };
  tables: TableProfile[];
  sequences: number;
  lobScan: { tables: number; rowsScanned: number; exactTables: number; sampledTables: number; ms: number };
  wal: { bytesPerSecond: number; maxSlotWalKeepSize: number | null; headroomHours: number | null; loadHours: number };
  /** Each extension of the source: its version, what the target offers, what the load installs. */
  extensions: ExtensionReport[];
  /** Roles the migrated objects need that the target lacks, and what the plan does about them. */
  roles: RolesReport;
  findings: Finding[];
  blockers: number;
  seconds: number;
}

/**
 * The facts and findings every phase that acts must respect too: servers, roles, tools, and each
 * table's key, identity and privileges — everything of assess but the LOB sizes and the WAL rate
 * (which take time and decide no refusal of a phase that is already running). full-load refuses on
 * the blockers found here, so a refusal of assess also stops the load that would create the
 * harmful object.
 */
export interface Preconditions {
  src: ServerFacts;
  tgt: ServerFacts;
  relations: RelationFacts[];
  groupOf: Map<RelationFacts, string>;
  assignment: ReturnType<typeof assignGroups<RelationFacts>>;
  /** In the order found: the phases that refuse name the first blocker. */
  findings: Finding[];
  extensions: ExtensionReport[];
  roles: RolesReport;
}

export async function readPreconditions(ctx: PhaseContext, s: Sessions, options: { streamsNeeded: number }): Promise<Preconditions> {
  const seconds = ctx.plan.assess.longTransactionSeconds;
  const [src, tgt] = await Promise.all([readServerFacts(s.source, seconds), readServerFacts(s.target, seconds)]);
  const servers = await serverPreconditions(ctx, s, src, tgt, options.streamsNeeded);
  const tables = await tablePreconditions(ctx, s, src);
  return { src, tgt, ...tables, findings: [...servers.findings, ...tables.findings], extensions: servers.extensions, roles: servers.roles };
}

/** The servers' findings: versions, settings, privileges, sessions, extensions, roles, pg_dump. */
async function serverPreconditions(ctx: PhaseContext, s: Sessions, src: ServerFacts, tgt: ServerFacts, streamsNeeded: number) {
  const { plan } = ctx;
  const sourceMajor = majorOf(src.versionNum);
  const rules = {
    sourceLabel: ctx.source.label,
    targetLabel: ctx.target.label,
    sourceMajor,
    targetMajor: majorOf(tgt.versionNum),
    streamsNeeded,
    groups: plan.groups.length,
    engine: plan.cdc.engine,
    plugin: plan.cdc.dms.plugin,
    ddl: ddlMode(plan),
  };
  const extensions = extensionFindings(src, tgt, plan.extensions.acceptNewer, ctx.target.label);
  const { missing, copy } = await readRoleFacts(ctx, s, src);
  const roles = roleFindings(plan.roles, missing, copy);
  const findings = [
    ...serverFindings(src, tgt, rules),
    ...extensions.findings,
    ...roles.findings,
    ...serverObjectFindings(src, tgt),
    ...pgDumpFindings(await locatePgDump(plan.fullLoad.pgBinDir), sourceMajor),
  ];
  return { findings, extensions: extensions.report, roles: roles.report };
}

/** The roles the target lacks and, when roles: copy has some to create, what the copy works with. */
async function readRoleFacts(ctx: PhaseContext, s: Sessions, src: ServerFacts): Promise<{ missing: MissingRole[]; copy?: RoleCopyFacts }> {
  const missing = await readMissingRoles(s.source, s.target, src.versionNum, ctx.plan.fullLoad.ownership === 'keep');
  if (!missing.length || ctx.plan.roles !== 'copy') return { missing };
  const creator = await readRoleCreator(s.target);
  const attributes = await readRoleAttributes(s.source, missing.map((m) => m.role));
  return { missing, copy: { creator, attributes, passwordsReadable: await passwordsReadable(s.source) } };
}

/** The pg_dump the full load would run, or why there is none. */
async function locatePgDump(binDir: string | undefined): Promise<{ path: string; major: number } | { error: string }> {
  try {
    return await findTool('pg_dump', binDir);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** The source's tables: which migrate (unlogged ones as the plan decides), their groups, their findings. */
async function tablePreconditions(ctx: PhaseContext, s: Sessions, src: ServerFacts) {
  const { plan } = ctx;
  const relations = await readRelations(s.source, src.versionNum);
  const unlogged = decideUnlogged(
    relations.filter((r) => r.kind === 'r' && r.persistence === 'u'),
    plan.unlogged,
  );
  const madeLogged = new Set(unlogged.makeLogged);
  const migratable = relations.filter((r) => (r.kind === 'r' || r.kind === 'p') && (r.persistence === 'p' || madeLogged.has(r)));
  const assignment = assignGroups(migratable, plan.groups);
  const groupOf = new Map<RelationFacts, string>();
  for (const [g, list] of assignment.groups) for (const t of list) groupOf.set(t, g);
  const rules = { reader: src.role, engine: plan.cdc.engine, plugin: plan.cdc.dms.plugin, replicaIdentityFull: plan.cdc.replicaIdentityFull, unlogged: plan.unlogged };
  const findings = [...groupAssignmentFindings(assignment), ...unloggedFindings(unlogged), ...relations.flatMap((t) => relationFindings(t, groupOf.get(t) ?? null, rules))];
  return { relations, groupOf, assignment, findings };
}

export async function runAssess(ctx: PhaseContext): Promise<AssessResult> {
  const started = Date.now();
  const { plan } = ctx;
  const opts = plan.assess;
  const s = await openSessions(ctx);
  try {
    const pre = await readPreconditions(ctx, s, { streamsNeeded: plan.groups.length });
    const { src, tgt } = pre;
    const profiles = profileTables(pre.relations, pre.groupOf);
    const lobs = await sizeLobs(ctx, pre.relations, profiles);
    const sequences = await readSequences(s.source);
    // Slots hold WAL through the full load: its estimate at the plan's copy rate against the headroom.
    const loadHours = profiles.reduce((n, p) => n + Math.max(p.bytes, p.estimatedBytes), 0) / opts.copyRate / 3600;
    const rate = await sampleWalRate(s.source, opts.walSampleSeconds, ctx.signal);
    const wal = walHeadroom({ sourceLabel: ctx.source.label, keepSetting: src.settings.max_slot_wal_keep_size, bytesPerSecond: rate, loadHours });
    const findings = bySeverity([...pre.findings, ...lobs.findings, ...sequenceFindings(sequences), ...wal.findings]);
    return {
      source: { label: ctx.source.label, version: src.version, major: majorOf(src.versionNum) },
      target: { label: ctx.target.label, version: tgt.version, major: majorOf(tgt.versionNum) },
      groups: [...pre.assignment.groups].map(([name, list]) => ({
        name,
        tables: list.filter((t) => t.kind === 'r').length,
        bytes: list.reduce((n, t) => n + t.bytes, 0),
        rowEstimate: list.reduce((n, t) => n + t.rowEstimate, 0),
      })),
      proposal: proposeGroups(profiles, opts),
      tables: profiles,
      sequences: sequences.length,
      lobScan: lobs.summary,
      wal: { bytesPerSecond: Math.round(rate), maxSlotWalKeepSize: wal.keepBytes, headroomHours: wal.headroomHours, loadHours },
      extensions: pre.extensions,
      roles: pre.roles,
      findings,
      blockers: findings.filter((f) => f.severity === 'blocker').length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await s.close();
  }
}

/** One profile per table that holds rows and is copied: size, key, batch-apply eligibility (LOBs come later). */
function profileTables(relations: RelationFacts[], groupOf: Map<RelationFacts, string>): TableProfile[] {
  return relations
    .filter((t) => t.kind === 'r' && (t.persistence === 'p' || groupOf.has(t)))
    .map((t) => ({
      table: displayName(t),
      group: groupOf.get(t) ?? null,
      kind: t.isPartition ? 'partition' : 'table',
      bytes: t.bytes,
      estimatedBytes: t.estimatedBytes,
      rowEstimate: t.rowEstimate,
      key: t.hasPrimaryKey ? 'primary key' : t.replicaIdentity === 'i' ? 'replica identity index' : t.replicaIdentity === 'f' ? 'replica identity full' : 'none',
      // Batch apply needs a key and no other unique constraint on the target (the target gets the source's).
      batchApply: t.hasPrimaryKey && t.otherUniqueIndexes === 0,
      lob: null,
    }));
}

/**
 * The largest value of every LOB column, by bounded scans two at a time (exact below
 * assess.lobExactBelow, else sampled), set on each table's profile as the DMS LOB advice.
 */
async function sizeLobs(ctx: PhaseContext, relations: RelationFacts[], profiles: TableProfile[]): Promise<{ summary: AssessResult['lobScan']; findings: Finding[] }> {
  const { assess: opts, cdc } = ctx.plan;
  const lobTables = relations.filter((t) => t.kind === 'r' && t.persistence === 'p' && t.lobColumns.length > 0 && t.canSelect);
  const started = Date.now();
  let rowsScanned = 0;
  let exactTables = 0;
  const findings: Finding[] = [];
  const workers: Array<Awaited<ReturnType<typeof connect>>> = [];
  try {
    await runPool(lobTables, 2, async (t, id) => {
      workers[id] ??= await connect(ctx.source, { applicationName: 'pgshift assess' });
      const scan = await scanLobs(workers[id], t, opts.lobSampleRows, opts.lobExactBelow);
      rowsScanned += scan.rowsScanned;
      if (scan.exact) exactTables++;
      const profile = profiles.find((p) => p.table === displayName(t))!;
      const maxBytes = Math.max(0, ...scan.columns.map((c) => c.maxBytes));
      profile.lob = { ...lobAdvice(maxBytes, cdc.dms.lobMaxSizeKb), columns: scan.columns, exact: scan.exact, rowsScanned: scan.rowsScanned, samplePercent: scan.samplePercent };
      findings.push(...lobTruncationFindings(profile.table, profile.lob, cdc.dms.lobMaxSizeKb, cdc.engine));
    });
  } finally {
    await Promise.all(workers.map((w) => w.end().catch(() => {})));
  }
  const summary = { tables: lobTables.length, rowsScanned, exactTables, sampledTables: lobTables.length - exactTables, ms: Date.now() - started };
  return { summary, findings };
}

/** Both groupings assess proposes from the tables that hold rows (the plan's assess.grouping picks one). */
function proposeGroups(profiles: TableProfile[], opts: PhaseContext['plan']['assess']): AssessResult['proposal'] {
  const sized = profiles.filter((p) => p.rowEstimate > 0 || p.bytes > 0).map((p) => ({ name: p.table, bytes: Math.max(p.bytes, p.estimatedBytes), batchApply: p.batchApply }));
  return { rule: opts.grouping, seed: seedGroups(sized, opts.largestOwnGroup), balanced: balancedGroups(sized, opts.balancedGroups) };
}

/** The plan content assess proposes: the chosen grouping and per-table settings that differ from the defaults. */
export function proposalFrom(r: AssessResult, engine: string): PlanProposal {
  const tables: PlanProposal['tables'] = {};
  for (const t of r.tables) {
    const entry: PlanProposal['tables'][string] = {};
    if (t.lob && engine === 'dms') {
      entry.lobMode = t.lob.mode;
      entry.lobMaxSizeKb = t.lob.limitKb;
    }
    // Batch apply is a DMS task setting: nothing to say about it to a native migration.
    if (engine === 'dms' && !t.batchApply) entry.batchApply = false;
    if (Object.keys(entry).length) tables[t.table] = entry;
  }
  // A source without a table that holds rows yet still gets a group: one that takes every table.
  const groups = r.proposal[r.proposal.rule];
  return { groups: groups.length ? groups : [{ name: 'all', tables: ['*.*'], bytes: 0 }], tables };
}
