import { logicalDecodingProblem } from '../core/source-rules.js';
import { formatBytes, parseSize } from '../config/size.js';
import { assignGroups, describeEmptyGroup, describeUnmatched, matchesPattern } from '../core/groups.js';
import { decideUnlogged, undecidedFix } from '../core/unlogged.js';
import { balancedGroups, seedGroups, type ProposedGroup } from '../core/grouping.js';
import { displayName } from '../core/ident.js';
import { privilegeFindings } from '../core/privileges.js';
import { fullIdentityWithoutEquality, IDENTITY_PROBLEM_TEXT, identityProblem, planPublishing } from '../core/replica-identity.js';
import { lobAdvice, type LobAdvice } from '../core/lob.js';
import { runPool } from '../core/pool.js';
import type { PlanProposal } from '../config/plan-writer.js';
import { ddlMode } from '../config/schema.js';
import { connect, majorOf } from '../pg/connect.js';
import { readRelations, readSequences, readServerFacts, sampleWalRate, scanLobs, type LobScan, type RelationFacts, type ServerFacts } from '../pg/inventory.js';
import { findTool } from '../pg/tools.js';
import { SOURCE_ONLY_EXTENSIONS } from '../pg/schema.js';
import { acceptsNewer, chooseExtensionVersion, compareVersions, type VersionChoice } from '../core/extensions.js';
import { describeNeeds, planRoleCopy } from '../core/roles.js';
import { quoteIdent } from '../core/ident.js';
import { passwordsReadable, readMissingRoles, readRoleAttributes, readRoleCreator } from '../pg/roles.js';
import { openSessions, type PhaseContext, type Sessions } from './context.js';

/**
 * Assess: read both servers and report every blocker and risk before the first byte moves, with
 * the object, why it matters and the fix; propose the groups and per-table settings of the plan.
 * Reads catalogs only, except a bounded LOB sample whose cost is reported.
 */
export type Severity = 'blocker' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  code: string;
  object: string;
  message: string;
  fix?: string;
}

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

export interface ExtensionReport {
  name: string;
  source: string;
  /** What CREATE EXTENSION without a version installs on the target. */
  targetDefault: string | null;
  /** pg_available_extension_versions on the target (null: the target could not say). */
  available: string[] | null;
  /** The version the full load installs, and how it relates to the source's. */
  install: string | null;
  relation: VersionChoice['relation'] | 'unknown';
  /** A newer version on the target is accepted by extensions.acceptNewer. */
  newerAccepted: boolean;
}

export interface RolesReport {
  mode: 'require' | 'copy';
  missing: Array<{ role: string; neededAs: string }>;
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
  findings: Finding[];
  add: Add;
  extensions: ExtensionReport[];
  roles: RolesReport;
}

export async function readPreconditions(ctx: PhaseContext, s: Sessions, options: { streamsNeeded: number }): Promise<Preconditions> {
  const { plan } = ctx;
  const opts = plan.assess;
  const findings: Finding[] = [];
  const add: Add = (severity, code, object, message, fix) => findings.push({ severity, code, object, message, fix });
  const [src, tgt] = await Promise.all([readServerFacts(s.source, opts.longTransactionSeconds), readServerFacts(s.target, opts.longTransactionSeconds)]);
  const sourceMajor = majorOf(src.versionNum);
  const targetMajor = majorOf(tgt.versionNum);
  const native = plan.cdc.engine === 'native';
  const dmsPlugin = plan.cdc.dms.plugin;

  // Servers.
  if (targetMajor < sourceMajor) add('blocker', 'target.version', ctx.target.label, `target PostgreSQL ${targetMajor} is older than the source's ${sourceMajor}`, 'migrate to the same or a newer major');
  checkSourceSettings(src, ctx.source.label, options.streamsNeeded, native, dmsPlugin, add);
  checkPrivileges(src, tgt, ctx, native, plan.groups.length, add);
  for (const t of src.longTransactions) {
    add('warning', 'source.long-transaction', `pid ${t.pid} (${t.user}${t.application ? `, ${t.application}` : ''})`, `transaction open for ${t.seconds} s (${t.state}): creating a replication slot waits until it ends`, 'end it before the full load, or wait');
  }
  for (const p of src.preparedTransactions) {
    add('blocker', 'source.prepared-transaction', `prepared transaction ${p.gid}`, `prepared ${p.seconds} s ago: slot creation waits for it`, `finish it on the source: COMMIT PREPARED or ROLLBACK PREPARED '${p.gid}'`);
  }
  const extensions = checkExtensions(src, tgt, ctx, add);
  const roles = await checkRoles(ctx, s, src, add);
  for (const t of src.eventTriggers.filter((x) => !x.name.startsWith('pgshift_ddl'))) {
    add('warning', 'source.event-trigger', `event trigger ${t.name}`, `DDL event trigger on ${t.event} (enabled: ${t.enabled}) on the source: DDL it runs itself is not carried, and DMS fails with ENABLE ALWAYS triggers`, 'disable it for the migration window if it writes');
  }
  for (const t of tgt.eventTriggers) add('warning', 'target.event-trigger', `event trigger ${t.name}`, `DDL event trigger on the target fires during the schema restore`, 'disable it during the full load');
  if (src.largeObjects > 0) {
    add('warning', 'source.large-objects', `${src.largeObjects} large object(s)`, 'large objects (pg_largeobject) are copied by the full load but not replicated: the cut-over carries the ones changed since once the source is sealed, reading every one on both sides to find them (its time adds to the window); verify reports them until then', 'move them to bytea columns if there are many, to keep the window short');
  }
  try {
    const dump = await findTool('pg_dump', plan.fullLoad.pgBinDir);
    if (dump.major < sourceMajor) add('blocker', 'tool.pg_dump', dump.path, `pg_dump ${dump.major} cannot dump a PostgreSQL ${sourceMajor} source`, `install PostgreSQL ${sourceMajor} client tools and set fullLoad.pgBinDir`);
  } catch (err) {
    add('blocker', 'tool.pg_dump', 'pg_dump', (err as Error).message, 'install the PostgreSQL client tools');
  }

  // Tables.
  const relations = await readRelations(s.source, src.versionNum);
  // UNLOGGED tables: what the plan says happens to each (never lost silently).
  const unlogged = decideUnlogged(
    relations.filter((r) => r.kind === 'r' && r.persistence === 'u'),
    plan.unlogged,
  );
  const madeLogged = new Set(unlogged.makeLogged);
  const migratable = relations.filter((r) => (r.kind === 'r' || r.kind === 'p') && (r.persistence === 'p' || madeLogged.has(r)));
  const assignment = assignGroups(migratable, plan.groups);
  const groupOf = new Map<RelationFacts, string>();
  for (const [g, list] of assignment.groups) for (const t of list) groupOf.set(t, g);
  for (const u of assignment.unmatched) {
    const { message, fix } = describeUnmatched(u);
    add('warning', 'group.pattern', `group ${u.group}`, message, fix);
  }
  for (const [g, list] of assignment.groups) {
    if (list.some((t) => t.kind === 'r')) continue;
    const { message, fix } = describeEmptyGroup(g, assignment.unmatched);
    add('blocker', 'group.empty', `group ${g}`, message, fix);
  }
  if (unlogged.undecided.length) {
    const { message, fix } = undecidedFix(unlogged.undecided);
    add('blocker', 'unlogged.undecided', unlogged.undecided.map(displayName).join(', '), message, fix);
  }
  for (const t of unlogged.copyAtCutover) add('info', 'table.unlogged', displayName(t), `unlogged table (${formatBytes(t.bytes)}): copied inside the cut-over window, writes fenced (unlogged.mode: copy-at-cutover) — its copy time adds to the window`);
  for (const t of unlogged.makeLogged) add('warning', 'table.unlogged', displayName(t), `unlogged table: pgshift runs ALTER TABLE … SET LOGGED on the source before the load (unlogged.mode: make-logged), rewriting its ${formatBytes(t.bytes)} under an exclusive lock`);
  for (const t of unlogged.skipped) add('info', 'table.unlogged', displayName(t), 'unlogged table: left empty on the target, as unlogged.skip says');
  for (const p of unlogged.unmatchedSkip) add('warning', 'unlogged.skip', p, 'unlogged.skip names no unlogged table of the source', 'correct the name, or remove it from unlogged.skip');
  for (const t of relations) checkRelation(t, displayName(t), groupOf.get(t) ?? null, plan, add);
  return { src, tgt, relations, groupOf, assignment, findings, add, extensions, roles };
}

export async function runAssess(ctx: PhaseContext): Promise<AssessResult> {
  const started = Date.now();
  const { plan } = ctx;
  const opts = plan.assess;
  const s = await openSessions(ctx);
  try {
    const { src, tgt, relations, groupOf, assignment, findings, add, extensions, roles } = await readPreconditions(ctx, s, { streamsNeeded: plan.groups.length });
    const sourceMajor = majorOf(src.versionNum);
    const targetMajor = majorOf(tgt.versionNum);
    const native = plan.cdc.engine === 'native';
    const targetUnique = new Map<string, number>();
    const profiles: TableProfile[] = [];
    for (const t of relations) {
      const name = displayName(t);
      if (t.kind !== 'r' || (t.persistence !== 'p' && !groupOf.has(t))) continue;
      targetUnique.set(name, t.otherUniqueIndexes);
      profiles.push({
        table: name,
        group: groupOf.get(t) ?? null,
        kind: t.isPartition ? 'partition' : 'table',
        bytes: t.bytes,
        estimatedBytes: t.estimatedBytes,
        rowEstimate: t.rowEstimate,
        key: t.hasPrimaryKey ? 'primary key' : t.replicaIdentity === 'i' ? 'replica identity index' : t.replicaIdentity === 'f' ? 'replica identity full' : 'none',
        // Batch apply needs a key and no other unique constraint on the target (the target gets the source's).
        batchApply: t.hasPrimaryKey && t.otherUniqueIndexes === 0,
        lob: null,
      });
    }

    // LOBs: bounded scans, two at a time.
    const lobTables = relations.filter((t) => t.kind === 'r' && t.persistence === 'p' && t.lobColumns.length > 0 && t.canSelect);
    const lobStarted = Date.now();
    let rowsScanned = 0;
    let exactTables = 0;
    const workers: Array<Awaited<ReturnType<typeof connect>>> = [];
    try {
      await runPool(lobTables, 2, async (t, id) => {
        workers[id] ??= await connect(ctx.source, { applicationName: 'pgshift assess' });
        const scan = await scanLobs(workers[id], t, opts.lobSampleRows, opts.lobExactBelow);
        rowsScanned += scan.rowsScanned;
        if (scan.exact) exactTables++;
        const profile = profiles.find((p) => p.table === displayName(t))!;
        const maxBytes = Math.max(0, ...scan.columns.map((c) => c.maxBytes));
        profile.lob = { ...lobAdvice(maxBytes, plan.cdc.dms.lobMaxSizeKb), columns: scan.columns, exact: scan.exact, rowsScanned: scan.rowsScanned, samplePercent: scan.samplePercent };
        if (!native && profile.lob.truncatedAtTaskLimit) {
          const where = scan.exact ? 'exact' : `largest in a ${scan.samplePercent.toFixed(2)}% sample`;
          add(
            profile.lob.mode === 'unlimited' ? 'warning' : 'info',
            'lob.truncation',
            profile.table,
            `largest LOB value ${formatBytes(maxBytes)} (${where}) would be truncated at the task limit of ${plan.cdc.dms.lobMaxSizeKb} KB`,
            profile.lob.mode === 'unlimited' ? 'use lobMode: unlimited for this table (no truncation)' : `use lobMaxSizeKb: ${profile.lob.limitKb} for this table`,
          );
        }
      });
    } finally {
      await Promise.all(workers.map((w) => w.end().catch(() => {})));
    }
    const lobMs = Date.now() - lobStarted;

    // Sequences.
    const sequences = await readSequences(s.source);
    for (const q of sequences) {
      const name = displayName(q);
      if (!q.ownedBy) add('info', 'sequence.unowned', name, 'owned by no column: pgshift still carries its value at cut-over', undefined);
      if (q.lastValue !== null && q.maxValue > 0n && q.lastValue * 10n >= q.maxValue * 8n) {
        const pct = Number((q.lastValue * 1000n) / q.maxValue) / 10;
        add('warning', 'sequence.near-limit', name, `${q.dataType} sequence at ${pct}% of its maximum ${q.maxValue}`, `widen it before it runs out: ALTER SEQUENCE ${name} AS bigint, and the column too`);
      }
    }

    // WAL headroom while slots hold WAL through the full load.
    const totalBytes = profiles.reduce((n, p) => n + Math.max(p.bytes, p.estimatedBytes), 0);
    const loadHours = totalBytes / plan.assess.copyRate / 3600;
    const rate = await sampleWalRate(s.source, opts.walSampleSeconds, ctx.signal);
    const keepText = src.settings.max_slot_wal_keep_size;
    const keep = keepText === null || keepText === undefined || keepText === '-1' ? null : (parseSize(keepText) ?? null);
    const headroomHours = keep !== null && rate > 0 ? keep / rate / 3600 : null;
    if (keepText === '-1') {
      add('warning', 'wal.unlimited', ctx.source.label, `max_slot_wal_keep_size is unlimited: a stalled slot keeps WAL until the disk fills (${formatBytes(rate * 3600)} per hour at the current rate; ~${formatBytes(rate * loadHours * 3600)} during a ${loadHours.toFixed(1)} h full load)`, 'set max_slot_wal_keep_size to what the disk can hold, and watch pgshift cdc status');
    } else if (headroomHours !== null && headroomHours < loadHours) {
      add('blocker', 'wal.headroom', ctx.source.label, `max_slot_wal_keep_size (${keepText}) lasts ${headroomHours.toFixed(1)} h at the current WAL rate; the full load takes about ${loadHours.toFixed(1)} h, so the slots would be invalidated`, 'raise max_slot_wal_keep_size, or split the load into groups loaded one after another');
    } else if (headroomHours !== null && headroomHours < loadHours * 2) {
      add('warning', 'wal.headroom', ctx.source.label, `max_slot_wal_keep_size (${keepText}) lasts ${headroomHours.toFixed(1)} h at the current WAL rate, under twice the ${loadHours.toFixed(1)} h full-load estimate`, 'raise max_slot_wal_keep_size');
    }

    const sized = profiles.filter((p) => p.rowEstimate > 0 || p.bytes > 0).map((p) => ({ name: p.table, bytes: Math.max(p.bytes, p.estimatedBytes), batchApply: p.batchApply }));
    const severityOrder = { blocker: 0, warning: 1, info: 2 };
    findings.sort((a, b) => severityOrder[a.severity] - severityOrder[b.severity]);
    return {
      source: { label: ctx.source.label, version: src.version, major: sourceMajor },
      target: { label: ctx.target.label, version: tgt.version, major: targetMajor },
      groups: [...assignment.groups].map(([name, list]) => ({
        name,
        tables: list.filter((t) => t.kind === 'r').length,
        bytes: list.reduce((n, t) => n + t.bytes, 0),
        rowEstimate: list.reduce((n, t) => n + t.rowEstimate, 0),
      })),
      proposal: { rule: opts.grouping, seed: seedGroups(sized, opts.largestOwnGroup), balanced: balancedGroups(sized, opts.balancedGroups) },
      tables: profiles,
      sequences: sequences.length,
      lobScan: { tables: lobTables.length, rowsScanned, exactTables, sampledTables: lobTables.length - exactTables, ms: lobMs },
      wal: { bytesPerSecond: Math.round(rate), maxSlotWalKeepSize: keep, headroomHours, loadHours },
      extensions,
      roles,
      findings,
      blockers: findings.filter((f) => f.severity === 'blocker').length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await s.close();
  }
}

/** Each extension of the source against what the target offers (core/extensions.ts chooses the version). */
function checkExtensions(src: ServerFacts, tgt: ServerFacts, ctx: PhaseContext, add: Add): ExtensionReport[] {
  const offered = tgt.availableExtensions;
  const accept = ctx.plan.extensions.acceptNewer;
  const out: ExtensionReport[] = [];
  const mine = src.extensions.filter((x) => !SOURCE_ONLY_EXTENSIONS.includes(x.name) && x.name !== 'plpgsql');
  if (!(offered instanceof Map)) {
    const names = mine.map((e) => e.name).join(', ');
    add('warning', 'target.extensions-unknown', ctx.target.label, `cannot list the extensions the target offers (${offered.error}), so the source's (${names}) are not checked`, 'fix or remove the extension file named in the message on the target');
    return mine.map((e) => ({ name: e.name, source: e.version, targetDefault: null, available: null, install: null, relation: 'unknown', newerAccepted: acceptsNewer(accept, e.name) }));
  }
  for (const e of mine) {
    const avail = offered.get(e.name);
    const choice = chooseExtensionVersion(e.version, avail?.versions ?? []);
    const newerAccepted = acceptsNewer(accept, e.name);
    out.push({ name: e.name, source: e.version, targetDefault: avail?.defaultVersion ?? null, available: avail ? [...avail.versions].sort(compareVersions) : [], install: choice.version, relation: choice.relation, newerAccepted });
    const object = `extension ${e.name}`;
    if (!avail || choice.version === null) add('blocker', 'extension.missing', object, `installed on the source (${e.version}) but not available on the target`, `install ${e.name} on the target (on RDS: check rds.extensions)`);
    else if (choice.relation === 'newer' && !newerAccepted) {
      add('warning', 'extension.version', object, `the target does not offer the source's ${e.version}; the full load installs ${choice.version}, which verify and the cut-over count as a difference until the plan accepts it`, `read ${e.name}'s upgrade notes, then set extensions.acceptNewer: [${e.name}]`);
    } else if (choice.relation === 'newer') {
      add('info', 'extension.version', object, `the target does not offer the source's ${e.version}; the full load installs ${choice.version} (accepted by extensions.acceptNewer)`);
    } else if (choice.relation === 'older') {
      add('warning', 'extension.version', object, `the target offers only older versions than the source's ${e.version}; the full load installs ${choice.version}`, `install ${e.name} ${e.version} on the target first`);
    }
  }
  return out;
}

/**
 * Roles the migrated objects need that the target lacks: a blocker with roles: require (the
 * schema restore would fail on the first), the plan of the copy with roles: copy.
 */
async function checkRoles(ctx: PhaseContext, s: Sessions, src: ServerFacts, add: Add): Promise<RolesReport> {
  const { plan } = ctx;
  const missing = await readMissingRoles(s.source, s.target, src.versionNum, plan.fullLoad.ownership === 'keep');
  const report: RolesReport = { mode: plan.roles, missing: missing.map((m) => ({ role: m.role, neededAs: describeNeeds(m) })) };
  if (!missing.length) return report;
  const names = missing.map((m) => m.role);
  const listed = `${names.slice(0, 10).join(', ')}${names.length > 10 ? ` and ${names.length - 10} more` : ''}`;
  if (plan.roles === 'require') {
    add(
      'blocker',
      'roles.missing',
      `role${names.length > 1 ? 's' : ''} ${listed}`,
      `${names.length} role(s) the migrated objects need are missing on the target: ${missing.slice(0, 5).map((m) => describeNeeds(m)).join('; ')}${missing.length > 5 ? '; …' : ''}`,
      `set roles: copy in the plan (pgshift creates them before the schema), or create them on the target first (CREATE ROLE ${quoteIdent(names[0])} …)`,
    );
    return report;
  }
  const creator = await readRoleCreator(s.target);
  if (!creator.superuser && !creator.createrole) {
    add('blocker', 'roles.copy-privilege', `target role ${creator.name}`, `roles: copy creates ${listed}, but this role has neither SUPERUSER nor CREATEROLE`, 'connect to the target as a role with CREATEROLE (RDS: the master user), or create the roles by hand');
    return report;
  }
  const attrs = await readRoleAttributes(s.source, names);
  const dropped = attrs.map((a) => ({ role: a.name, dropped: planRoleCopy(a, creator).dropped })).filter((x) => x.dropped.length);
  add('info', 'roles.copy', `role${names.length > 1 ? 's' : ''} ${listed}`, `created on the target by the full load (roles: copy), with their memberships and settings`);
  for (const d of dropped) add('warning', 'roles.attributes-dropped', `role ${d.role}`, `copied without ${d.dropped.join(', ')}: the target's role may not give ${d.dropped.length > 1 ? 'them' : 'it'}`, 'grant what the application needs by hand after the load');
  if (!(await passwordsReadable(s.source))) {
    const logins = attrs.filter((a) => a.login).map((a) => a.name);
    if (logins.length) add('warning', 'roles.no-password', `role${logins.length > 1 ? 's' : ''} ${logins.join(', ')}`, 'the source does not expose password hashes (pg_authid is not readable), so these login roles are created without a password', `set their passwords on the target (ALTER ROLE … PASSWORD) before the application connects there`);
  }
  return report;
}

type Add = (severity: Severity, code: string, object: string, message: string, fix?: string) => void;

function checkSourceSettings(src: ServerFacts, label: string, groups: number, native: boolean, plugin: string, add: Add) {
  const st = src.settings;
  const decoding = logicalDecodingProblem(st, src.isRds);
  if (decoding) add('blocker', decoding.code, label, decoding.message, decoding.fix);
  const freeSlots = Number(st.max_replication_slots) - src.slotsUsed;
  if (freeSlots < groups) add('blocker', 'source.slots', label, `${groups} replication slot(s) needed, ${freeSlots} free of max_replication_slots ${st.max_replication_slots}`, 'raise max_replication_slots (restart) or drop unused slots');
  const freeSenders = Number(st.max_wal_senders) - src.walSendersUsed;
  if (freeSenders < groups) add('blocker', 'source.wal_senders', label, `${groups} WAL sender(s) needed, ${freeSenders} free of max_wal_senders ${st.max_wal_senders}`, 'raise max_wal_senders (restart)');
  const timeout = parseDurationMs(st.wal_sender_timeout);
  if (timeout !== null && timeout > 0 && timeout < 10_000) {
    add('warning', 'source.wal_sender_timeout', label, `wal_sender_timeout is ${st.wal_sender_timeout}: busy apply can be cut off`, 'set wal_sender_timeout to at least 10s');
  }
  const workMem = st.logical_decoding_work_mem ? parseSize(st.logical_decoding_work_mem.replace(/B$/, 'B')) : undefined;
  if (workMem !== undefined && workMem < 64 * 1024 * 1024) {
    add('info', 'source.logical_decoding_work_mem', label, `logical_decoding_work_mem is ${st.logical_decoding_work_mem}: larger transactions spill to disk while decoding`, 'raise it (for example 256MB) if large transactions are common');
  }
  if (!native && plugin === 'pglogical' && st.shared_preload_libraries !== null && !st.shared_preload_libraries.split(',').map((x) => x.trim()).includes('pglogical')) {
    add('blocker', 'source.pglogical', label, 'the DMS plugin is pglogical but shared_preload_libraries does not load it', "add pglogical to shared_preload_libraries and restart (or use plugin: test_decoding)");
  }
}

function checkPrivileges(src: ServerFacts, tgt: ServerFacts, ctx: PhaseContext, native: boolean, groups: number, add: Add) {
  for (const f of privilegeFindings(src.role, tgt.role, majorOf(tgt.versionNum), native ? 'native' : 'dms')) add('blocker', f.code, f.object, f.message, f.fix);
  const ddl = ddlMode(ctx.plan);
  if (ddl !== 'off' && !src.role.superuser && !src.role.rdsSuperuser) {
    add(
      'blocker',
      'source.privilege.event-trigger',
      `role ${src.role.name}`,
      `cdc.ddl: ${ddl} installs an event trigger on the source, which needs superuser (RDS: rds_superuser)`,
      `connect as a superuser (on RDS: GRANT rds_superuser TO ${src.role.name}), or set cdc.ddl: off (a schema change then stops the stream until applied on the target)`,
    );
  }
  if (native) {
    const workers = Number(tgt.settings.max_logical_replication_workers);
    if (workers < groups) add('blocker', 'target.workers', ctx.target.label, `${groups} apply worker(s) needed, max_logical_replication_workers is ${workers}`, 'raise max_logical_replication_workers (and max_worker_processes) and restart the target');
  }
}

function checkRelation(t: RelationFacts, name: string, group: string | null, plan: PhaseContext['plan'], add: Add) {
  const engine = plan.cdc.engine;
  const plugin = plan.cdc.dms.plugin;
  if (t.kind === 'f') return add('info', 'table.foreign', name, 'foreign table: its definition is migrated, its data stays where it is', 'create the foreign server and user mapping on the target');
  if (t.kind === 'm') return add('info', 'table.matview', name, 'materialized view: not replicated; pgshift refreshes it at the end of the full load', `REFRESH MATERIALIZED VIEW ${name} on the target after the cut-over`);
  // Unlogged tables have their findings from the plan's decision; one made logged is checked as a table.
  if (t.persistence === 'u' && (plan.unlogged.mode !== 'make-logged' || plan.unlogged.skip.some((p) => matchesPattern(t, p)))) return;
  if (t.kind === 'p') return add('info', 'table.partitioned', name, 'partitioned table: its partitions are copied and published one by one (DMS must select the leaves, not the parent)');
  if (!t.canSelect) add('blocker', 'table.privilege.select', name, 'the source role cannot read it', `GRANT SELECT ON ${name} TO the source role`);
  if (group === null) add('warning', 'table.unassigned', name, 'in no group: it will not be migrated', 'add it to a group (or a catch-all pattern) in the plan');
  if (engine === 'native' && !t.ownedByMe) add('blocker', 'table.privilege.owner', name, `owned by ${t.owner}: only the owner or a superuser can publish it`, 'run pgshift as a superuser (RDS: rds_superuser) or as the owner');
  const identity = { ...t, identityIndexValid: t.replicaIdentityIndex !== null };
  if (engine === 'native' && group !== null && fullIdentityWithoutEquality(identity, plan.cdc.replicaIdentityFull)) {
    const cols = t.noEqualityColumns.map((c) => `${c.name} (${c.type})`).join(', ');
    add(
      'blocker',
      'table.identity-no-equality',
      name,
      `no key, so the target matches an UPDATE or DELETE by every column (REPLICA IDENTITY FULL), and ${cols} ${t.noEqualityColumns.length > 1 ? 'have' : 'has'} no equality operator: the stream would stop at the first one`,
      `add a primary key, or a unique index on NOT NULL columns and ALTER TABLE ${name} REPLICA IDENTITY USING INDEX it${t.noEqualityColumns.some((c) => c.type === 'json') ? ', or change the json column(s) to jsonb' : ''}`,
    );
  }
  const problem = identityProblem(identity);
  const publishing = group === null ? undefined : planPublishing([identity], engine, plan.cdc.replicaIdentityFull);
  if (problem && publishing?.setFull.length) {
    add('info', 'table.replica-identity-consent', name, `${IDENTITY_PROBLEM_TEXT[problem]}: pgshift sets REPLICA IDENTITY FULL before publishing it (cdc.replicaIdentityFull)`);
  } else if (problem === 'nothing') {
    add('blocker', 'table.replica-identity-nothing', name, 'REPLICA IDENTITY NOTHING: UPDATE and DELETE fail on the source once it is published', `on the source, run ALTER TABLE ${name} REPLICA IDENTITY DEFAULT (with a primary key) or FULL, or list it under cdc.replicaIdentityFull`);
  } else if (problem && engine === 'dms') {
    // DMS publishes nothing on the source, so the application's writes are safe; but its tasks
    // carry only the inserts of such a table, which is right for an insert-only table alone.
    add('warning', 'table.no-key', name, `${IDENTITY_PROBLEM_TEXT[problem]}: DMS carries its inserts but not its UPDATE and DELETE`, `add a primary key unless the table is insert-only (verify finds any row that differs)`);
  } else if (problem) {
    const idx = t.uniqueNotNullIndexes[0];
    add('blocker', 'table.no-key', name, `${IDENTITY_PROBLEM_TEXT[problem]}: UPDATE and DELETE fail on the source once it is published`,
      idx ? `on the source, run ALTER TABLE ${name} REPLICA IDENTITY USING INDEX ${idx} (or add a primary key)` : `add a primary key, ALTER TABLE ${name} REPLICA IDENTITY FULL, or list it under cdc.replicaIdentityFull for pgshift to do that`);
  } else if (t.replicaIdentity === 'f') {
    if (engine === 'dms' && plugin === 'pglogical') add('blocker', 'table.replica-identity-full', name, 'REPLICA IDENTITY FULL without a key is not supported by DMS with pglogical', 'add a primary key, or use plugin: test_decoding for this group');
    else add('warning', 'table.replica-identity-full', name, 'REPLICA IDENTITY FULL: every UPDATE and DELETE is applied by a scan unless the target has a usable index', 'add a primary key if you can');
  } else if (t.replicaIdentity === 'i') {
    add('info', 'table.replica-identity-index', name, `replica identity is the unique index ${t.replicaIdentityIndex}`);
  }
  if (engine === 'dms' && !t.hasPrimaryKey && t.arrayColumns.length) add('blocker', 'table.array-no-key', name, `ARRAY column(s) ${t.arrayColumns.join(', ')} without a primary key: DMS suspends the table`, 'add a primary key');
  if (t.generatedColumns.length) add('info', 'table.generated', name, `generated column(s) ${t.generatedColumns.join(', ')}: left out of the copy, computed by the target`);
  if (t.identityColumns.length) add('info', 'table.identity', name, `identity column(s) ${t.identityColumns.join(', ')}: values copied as they are, sequences carried at cut-over`);
  if (!t.hasStatistics) add('info', 'table.no-statistics', name, 'never analyzed: size and row estimates are unknown to the planner and to pgshift', `run ANALYZE ${name} on the source`);
}

function parseDurationMs(v: string | null | undefined): number | null {
  if (!v) return null;
  const m = /^(-?\d+)\s*(ms|s|min|h)?$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1000, min: 60000, h: 3600000 }[m[2] ?? 'ms'] ?? 1);
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
