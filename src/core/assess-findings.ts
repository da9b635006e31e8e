import { acceptsNewer, chooseExtensionVersion, compareVersions, SOURCE_ONLY_EXTENSIONS, type AcceptNewer, type VersionChoice } from './extensions.js';
import { quoteIdent } from './ident.js';
import { privilegeFindings, type RoleFacts } from './privileges.js';
import { describeNeeds, planRoleCopy, type MissingRole, type RoleAttributes, type RoleCreator } from './roles.js';
import { formatBytes, parseSize } from './size.js';
import { logicalDecodingProblem } from './source-rules.js';

/**
 * What assess finds on the two servers, as rules over facts already read: each finding names the
 * object, why it matters and the fix. The phases that act (full load, CDC) refuse on the same
 * blockers, so one rule decides both the report and the refusal. Table findings are in
 * table-findings.ts.
 */
export type Severity = 'blocker' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  code: string;
  object: string;
  message: string;
  fix?: string;
}

export function finding(severity: Severity, code: string, object: string, message: string, fix?: string): Finding {
  return { severity, code, object, message, fix };
}

const SEVERITY_ORDER: Record<Severity, number> = { blocker: 0, warning: 1, info: 2 };

/** Blockers first, then warnings, then the rest; within a severity the order they were found in. */
export function bySeverity(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}

/** What assess reads from each server (src/pg/inventory.ts reads it). */
export interface ServerFacts {
  versionNum: number;
  version: string;
  settings: Record<string, string | null>;
  isRds: boolean;
  role: RoleFacts;
  slotsUsed: number;
  walSendersUsed: number;
  longTransactions: Array<{ pid: number; seconds: number; application: string; user: string; state: string }>;
  preparedTransactions: Array<{ gid: string; seconds: number }>;
  extensions: Array<{ name: string; version: string }>;
  /**
   * What the server could install, or why it cannot say: listing it reads every extension's
   * control file, and one unreadable file (a half-installed package) fails the whole view.
   */
  availableExtensions: Map<string, { defaultVersion: string | null; versions: string[] }> | { error: string };
  eventTriggers: Array<{ name: string; event: string; enabled: string }>;
  largeObjects: number;
  database: string;
  /** A schema of the control schema's name (pgshift): none, pgshift's own, or somebody else's. */
  controlSchema: 'absent' | 'pgshift' | 'foreign';
}

/** The plan's values the server rules need, and what the run needs of the servers. */
export interface ServerRuleOptions {
  sourceLabel: string;
  targetLabel: string;
  sourceMajor: number;
  targetMajor: number;
  /** Replication slots and WAL senders the run needs on the source: one per stream. */
  streamsNeeded: number;
  /** The plan's groups: one apply worker each on a native target. */
  groups: number;
  engine: 'native' | 'dms';
  /** The DMS plugin (cdc.dms.plugin). */
  plugin: string;
  /** cdc.ddl as the plan resolves it ('off' installs no event trigger). */
  ddl: string;
}

/** The servers' versions, settings, the roles pgshift connects as, and transactions a slot would wait for. */
export function serverFindings(src: ServerFacts, tgt: ServerFacts, o: ServerRuleOptions): Finding[] {
  const out: Finding[] = [];
  if (o.targetMajor < o.sourceMajor) out.push(finding('blocker', 'target.version', o.targetLabel, `target PostgreSQL ${o.targetMajor} is older than the source's ${o.sourceMajor}`, 'migrate to the same or a newer major'));
  out.push(...sourceSettingFindings(src, o), ...accessFindings(src, tgt, o));
  for (const t of src.longTransactions) {
    out.push(finding('warning', 'source.long-transaction', `pid ${t.pid} (${t.user}${t.application ? `, ${t.application}` : ''})`, `transaction open for ${t.seconds} s (${t.state}): creating a replication slot waits until it ends`, 'end it before the full load, or wait'));
  }
  for (const p of src.preparedTransactions) {
    out.push(finding('blocker', 'source.prepared-transaction', `prepared transaction ${p.gid}`, `prepared ${p.seconds} s ago: slot creation waits for it`, `finish it on the source: COMMIT PREPARED or ROLLBACK PREPARED '${p.gid}'`));
  }
  return out;
}

/** Objects on the servers that the migration does not carry as they are: event triggers, large objects. */
export function serverObjectFindings(src: ServerFacts, tgt: ServerFacts): Finding[] {
  const out: Finding[] = [];
  for (const [side, facts] of [['source', src], ['target', tgt]] as const) {
    if (facts.controlSchema !== 'foreign') continue;
    out.push(
      finding(
        'blocker',
        'control-schema.foreign',
        `schema pgshift (${side})`,
        `the ${side} has a schema named pgshift that pgshift did not make: pgshift keeps its own state under that name, never migrates what is in it, and drops it at teardown`,
        'rename that schema (ALTER SCHEMA pgshift RENAME TO …, and what refers to it), then run pgshift again',
      ),
    );
  }
  // pgshift's own DDL capture triggers are the migration's, not the application's.
  for (const t of src.eventTriggers.filter((x) => !x.name.startsWith('pgshift_ddl'))) {
    out.push(finding('warning', 'source.event-trigger', `event trigger ${t.name}`, `DDL event trigger on ${t.event} (enabled: ${t.enabled}) on the source: DDL it runs itself is not carried, and DMS fails with ENABLE ALWAYS triggers`, 'disable it for the migration window if it writes'));
  }
  for (const t of tgt.eventTriggers) out.push(finding('warning', 'target.event-trigger', `event trigger ${t.name}`, `DDL event trigger on the target fires during the schema restore`, 'disable it during the full load'));
  if (src.largeObjects > 0) {
    out.push(
      finding(
        'warning',
        'source.large-objects',
        `${src.largeObjects} large object(s)`,
        'large objects (pg_largeobject) are copied by the full load but not replicated: the cut-over carries the ones changed since once the source is sealed, reading every one on both sides to find them (its time adds to the window); verify reports them until then',
        'move them to bytea columns if there are many, to keep the window short',
      ),
    );
  }
  return out;
}

/** The pg_dump found (or why none was), against the source's major. */
export function pgDumpFindings(dump: { path: string; major: number } | { error: string }, sourceMajor: number): Finding[] {
  if ('error' in dump) return [finding('blocker', 'tool.pg_dump', 'pg_dump', dump.error, 'install the PostgreSQL client tools')];
  if (dump.major < sourceMajor) return [finding('blocker', 'tool.pg_dump', dump.path, `pg_dump ${dump.major} cannot dump a PostgreSQL ${sourceMajor} source`, `install PostgreSQL ${sourceMajor} client tools and set fullLoad.pgBinDir`)];
  return [];
}

/** The source's settings for logical decoding: wal_level, free slots and senders, timeouts, the DMS plugin. */
export function sourceSettingFindings(src: ServerFacts, o: Pick<ServerRuleOptions, 'sourceLabel' | 'streamsNeeded' | 'engine' | 'plugin'>): Finding[] {
  const out: Finding[] = [];
  const st = src.settings;
  const label = o.sourceLabel;
  const needed = o.streamsNeeded;
  const decoding = logicalDecodingProblem(st, src.isRds);
  if (decoding) out.push(finding('blocker', decoding.code, label, decoding.message, decoding.fix));
  const freeSlots = Number(st.max_replication_slots) - src.slotsUsed;
  if (freeSlots < needed) out.push(finding('blocker', 'source.slots', label, `${needed} replication slot(s) needed, ${freeSlots} free of max_replication_slots ${st.max_replication_slots}`, 'raise max_replication_slots (restart) or drop unused slots'));
  const freeSenders = Number(st.max_wal_senders) - src.walSendersUsed;
  if (freeSenders < needed) out.push(finding('blocker', 'source.wal_senders', label, `${needed} WAL sender(s) needed, ${freeSenders} free of max_wal_senders ${st.max_wal_senders}`, 'raise max_wal_senders (restart)'));
  const timeout = parseDurationMs(st.wal_sender_timeout);
  // 0 disables the timeout; under 10 s a busy apply worker can miss its reply and be cut off.
  if (timeout !== null && timeout > 0 && timeout < 10_000) {
    out.push(finding('warning', 'source.wal_sender_timeout', label, `wal_sender_timeout is ${st.wal_sender_timeout}: busy apply can be cut off`, 'set wal_sender_timeout to at least 10s'));
  }
  const workMem = st.logical_decoding_work_mem ? parseSize(st.logical_decoding_work_mem) : undefined;
  if (workMem !== undefined && workMem < 64 * 1024 * 1024) {
    out.push(finding('info', 'source.logical_decoding_work_mem', label, `logical_decoding_work_mem is ${st.logical_decoding_work_mem}: larger transactions spill to disk while decoding`, 'raise it (for example 256MB) if large transactions are common'));
  }
  // shared_preload_libraries is null when this role may not read it: unknown is not a blocker.
  const preloads = st.shared_preload_libraries?.split(',').map((x) => x.trim());
  if (o.engine !== 'native' && o.plugin === 'pglogical' && preloads !== undefined && !preloads.includes('pglogical')) {
    out.push(finding('blocker', 'source.pglogical', label, 'the DMS plugin is pglogical but shared_preload_libraries does not load it', 'add pglogical to shared_preload_libraries and restart (or use plugin: test_decoding)'));
  }
  return out;
}

/** What the roles pgshift connects as may do, and the target's apply workers for a native stream. */
export function accessFindings(src: ServerFacts, tgt: ServerFacts, o: Pick<ServerRuleOptions, 'targetLabel' | 'targetMajor' | 'engine' | 'ddl' | 'groups'>): Finding[] {
  const out = privilegeFindings(src.role, tgt.role, o.targetMajor, o.engine).map((f) => finding('blocker', f.code, f.object, f.message, f.fix));
  if (o.ddl !== 'off' && !src.role.superuser && !src.role.rdsSuperuser) {
    out.push(
      finding(
        'blocker',
        'source.privilege.event-trigger',
        `role ${src.role.name}`,
        `cdc.ddl: ${o.ddl} installs an event trigger on the source, which needs superuser (RDS: rds_superuser)`,
        `connect as a superuser (on RDS: GRANT rds_superuser TO ${src.role.name}), or set cdc.ddl: off (a schema change then stops the stream until applied on the target)`,
      ),
    );
  }
  if (o.engine === 'native') {
    const workers = Number(tgt.settings.max_logical_replication_workers);
    if (workers < o.groups) out.push(finding('blocker', 'target.workers', o.targetLabel, `${o.groups} apply worker(s) needed, max_logical_replication_workers is ${workers}`, 'raise max_logical_replication_workers (and max_worker_processes) and restart the target'));
  }
  return out;
}

/** A PostgreSQL duration setting (wal_sender_timeout: "60s", "500ms", "1min", a bare number of ms) in ms; null when unreadable. */
export function parseDurationMs(v: string | null | undefined): number | null {
  if (!v) return null;
  const m = /^(-?\d+)\s*(ms|s|min|h)?$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1000, min: 60000, h: 3600000 }[m[2] ?? 'ms'] ?? 1);
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

/** Each extension of the source against what the target offers (extensions.ts chooses the version). */
export function extensionFindings(src: ServerFacts, tgt: ServerFacts, accept: AcceptNewer, targetLabel: string): { findings: Finding[]; report: ExtensionReport[] } {
  const offered = tgt.availableExtensions;
  const findings: Finding[] = [];
  const mine = src.extensions.filter((x) => !SOURCE_ONLY_EXTENSIONS.includes(x.name) && x.name !== 'plpgsql');
  if (!(offered instanceof Map)) {
    const names = mine.map((e) => e.name).join(', ');
    findings.push(finding('warning', 'target.extensions-unknown', targetLabel, `cannot list the extensions the target offers (${offered.error}), so the source's (${names}) are not checked`, 'fix or remove the extension file named in the message on the target'));
    const report = mine.map((e): ExtensionReport => ({ name: e.name, source: e.version, targetDefault: null, available: null, install: null, relation: 'unknown', newerAccepted: acceptsNewer(accept, e.name) }));
    return { findings, report };
  }
  const report: ExtensionReport[] = [];
  for (const e of mine) {
    const avail = offered.get(e.name);
    const choice = chooseExtensionVersion(e.version, avail?.versions ?? []);
    const newerAccepted = acceptsNewer(accept, e.name);
    report.push({ name: e.name, source: e.version, targetDefault: avail?.defaultVersion ?? null, available: avail ? [...avail.versions].sort(compareVersions) : [], install: choice.version, relation: choice.relation, newerAccepted });
    const object = `extension ${e.name}`;
    if (!avail || choice.version === null) findings.push(finding('blocker', 'extension.missing', object, `installed on the source (${e.version}) but not available on the target`, `install ${e.name} on the target (on RDS: check rds.extensions)`));
    else if (choice.relation === 'newer' && !newerAccepted) {
      findings.push(
        finding(
          'warning',
          'extension.version',
          object,
          `the target does not offer the source's ${e.version}; the full load installs ${choice.version}, which verify and the cut-over count as a difference until the plan accepts it`,
          `read ${e.name}'s upgrade notes, then set extensions.acceptNewer: [${e.name}]`,
        ),
      );
    } else if (choice.relation === 'newer') {
      findings.push(finding('info', 'extension.version', object, `the target does not offer the source's ${e.version}; the full load installs ${choice.version} (accepted by extensions.acceptNewer)`));
    } else if (choice.relation === 'older') {
      findings.push(finding('warning', 'extension.version', object, `the target offers only older versions than the source's ${e.version}; the full load installs ${choice.version}`, `install ${e.name} ${e.version} on the target first`));
    }
  }
  return { findings, report };
}

export interface RolesReport {
  mode: 'require' | 'copy';
  missing: Array<{ role: string; neededAs: string }>;
}

/** What roles: copy works with, read when it has roles to create. */
export interface RoleCopyFacts {
  /** The role pgshift connects to the target as. */
  creator: RoleCreator & { name: string };
  /** The source's attributes of the missing roles. */
  attributes: Array<RoleAttributes & { name: string }>;
  /** Whether the source shows password hashes (pg_authid). */
  passwordsReadable: boolean;
}

/**
 * Roles the migrated objects need that the target lacks: a blocker with roles: require (the
 * schema restore would fail on the first), the plan of the copy with roles: copy.
 */
export function roleFindings(mode: 'require' | 'copy', missing: MissingRole[], copy: RoleCopyFacts | undefined): { findings: Finding[]; report: RolesReport } {
  const findings: Finding[] = [];
  const report: RolesReport = { mode, missing: missing.map((m) => ({ role: m.role, neededAs: describeNeeds(m) })) };
  if (!missing.length) return { findings, report };
  const names = missing.map((m) => m.role);
  const listed = `${names.slice(0, 10).join(', ')}${names.length > 10 ? ` and ${names.length - 10} more` : ''}`;
  const roles = `role${names.length > 1 ? 's' : ''} ${listed}`;
  if (mode === 'require') {
    findings.push(
      finding(
        'blocker',
        'roles.missing',
        roles,
        `${names.length} role(s) the migrated objects need are missing on the target: ${missing.slice(0, 5).map((m) => describeNeeds(m)).join('; ')}${missing.length > 5 ? '; …' : ''}`,
        `set roles: copy in the plan (pgshift creates them before the schema), or create them on the target first (CREATE ROLE ${quoteIdent(names[0])} …)`,
      ),
    );
    return { findings, report };
  }
  if (!copy) return { findings, report };
  const { creator, attributes } = copy;
  if (!creator.superuser && !creator.createrole) {
    findings.push(finding('blocker', 'roles.copy-privilege', `target role ${creator.name}`, `roles: copy creates ${listed}, but this role has neither SUPERUSER nor CREATEROLE`, 'connect to the target as a role with CREATEROLE (RDS: the master user), or create the roles by hand'));
    return { findings, report };
  }
  findings.push(finding('info', 'roles.copy', roles, `created on the target by the full load (roles: copy), with their memberships and settings`));
  for (const a of attributes) {
    const { dropped } = planRoleCopy(a, creator);
    if (!dropped.length) continue;
    findings.push(finding('warning', 'roles.attributes-dropped', `role ${a.name}`, `copied without ${dropped.join(', ')}: the target's role may not give ${dropped.length > 1 ? 'them' : 'it'}`, 'grant what the application needs by hand after the load'));
  }
  const logins = copy.passwordsReadable ? [] : attributes.filter((a) => a.login).map((a) => a.name);
  if (logins.length) {
    findings.push(
      finding(
        'warning',
        'roles.no-password',
        `role${logins.length > 1 ? 's' : ''} ${logins.join(', ')}`,
        'the source does not expose password hashes (pg_authid is not readable), so these login roles are created without a password',
        `set their passwords on the target (ALTER ROLE … PASSWORD) before the application connects there`,
      ),
    );
  }
  return { findings, report };
}

export interface WalHeadroom {
  /** max_slot_wal_keep_size in bytes; null when unlimited or unknown. */
  keepBytes: number | null;
  /** How long that lasts at the sampled WAL rate; null when it cannot be said. */
  headroomHours: number | null;
  findings: Finding[];
}

/**
 * Slots hold WAL through the full load: max_slot_wal_keep_size must outlast it at the current
 * WAL rate, or the slots are invalidated before the stream starts (a blocker); under twice the
 * estimate is a warning, unlimited a warning of its own (the disk fills instead).
 */
export function walHeadroom(o: { sourceLabel: string; keepSetting: string | null | undefined; bytesPerSecond: number; loadHours: number }): WalHeadroom {
  const { keepSetting, bytesPerSecond: rate, loadHours } = o;
  const keepBytes = keepSetting === null || keepSetting === undefined || keepSetting === '-1' ? null : (parseSize(keepSetting) ?? null);
  const headroomHours = keepBytes !== null && rate > 0 ? keepBytes / rate / 3600 : null;
  const findings: Finding[] = [];
  if (keepSetting === '-1') {
    findings.push(
      finding(
        'warning',
        'wal.unlimited',
        o.sourceLabel,
        `max_slot_wal_keep_size is unlimited: a stalled slot keeps WAL until the disk fills (${formatBytes(rate * 3600)} per hour at the current rate; ~${formatBytes(rate * loadHours * 3600)} during a ${loadHours.toFixed(1)} h full load)`,
        'set max_slot_wal_keep_size to what the disk can hold, and watch pgshift cdc status',
      ),
    );
  } else if (headroomHours !== null && headroomHours < loadHours) {
    findings.push(
      finding(
        'blocker',
        'wal.headroom',
        o.sourceLabel,
        `max_slot_wal_keep_size (${keepSetting}) lasts ${headroomHours.toFixed(1)} h at the current WAL rate; the full load takes about ${loadHours.toFixed(1)} h, so the slots would be invalidated`,
        'raise max_slot_wal_keep_size, or split the load into groups loaded one after another',
      ),
    );
  } else if (headroomHours !== null && headroomHours < loadHours * 2) {
    findings.push(finding('warning', 'wal.headroom', o.sourceLabel, `max_slot_wal_keep_size (${keepSetting}) lasts ${headroomHours.toFixed(1)} h at the current WAL rate, under twice the ${loadHours.toFixed(1)} h full-load estimate`, 'raise max_slot_wal_keep_size'));
  }
  return { keepBytes, headroomHours, findings };
}
