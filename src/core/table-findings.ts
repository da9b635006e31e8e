import { finding, type Finding } from './assess-findings.js';
import { describeEmptyGroup, describeUnmatched, matchesPattern, type GroupAssignment } from './groups.js';
import { displayName, type QualifiedName } from './ident.js';
import type { LobAdvice } from './lob.js';
import { fullIdentityWithoutEquality, IDENTITY_PROBLEM_TEXT, identityProblem, planPublishing } from './replica-identity.js';
import { formatBytes } from './size.js';
import { undecidedFix, type UnloggedDecision, type UnloggedSetting } from './unlogged.js';

/**
 * What assess finds on the source's tables and sequences, as rules over facts already read: how
 * each can be migrated (key, replica identity, kind, privileges), what the plan does with it
 * (groups, unlogged), and what would be lost on the way (LOB truncation, a sequence near its end).
 */

/** Per table, the facts that decide how it can be migrated (src/pg/inventory.ts reads them). */
export interface RelationFacts {
  schema: string;
  name: string;
  oid: number;
  kind: 'r' | 'p' | 'f' | 'm' | 'v';
  persistence: 'p' | 'u' | 't';
  isPartition: boolean;
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  hasPrimaryKey: boolean;
  /** The primary key is DEFERRABLE (no replica identity). */
  primaryKeyDeferrable: boolean;
  /** Unique indexes (not the primary key, not deferrable) whose columns are all NOT NULL: candidates for REPLICA IDENTITY USING INDEX. */
  uniqueNotNullIndexes: string[];
  /** Unique indexes and constraints other than the primary key (batch apply conflicts). */
  otherUniqueIndexes: number;
  replicaIdentityIndex: string | null;
  generatedColumns: string[];
  identityColumns: string[];
  arrayColumns: string[];
  lobColumns: Array<{ name: string; type: string }>;
  /** Columns whose type (or array element, or domain's base) has no default btree or hash equality: json, xml, point… */
  noEqualityColumns: Array<{ name: string; type: string }>;
  /** Estimated size from the statistics (relpages, TOAST included), bytes. */
  estimatedBytes: number;
  /** Actual size on disk, bytes. */
  bytes: number;
  rowEstimate: number;
  hasStatistics: boolean;
  owner: string;
  ownedByMe: boolean;
  canSelect: boolean;
  /** Row-level security: off, enabled (the owner is exempt) or forced (the owner too is subject to it). */
  rowSecurity: 'off' | 'enabled' | 'forced';
  /** Created WITH OIDS (before PostgreSQL 12): a hidden oid column no target has. */
  withOids: boolean;
  /** Indexes (a primary key, a unique index) on that oid column. */
  oidIndexes: string[];
}

export interface SequenceFacts {
  schema: string;
  name: string;
  dataType: string;
  maxValue: bigint;
  lastValue: bigint | null;
  ownedBy: string | null;
}

/** The plan's values, and the role pgshift reads the source as, that the table rules need. */
export interface TableRuleOptions {
  /** The source role the copy and verify read as: superuser and BYPASSRLS skip every policy. */
  reader: { name: string; bypassRowSecurity: boolean };
  engine: 'native' | 'dms';
  /** The DMS plugin (cdc.dms.plugin). */
  plugin: string;
  /** cdc.replicaIdentityFull: the tables pgshift may set to REPLICA IDENTITY FULL. */
  replicaIdentityFull: string[];
  unlogged: UnloggedSetting;
}

/** One table's findings; `group` is the group that takes it (null: none). */
export function relationFindings(t: RelationFacts, group: string | null, o: TableRuleOptions): Finding[] {
  const name = displayName(t);
  if (t.kind === 'f') return [finding('info', 'table.foreign', name, 'foreign table: its definition is migrated, its data stays where it is', 'create the foreign server and user mapping on the target')];
  if (t.kind === 'm') return [finding('info', 'table.matview', name, 'materialized view: not replicated; pgshift refreshes it at the end of the full load', `REFRESH MATERIALIZED VIEW ${name} on the target after the cut-over`)];
  // Unlogged tables have their findings from the plan's decision; one made logged is checked as a table.
  if (t.persistence === 'u' && (o.unlogged.mode !== 'make-logged' || o.unlogged.skip.some((p) => matchesPattern(t, p)))) return [];
  if (t.kind === 'p') return [finding('info', 'table.partitioned', name, 'partitioned table: its partitions are copied and published one by one (DMS must select the leaves, not the parent)')];
  const out: Finding[] = [];
  if (!t.canSelect) out.push(finding('blocker', 'table.privilege.select', name, 'the source role cannot read it', `GRANT SELECT ON ${name} TO the source role`));
  if (group === null) out.push(finding('warning', 'table.unassigned', name, 'in no group: it will not be migrated', 'add it to a group (or a catch-all pattern) in the plan'));
  if (o.engine === 'native' && !t.ownedByMe) out.push(finding('blocker', 'table.privilege.owner', name, `owned by ${t.owner}: only the owner or a superuser can publish it`, 'run pgshift as a superuser (RDS: rds_superuser) or as the owner'));
  const hidden = rowSecurityFinding(t, name, o.reader);
  if (hidden) out.push(hidden);
  out.push(...withOidsFindings(t, name));
  out.push(...identityFindings(t, name, group, o));
  if (o.engine === 'dms' && !t.hasPrimaryKey && t.arrayColumns.length) out.push(finding('blocker', 'table.array-no-key', name, `ARRAY column(s) ${t.arrayColumns.join(', ')} without a primary key: DMS suspends the table`, 'add a primary key'));
  if (t.generatedColumns.length) out.push(finding('info', 'table.generated', name, `generated column(s) ${t.generatedColumns.join(', ')}: left out of the copy, computed by the target`));
  if (t.identityColumns.length) out.push(finding('info', 'table.identity', name, `identity column(s) ${t.identityColumns.join(', ')}: values copied as they are, sequences carried at cut-over`));
  if (!t.hasStatistics) out.push(finding('info', 'table.no-statistics', name, 'never analyzed: size and row estimates are unknown to the planner and to pgshift', `run ANALYZE ${name} on the source`));
  return out;
}

/**
 * Row-level security filters what a role reads without an error: a COPY under a policy copies the
 * rows the policy lets through, and verify, reading both sides under policies, can agree on the
 * same loss. Refused when the policies apply to the reading role (pgshift's sessions also set
 * row_security = off, which turns such a read into an error instead of a short answer).
 */
function rowSecurityFinding(t: RelationFacts, name: string, reader: TableRuleOptions['reader']): Finding | undefined {
  if (t.rowSecurity === 'off' || reader.bypassRowSecurity) return undefined;
  if (t.rowSecurity === 'enabled' && t.ownedByMe) return undefined;
  const why = t.rowSecurity === 'forced' ? 'row-level security is forced on it (its owner too is subject to the policies)' : `row-level security is enabled on it and ${reader.name} does not own it`;
  return finding(
    'blocker',
    'table.row-security',
    name,
    `${why}: the policies could hide rows from ${reader.name}, and the copy would leave them out`,
    `as a superuser, ALTER ROLE ${reader.name} BYPASSRLS for the migration (or connect as a superuser)${t.rowSecurity === 'forced' ? `; or, as its owner, ALTER TABLE ${name} NO FORCE ROW LEVEL SECURITY until the cut-over` : ''}`,
  );
}

/**
 * PostgreSQL 12 removed WITH OIDS: the target's table has no oid column, so the values in it stay
 * behind (pg_dump says so and dumps the table without), and an index on it cannot be created.
 */
function withOidsFindings(t: RelationFacts, name: string): Finding[] {
  if (!t.withOids) return [];
  const keep = `ALTER TABLE ${name} ADD COLUMN row_oid oid; UPDATE ${name} SET row_oid = oid`;
  if (t.oidIndexes.length) {
    return [
      finding(
        'blocker',
        'table.with-oids-index',
        name,
        `created WITH OIDS, and ${t.oidIndexes.join(', ')} ${t.oidIndexes.length > 1 ? 'are indexes' : 'is an index'} on its oid column, which PostgreSQL 12 removed: the target cannot create ${t.oidIndexes.length > 1 ? 'them' : 'it'}`,
        `on the source, move the values to a real column (${keep}), index that instead, then ALTER TABLE ${name} SET WITHOUT OIDS`,
      ),
    ];
  }
  return [finding('warning', 'table.with-oids', name, 'created WITH OIDS: its hidden oid column does not exist from PostgreSQL 12 on, so its values are not carried and a query that reads them fails on the target', `if the application reads them, keep them in a real column first (${keep})`)];
}

/** How UPDATE and DELETE of the table reach the target: its key, replica identity, and the engine that carries them. */
function identityFindings(t: RelationFacts, name: string, group: string | null, o: TableRuleOptions): Finding[] {
  const out: Finding[] = [];
  const identity = { ...t, identityIndexValid: t.replicaIdentityIndex !== null };
  if (o.engine === 'native' && group !== null && fullIdentityWithoutEquality(identity, o.replicaIdentityFull)) {
    const cols = t.noEqualityColumns.map((c) => `${c.name} (${c.type})`).join(', ');
    out.push(
      finding(
        'blocker',
        'table.identity-no-equality',
        name,
        `no key, so the target matches an UPDATE or DELETE by every column (REPLICA IDENTITY FULL), and ${cols} ${t.noEqualityColumns.length > 1 ? 'have' : 'has'} no equality operator: the stream would stop at the first one`,
        `add a primary key, or a unique index on NOT NULL columns and ALTER TABLE ${name} REPLICA IDENTITY USING INDEX it${t.noEqualityColumns.some((c) => c.type === 'json') ? ', or change the json column(s) to jsonb' : ''}`,
      ),
    );
  }
  const problem = identityProblem(identity);
  const publishing = group === null ? undefined : planPublishing([identity], o.engine, o.replicaIdentityFull);
  if (problem && publishing?.setFull.length) {
    out.push(finding('info', 'table.replica-identity-consent', name, `${IDENTITY_PROBLEM_TEXT[problem]}: pgshift sets REPLICA IDENTITY FULL before publishing it (cdc.replicaIdentityFull)`));
  } else if (problem === 'nothing') {
    out.push(finding('blocker', 'table.replica-identity-nothing', name, 'REPLICA IDENTITY NOTHING: UPDATE and DELETE fail on the source once it is published', `on the source, run ALTER TABLE ${name} REPLICA IDENTITY DEFAULT (with a primary key) or FULL, or list it under cdc.replicaIdentityFull`));
  } else if (problem && o.engine === 'dms') {
    // DMS publishes nothing on the source, so the application's writes are safe; but its tasks
    // carry only the inserts of such a table, which is right for an insert-only table alone.
    out.push(finding('warning', 'table.no-key', name, `${IDENTITY_PROBLEM_TEXT[problem]}: DMS carries its inserts but not its UPDATE and DELETE`, `add a primary key unless the table is insert-only (verify finds any row that differs)`));
  } else if (problem) {
    const idx = t.uniqueNotNullIndexes[0];
    out.push(
      finding(
        'blocker',
        'table.no-key',
        name,
        `${IDENTITY_PROBLEM_TEXT[problem]}: UPDATE and DELETE fail on the source once it is published`,
        idx
          ? `on the source, run ALTER TABLE ${name} REPLICA IDENTITY USING INDEX ${idx} (or ${problem === 'deferrable-key' ? 'make the primary key NOT DEFERRABLE' : 'add a primary key'})`
          : `${problem === 'deferrable-key' ? 'make the primary key NOT DEFERRABLE' : 'add a primary key'}, ALTER TABLE ${name} REPLICA IDENTITY FULL, or list it under cdc.replicaIdentityFull for pgshift to do that`,
      ),
    );
  } else if (t.replicaIdentity === 'f') {
    if (o.engine === 'dms' && o.plugin === 'pglogical') out.push(finding('blocker', 'table.replica-identity-full', name, 'REPLICA IDENTITY FULL without a key is not supported by DMS with pglogical', 'add a primary key, or use plugin: test_decoding for this group'));
    else out.push(finding('warning', 'table.replica-identity-full', name, 'REPLICA IDENTITY FULL: every UPDATE and DELETE is applied by a scan unless the target has a usable index', 'add a primary key if you can'));
  } else if (t.replicaIdentity === 'i') {
    out.push(finding('info', 'table.replica-identity-index', name, `replica identity is the unique index ${t.replicaIdentityIndex}`));
  }
  return out;
}

/** What the plan's decision does to each unlogged table (unlogged.ts decides): never lost silently. */
export function unloggedFindings<T extends QualifiedName & { bytes: number }>(d: UnloggedDecision<T>): Finding[] {
  const out: Finding[] = [];
  if (d.undecided.length) {
    const { message, fix } = undecidedFix(d.undecided);
    out.push(finding('blocker', 'unlogged.undecided', d.undecided.map(displayName).join(', '), message, fix));
  }
  for (const t of d.copyAtCutover) out.push(finding('info', 'table.unlogged', displayName(t), `unlogged table (${formatBytes(t.bytes)}): copied inside the cut-over window, writes fenced (unlogged.mode: copy-at-cutover) — its copy time adds to the window`));
  for (const t of d.makeLogged) out.push(finding('warning', 'table.unlogged', displayName(t), `unlogged table: pgshift runs ALTER TABLE … SET LOGGED on the source before the load (unlogged.mode: make-logged), rewriting its ${formatBytes(t.bytes)} under an exclusive lock`));
  for (const t of d.skipped) out.push(finding('info', 'table.unlogged', displayName(t), 'unlogged table: left empty on the target, as unlogged.skip says'));
  for (const p of d.unmatchedSkip) out.push(finding('warning', 'unlogged.skip', p, 'unlogged.skip names no unlogged table of the source', 'correct the name, or remove it from unlogged.skip'));
  return out;
}

/** Patterns that gave their group nothing, and groups left with no table that holds rows (only partitioned parents). */
export function groupAssignmentFindings<T extends QualifiedName & { kind: string }>(a: GroupAssignment<T>): Finding[] {
  const out: Finding[] = [];
  for (const u of a.unmatched) {
    const { message, fix } = describeUnmatched(u);
    out.push(finding('warning', 'group.pattern', `group ${u.group}`, message, fix));
  }
  for (const [g, list] of a.groups) {
    if (list.some((t) => t.kind === 'r')) continue;
    const { message, fix } = describeEmptyGroup(g, a.unmatched);
    out.push(finding('blocker', 'group.empty', `group ${g}`, message, fix));
  }
  return out;
}

/** Sequences owned by no column (still carried), and sequences at 80% of their maximum or more. */
export function sequenceFindings(sequences: readonly SequenceFacts[]): Finding[] {
  const out: Finding[] = [];
  for (const q of sequences) {
    const name = displayName(q);
    if (!q.ownedBy) out.push(finding('info', 'sequence.unowned', name, 'owned by no column: pgshift still carries its value at cut-over', undefined));
    if (q.lastValue !== null && q.maxValue > 0n && q.lastValue * 10n >= q.maxValue * 8n) {
      const pct = Number((q.lastValue * 1000n) / q.maxValue) / 10;
      out.push(finding('warning', 'sequence.near-limit', name, `${q.dataType} sequence at ${pct}% of its maximum ${q.maxValue}`, `widen it before it runs out: ALTER SEQUENCE ${name} AS bigint, and the column too`));
    }
  }
  return out;
}

/**
 * A DMS task truncates LOB values above its limit: the table's largest value (exact, or the
 * largest of a sample) says whether it needs a limit of its own, or unlimited LOB mode. The
 * native engine carries values whole.
 */
export function lobTruncationFindings(table: string, lob: LobAdvice & { exact: boolean; samplePercent: number }, taskLimitKb: number, engine: 'native' | 'dms'): Finding[] {
  if (engine === 'native' || !lob.truncatedAtTaskLimit) return [];
  const where = lob.exact ? 'exact' : `largest in a ${lob.samplePercent.toFixed(2)}% sample`;
  const unlimited = lob.mode === 'unlimited';
  return [
    finding(
      unlimited ? 'warning' : 'info',
      'lob.truncation',
      table,
      `largest LOB value ${formatBytes(lob.maxBytes)} (${where}) would be truncated at the task limit of ${taskLimitKb} KB`,
      unlimited ? 'use lobMode: unlimited for this table (no truncation)' : `use lobMaxSizeKb: ${lob.limitKb} for this table`,
    ),
  ];
}
