import { describe, expect, it } from 'vitest';
import {
  accessFindings,
  bySeverity,
  extensionFindings,
  finding,
  parseDurationMs,
  pgDumpFindings,
  roleFindings,
  serverFindings,
  serverObjectFindings,
  sourceSettingFindings,
  walHeadroom,
  type Finding,
  type RoleCopyFacts,
  type ServerFacts,
  type ServerRuleOptions,
} from '../../src/core/assess-findings.js';
import {
  groupAssignmentFindings,
  lobTruncationFindings,
  relationFindings,
  sequenceFindings,
  unloggedFindings,
  type RelationFacts,
  type SequenceFacts,
  type TableRuleOptions,
} from '../../src/core/table-findings.js';
import { assignGroups } from '../../src/core/groups.js';
import { lobAdvice } from '../../src/core/lob.js';
import type { MissingRole, RoleAttributes } from '../../src/core/roles.js';
import { decideUnlogged } from '../../src/core/unlogged.js';

/** A server that gives no finding: logical, room for the streams, superuser roles. */
function server(over: Partial<ServerFacts> = {}, settings: Record<string, string | null> = {}): ServerFacts {
  return {
    versionNum: 160000,
    version: '16.0',
    settings: {
      wal_level: 'logical',
      max_replication_slots: '10',
      max_wal_senders: '10',
      wal_sender_timeout: '60s',
      max_slot_wal_keep_size: '-1',
      logical_decoding_work_mem: '64MB',
      shared_preload_libraries: 'pglogical',
      'rds.logical_replication': null,
      max_logical_replication_workers: '4',
      ...settings,
    },
    isRds: false,
    role: { name: 'admin', superuser: true, replication: true, rdsSuperuser: false, bypassRowSecurity: true, createSubscription: false, createOnDatabase: true },
    slotsUsed: 0,
    walSendersUsed: 0,
    longTransactions: [],
    preparedTransactions: [],
    extensions: [],
    availableExtensions: new Map(),
    eventTriggers: [],
    largeObjects: 0,
    database: 'app',
    controlSchema: 'absent',
    ...over,
  };
}

const RULES: ServerRuleOptions = { sourceLabel: 'src', targetLabel: 'tgt', sourceMajor: 16, targetMajor: 16, streamsNeeded: 2, groups: 2, engine: 'native', plugin: 'pglogical', ddl: 'follow' };
const codes = (f: Finding[]) => f.map((x) => `${x.severity} ${x.code}`);

describe('findings: severity order', () => {
  it('blockers first, then warnings, then infos, each kept in the order found', () => {
    const found = [finding('info', 'a', 'x', 'm'), finding('warning', 'b', 'x', 'm'), finding('blocker', 'c', 'x', 'm'), finding('warning', 'd', 'x', 'm'), finding('blocker', 'e', 'x', 'm')];
    expect(bySeverity(found).map((f) => f.code)).toEqual(['c', 'e', 'b', 'd', 'a']);
    expect(found.map((f) => f.code)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('server findings', () => {
  it('two matching servers give none', () => {
    expect(serverFindings(server(), server(), RULES)).toEqual([]);
    expect(serverObjectFindings(server(), server())).toEqual([]);
  });

  it('a target older than the source is a blocker; the same or newer is not', () => {
    expect(serverFindings(server(), server(), { ...RULES, sourceMajor: 16, targetMajor: 15 })).toEqual([
      { severity: 'blocker', code: 'target.version', object: 'tgt', message: "target PostgreSQL 15 is older than the source's 16", fix: 'migrate to the same or a newer major' },
    ]);
    expect(serverFindings(server(), server(), { ...RULES, sourceMajor: 13, targetMajor: 17 })).toEqual([]);
  });

  it('long transactions warn (named by pid, user and application); prepared ones block', () => {
    const src = server({
      longTransactions: [
        { pid: 7, seconds: 90, application: 'psql', user: 'bob', state: 'idle in transaction' },
        { pid: 8, seconds: 61, application: '', user: 'eve', state: 'active' },
      ],
      preparedTransactions: [{ gid: 'tx1', seconds: 5 }],
    });
    const f = serverFindings(src, server(), RULES);
    expect(f.map((x) => x.object)).toEqual(['pid 7 (bob, psql)', 'pid 8 (eve)', 'prepared transaction tx1']);
    expect(codes(f)).toEqual(['warning source.long-transaction', 'warning source.long-transaction', 'blocker source.prepared-transaction']);
    expect(f[0].message).toBe('transaction open for 90 s (idle in transaction): creating a replication slot waits until it ends');
    expect(f[2].fix).toBe("finish it on the source: COMMIT PREPARED or ROLLBACK PREPARED 'tx1'");
  });

  it("event triggers warn on both sides, except pgshift's own; large objects warn", () => {
    const src = server({ eventTriggers: [{ name: 'pgshift_ddl_g1', event: 'ddl_command_end', enabled: 'O' }, { name: 'audit', event: 'ddl_command_end', enabled: 'A' }], largeObjects: 3 });
    const tgt = server({ eventTriggers: [{ name: 'guard', event: 'sql_drop', enabled: 'O' }] });
    const f = serverObjectFindings(src, tgt);
    expect(f.map((x) => `${x.code} ${x.object}`)).toEqual(['source.event-trigger event trigger audit', 'target.event-trigger event trigger guard', 'source.large-objects 3 large object(s)']);
    expect(f[0].message).toBe('DDL event trigger on ddl_command_end (enabled: A) on the source: DDL it runs itself is not carried, and DMS fails with ENABLE ALWAYS triggers');
    expect(f.every((x) => x.severity === 'warning')).toBe(true);
  });

  it("a schema named pgshift that pgshift did not make blocks, on either side; pgshift's own does not", () => {
    expect(serverObjectFindings(server({ controlSchema: 'pgshift' }), server({ controlSchema: 'pgshift' }))).toEqual([]);
    expect(serverObjectFindings(server({ controlSchema: 'foreign' }), server({ controlSchema: 'foreign' }))).toEqual(
      ['source', 'target'].map((side) => ({
        severity: 'blocker',
        code: 'control-schema.foreign',
        object: `schema pgshift (${side})`,
        message: `the ${side} has a schema named pgshift that pgshift did not make: pgshift keeps its own state under that name, never migrates what is in it, and drops it at teardown`,
        fix: 'rename that schema (ALTER SCHEMA pgshift RENAME TO …, and what refers to it), then run pgshift again',
      })),
    );
  });

  it('pg_dump: missing or older than the source blocks; the same or newer major does not', () => {
    expect(pgDumpFindings({ error: 'pg_dump not found at /x' }, 16)).toEqual([{ severity: 'blocker', code: 'tool.pg_dump', object: 'pg_dump', message: 'pg_dump not found at /x', fix: 'install the PostgreSQL client tools' }]);
    expect(pgDumpFindings({ path: '/bin/pg_dump', major: 15 }, 16)).toEqual([
      { severity: 'blocker', code: 'tool.pg_dump', object: '/bin/pg_dump', message: 'pg_dump 15 cannot dump a PostgreSQL 16 source', fix: 'install PostgreSQL 16 client tools and set fullLoad.pgBinDir' },
    ]);
    expect(pgDumpFindings({ path: '/bin/pg_dump', major: 16 }, 16)).toEqual([]);
    expect(pgDumpFindings({ path: '/bin/pg_dump', major: 17 }, 16)).toEqual([]);
  });
});

describe('source settings', () => {
  const settings = (s: Record<string, string | null>, over: Partial<ServerFacts> = {}, o: Partial<ServerRuleOptions> = {}) => sourceSettingFindings(server(over, s), { ...RULES, ...o });

  it('wal_level must be logical; on RDS rds.logical_replication is named instead', () => {
    expect(codes(settings({ wal_level: 'replica' }))).toEqual(['blocker source.wal_level']);
    expect(codes(settings({ wal_level: 'replica', 'rds.logical_replication': 'off' }, { isRds: true }))).toEqual(['blocker source.rds_logical_replication']);
  });

  it('free slots and WAL senders: exactly the streams needed is enough, one fewer blocks', () => {
    expect(settings({}, { slotsUsed: 8, walSendersUsed: 8 })).toEqual([]);
    expect(settings({}, { slotsUsed: 9 })).toEqual([
      { severity: 'blocker', code: 'source.slots', object: 'src', message: '2 replication slot(s) needed, 1 free of max_replication_slots 10', fix: 'raise max_replication_slots (restart) or drop unused slots' },
    ]);
    expect(settings({}, { walSendersUsed: 9 })).toEqual([{ severity: 'blocker', code: 'source.wal_senders', object: 'src', message: '2 WAL sender(s) needed, 1 free of max_wal_senders 10', fix: 'raise max_wal_senders (restart)' }]);
  });

  it('wal_sender_timeout under 10 s warns; 10 s, disabled (0) or unreadable does not', () => {
    expect(codes(settings({ wal_sender_timeout: '5s' }))).toEqual(['warning source.wal_sender_timeout']);
    expect(settings({ wal_sender_timeout: '9999' })[0].message).toBe('wal_sender_timeout is 9999: busy apply can be cut off');
    for (const ok of ['10s', '10000ms', '1min', '0', 'soon', null]) expect(settings({ wal_sender_timeout: ok })).toEqual([]);
  });

  it('logical_decoding_work_mem under 64MB is an info', () => {
    expect(codes(settings({ logical_decoding_work_mem: '32MB' }))).toEqual(['info source.logical_decoding_work_mem']);
    expect(codes(settings({ logical_decoding_work_mem: '65535kB' }))).toEqual(['info source.logical_decoding_work_mem']);
    expect(settings({ logical_decoding_work_mem: '65536kB' })).toEqual([]);
    expect(settings({ logical_decoding_work_mem: null })).toEqual([]);
  });

  it('DMS with pglogical needs it preloaded; unknown preloads, test_decoding and native need nothing', () => {
    const dms = { engine: 'dms' as const };
    expect(settings({ shared_preload_libraries: 'pg_stat_statements' }, {}, dms)).toEqual([
      {
        severity: 'blocker',
        code: 'source.pglogical',
        object: 'src',
        message: 'the DMS plugin is pglogical but shared_preload_libraries does not load it',
        fix: 'add pglogical to shared_preload_libraries and restart (or use plugin: test_decoding)',
      },
    ]);
    expect(settings({ shared_preload_libraries: 'pg_stat_statements, pglogical' }, {}, dms)).toEqual([]);
    expect(settings({ shared_preload_libraries: null }, {}, dms)).toEqual([]);
    expect(settings({ shared_preload_libraries: '' }, {}, { ...dms, plugin: 'test_decoding' })).toEqual([]);
    expect(settings({ shared_preload_libraries: '' })).toEqual([]);
  });

  it('parses PostgreSQL durations to ms (a bare number is ms)', () => {
    expect([parseDurationMs('500'), parseDurationMs('2s'), parseDurationMs('1 min'), parseDurationMs('1h'), parseDurationMs(' 30ms ')]).toEqual([500, 2000, 60000, 3600000, 30]);
    expect([parseDurationMs(''), parseDurationMs(null), parseDurationMs(undefined), parseDurationMs('1d'), parseDurationMs('1.5s')]).toEqual([null, null, null, null, null]);
  });
});

describe('access', () => {
  const plain = { name: 'app', superuser: false, replication: false, rdsSuperuser: false, bypassRowSecurity: false, createSubscription: false, createOnDatabase: true };

  it("a source role that cannot replicate, and DDL capture without superuser, block", () => {
    const f = accessFindings(server({ role: plain }), server(), { ...RULES, ddl: 'follow' });
    expect(codes(f)).toEqual(['blocker source.privilege.replication', 'blocker source.privilege.event-trigger']);
    expect(f[1]).toEqual({
      severity: 'blocker',
      code: 'source.privilege.event-trigger',
      object: 'role app',
      message: 'cdc.ddl: follow installs an event trigger on the source, which needs superuser (RDS: rds_superuser)',
      fix: 'connect as a superuser (on RDS: GRANT rds_superuser TO app), or set cdc.ddl: off (a schema change then stops the stream until applied on the target)',
    });
    expect(codes(accessFindings(server({ role: { ...plain, replication: true } }), server(), { ...RULES, ddl: 'off' }))).toEqual([]);
    expect(codes(accessFindings(server({ role: { ...plain, rdsSuperuser: true } }), server(), { ...RULES, ddl: 'detect' }))).toEqual([]);
  });

  it('a native target needs an apply worker per group: exactly enough passes, DMS needs none', () => {
    const tgt = (n: string) => server({}, { max_logical_replication_workers: n });
    expect(accessFindings(server(), tgt('2'), RULES)).toEqual([]);
    expect(accessFindings(server(), tgt('1'), RULES)).toEqual([
      { severity: 'blocker', code: 'target.workers', object: 'tgt', message: '2 apply worker(s) needed, max_logical_replication_workers is 1', fix: 'raise max_logical_replication_workers (and max_worker_processes) and restart the target' },
    ]);
    expect(accessFindings(server(), tgt('1'), { ...RULES, engine: 'dms' })).toEqual([]);
  });

  it('a target role that cannot subscribe blocks the native engine only', () => {
    const tgt = server({ role: { ...plain, name: 'tgt_user' } });
    expect(codes(accessFindings(server(), tgt, RULES))).toEqual(['blocker target.privilege.subscription']);
    expect(codes(accessFindings(server(), tgt, { ...RULES, engine: 'dms' }))).toEqual([]);
  });
});

describe('extensions', () => {
  const offered = (entries: Record<string, string[]>) => new Map(Object.entries(entries).map(([name, versions]) => [name, { defaultVersion: versions.at(-1) ?? null, versions }]));
  const check = (source: Array<[string, string]>, target: ServerFacts['availableExtensions'], accept: readonly string[] | '*' = []) =>
    extensionFindings(server({ extensions: source.map(([name, version]) => ({ name, version })) }), server({ availableExtensions: target }), accept, 'tgt');

  it("plpgsql and source-only extensions (pglogical) are not the application's", () => {
    expect(check([['plpgsql', '1.0'], ['pglogical', '2.4.4']], offered({}))).toEqual({ findings: [], report: [] });
  });

  it('the same version offered: nothing to say; the report says what is installed', () => {
    const r = check([['hstore', '1.8']], offered({ hstore: ['1.8', '1.7'] }));
    expect(r.findings).toEqual([]);
    expect(r.report).toEqual([{ name: 'hstore', source: '1.8', targetDefault: '1.7', available: ['1.7', '1.8'], install: '1.8', relation: 'same', newerAccepted: false }]);
  });

  it('missing on the target blocks', () => {
    const r = check([['postgis', '3.4.0']], offered({}));
    expect(r.findings).toEqual([
      { severity: 'blocker', code: 'extension.missing', object: 'extension postgis', message: 'installed on the source (3.4.0) but not available on the target', fix: 'install postgis on the target (on RDS: check rds.extensions)' },
    ]);
    expect(r.report[0]).toMatchObject({ install: null, relation: 'unavailable', available: [] });
  });

  it('only newer offered: a warning until the plan accepts it, then an info', () => {
    const target = offered({ citext: ['1.7', '1.6'] });
    expect(check([['citext', '1.5']], target).findings).toEqual([
      {
        severity: 'warning',
        code: 'extension.version',
        object: 'extension citext',
        message: "the target does not offer the source's 1.5; the full load installs 1.6, which verify and the cut-over count as a difference until the plan accepts it",
        fix: "read citext's upgrade notes, then set extensions.acceptNewer: [citext]",
      },
    ]);
    for (const accept of [['citext'], '*'] as const) {
      const r = check([['citext', '1.5']], target, accept);
      expect(codes(r.findings)).toEqual(['info extension.version']);
      expect(r.findings[0].message).toBe("the target does not offer the source's 1.5; the full load installs 1.6 (accepted by extensions.acceptNewer)");
      expect(r.report[0].newerAccepted).toBe(true);
    }
  });

  it('only older offered: a warning naming the version to install', () => {
    expect(check([['ltree', '1.3']], offered({ ltree: ['1.1', '1.2'] })).findings).toEqual([
      { severity: 'warning', code: 'extension.version', object: 'extension ltree', message: "the target offers only older versions than the source's 1.3; the full load installs 1.2", fix: 'install ltree 1.3 on the target first' },
    ]);
  });

  it('a target that cannot list its extensions: one warning, nothing checked', () => {
    const r = check([['hstore', '1.8'], ['citext', '1.6']], { error: 'could not open extension control file' }, ['citext']);
    expect(r.findings).toEqual([
      {
        severity: 'warning',
        code: 'target.extensions-unknown',
        object: 'tgt',
        message: "cannot list the extensions the target offers (could not open extension control file), so the source's (hstore, citext) are not checked",
        fix: 'fix or remove the extension file named in the message on the target',
      },
    ]);
    expect(r.report.map((e) => [e.name, e.relation, e.available, e.newerAccepted])).toEqual([
      ['hstore', 'unknown', null, false],
      ['citext', 'unknown', null, true],
    ]);
  });
});

describe('roles', () => {
  const missing = (...roles: string[]): MissingRole[] => roles.map((role) => ({ role, needs: [{ role, kind: 'owner', object: `table app.${role}_t` }] }));
  const attrs = (name: string, over: Partial<RoleAttributes> = {}) => ({
    name,
    superuser: false,
    inherit: true,
    createrole: false,
    createdb: false,
    login: false,
    replication: false,
    bypassrls: false,
    connectionLimit: -1,
    validUntil: null,
    ...over,
  });
  const superCreator = { name: 'admin', superuser: true, createrole: true, createdb: true, replication: true, bypassrls: true, rds: false };
  const rdsCreator = { name: 'master', superuser: false, createrole: true, createdb: true, replication: false, bypassrls: false, rds: true };
  const copyFacts = (over: Partial<RoleCopyFacts> = {}): RoleCopyFacts => ({ creator: superCreator, attributes: [], passwordsReadable: true, ...over });

  it('no role missing: no finding, the report says the mode', () => {
    expect(roleFindings('require', [], undefined)).toEqual({ findings: [], report: { mode: 'require', missing: [] } });
  });

  it('roles: require with roles missing blocks, naming them and how to create the first', () => {
    const r = roleFindings('require', missing('app_owner', 'Reader'), undefined);
    expect(r.findings).toEqual([
      {
        severity: 'blocker',
        code: 'roles.missing',
        object: 'roles app_owner, Reader',
        message: '2 role(s) the migrated objects need are missing on the target: app_owner (owner of table app.app_owner_t); Reader (owner of table app.Reader_t)',
        fix: 'set roles: copy in the plan (pgshift creates them before the schema), or create them on the target first (CREATE ROLE "app_owner" …)',
      },
    ]);
    expect(r.report.missing).toEqual([
      { role: 'app_owner', neededAs: 'app_owner (owner of table app.app_owner_t)' },
      { role: 'Reader', neededAs: 'Reader (owner of table app.Reader_t)' },
    ]);
    expect(roleFindings('require', missing('Reader'), undefined).findings[0].fix).toContain('CREATE ROLE "Reader" …');
  });

  it('many roles are shortened: ten names and "more", five needs and an ellipsis', () => {
    const names = Array.from({ length: 12 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    const [f] = roleFindings('require', missing(...names), undefined).findings;
    expect(f.object).toBe('roles r00, r01, r02, r03, r04, r05, r06, r07, r08, r09 and 2 more');
    expect(f.message).toMatch(/^12 role\(s\) .*r04 \(owner of table app\.r04_t\); …$/);
  });

  it('roles: copy by a role without CREATEROLE blocks', () => {
    const r = roleFindings('copy', missing('app_owner'), copyFacts({ creator: { ...rdsCreator, createrole: false, name: 'weak' } }));
    expect(r.findings).toEqual([
      {
        severity: 'blocker',
        code: 'roles.copy-privilege',
        object: 'target role weak',
        message: 'roles: copy creates app_owner, but this role has neither SUPERUSER nor CREATEROLE',
        fix: 'connect to the target as a role with CREATEROLE (RDS: the master user), or create the roles by hand',
      },
    ]);
    expect(r.report.mode).toBe('copy');
  });

  it('roles: copy by a superuser: one info', () => {
    expect(roleFindings('copy', missing('a', 'b'), copyFacts({ attributes: [attrs('a', { replication: true }), attrs('b')] })).findings).toEqual([
      { severity: 'info', code: 'roles.copy', object: 'roles a, b', message: 'created on the target by the full load (roles: copy), with their memberships and settings', fix: undefined },
    ]);
  });

  it('attributes the creator cannot give are dropped and said, one warning per role', () => {
    const r = roleFindings('copy', missing('a', 'b', 'c'), copyFacts({ creator: rdsCreator, attributes: [attrs('a', { replication: true }), attrs('b', { superuser: true, bypassrls: true }), attrs('c')] }));
    expect(codes(r.findings)).toEqual(['info roles.copy', 'warning roles.attributes-dropped', 'warning roles.attributes-dropped']);
    expect(r.findings[1]).toEqual({
      severity: 'warning',
      code: 'roles.attributes-dropped',
      object: 'role a',
      message: "copied without REPLICATION: the target's role may not give it",
      fix: 'grant what the application needs by hand after the load',
    });
    expect(r.findings[2].message).toBe("copied without SUPERUSER, BYPASSRLS: the target's role may not give them");
  });

  it('unreadable password hashes: the login roles among them are named, the others are not', () => {
    const facts = copyFacts({ passwordsReadable: false, attributes: [attrs('owner'), attrs('web', { login: true }), attrs('batch', { login: true })] });
    const r = roleFindings('copy', missing('batch', 'owner', 'web'), facts);
    expect(r.findings.at(-1)).toEqual({
      severity: 'warning',
      code: 'roles.no-password',
      object: 'roles web, batch',
      message: 'the source does not expose password hashes (pg_authid is not readable), so these login roles are created without a password',
      fix: 'set their passwords on the target (ALTER ROLE … PASSWORD) before the application connects there',
    });
    expect(codes(roleFindings('copy', missing('web'), { ...facts, passwordsReadable: true }).findings)).toEqual(['info roles.copy']);
    expect(codes(roleFindings('copy', missing('owner'), { ...facts, attributes: [attrs('owner')] }).findings)).toEqual(['info roles.copy']);
  });
});

describe('WAL headroom', () => {
  // 3600 kB at 1 kB/s lasts exactly one hour.
  const headroom = (keepSetting: string | null, loadHours: number, bytesPerSecond = 1024) => walHeadroom({ sourceLabel: 'src', keepSetting, bytesPerSecond, loadHours });

  it('unlimited warns with the WAL an hour and the load would keep', () => {
    expect(headroom('-1', 2)).toEqual({
      keepBytes: null,
      headroomHours: null,
      findings: [
        {
          severity: 'warning',
          code: 'wal.unlimited',
          object: 'src',
          message: 'max_slot_wal_keep_size is unlimited: a stalled slot keeps WAL until the disk fills (3.5 MB per hour at the current rate; ~7.0 MB during a 2.0 h full load)',
          fix: 'set max_slot_wal_keep_size to what the disk can hold, and watch pgshift cdc status',
        },
      ],
    });
  });

  it('headroom under the load blocks; exactly the load or under twice it warns; twice or more passes', () => {
    const blocked = headroom('3600kB', 1.25);
    expect(blocked.keepBytes).toBe(3600 * 1024);
    expect(blocked.headroomHours).toBe(1);
    expect(blocked.findings).toEqual([
      {
        severity: 'blocker',
        code: 'wal.headroom',
        object: 'src',
        message: 'max_slot_wal_keep_size (3600kB) lasts 1.0 h at the current WAL rate; the full load takes about 1.3 h, so the slots would be invalidated',
        fix: 'raise max_slot_wal_keep_size, or split the load into groups loaded one after another',
      },
    ]);
    expect(headroom('3600kB', 1).findings).toEqual([
      { severity: 'warning', code: 'wal.headroom', object: 'src', message: 'max_slot_wal_keep_size (3600kB) lasts 1.0 h at the current WAL rate, under twice the 1.0 h full-load estimate', fix: 'raise max_slot_wal_keep_size' },
    ]);
    expect(codes(headroom('3600kB', 0.6).findings)).toEqual(['warning wal.headroom']);
    expect(headroom('3600kB', 0.5).findings).toEqual([]);
  });

  it('no WAL written, or the setting unknown: no estimate and no finding', () => {
    expect(headroom('3600kB', 5, 0)).toEqual({ keepBytes: 3600 * 1024, headroomHours: null, findings: [] });
    expect(headroom(null, 5)).toEqual({ keepBytes: null, headroomHours: null, findings: [] });
  });
});

/** A plain table with a primary key: no finding. */
function table(over: Partial<RelationFacts> = {}): RelationFacts {
  return {
    schema: 'app',
    name: 't',
    oid: 1,
    kind: 'r',
    persistence: 'p',
    isPartition: false,
    replicaIdentity: 'd',
    hasPrimaryKey: true,
    primaryKeyDeferrable: false,
    uniqueNotNullIndexes: [],
    otherUniqueIndexes: 0,
    replicaIdentityIndex: null,
    generatedColumns: [],
    identityColumns: [],
    arrayColumns: [],
    lobColumns: [],
    noEqualityColumns: [],
    estimatedBytes: 8192,
    bytes: 8192,
    rowEstimate: 10,
    hasStatistics: true,
    owner: 'admin',
    ownedByMe: true,
    canSelect: true,
    rowSecurity: 'off',
    withOids: false,
    oidIndexes: [],
    ...over,
  };
}

const NATIVE: TableRuleOptions = { reader: { name: 'mig', bypassRowSecurity: false }, engine: 'native', plugin: 'pglogical', replicaIdentityFull: [], unlogged: { skip: [] } };
const DMS: TableRuleOptions = { ...NATIVE, engine: 'dms' };
const TEST_DECODING: TableRuleOptions = { ...DMS, plugin: 'test_decoding' };

describe('table findings', () => {
  const check = (over: Partial<RelationFacts>, o: TableRuleOptions = NATIVE, group: string | null = 'g') => relationFindings(table(over), group, o);

  it('a table with a primary key gives none', () => {
    for (const o of [NATIVE, DMS, TEST_DECODING]) expect(check({}, o)).toEqual([]);
  });

  it('foreign tables, materialized views and partitioned parents: one info each, nothing else checked', () => {
    expect(check({ kind: 'f', hasPrimaryKey: false, canSelect: false })).toEqual([
      { severity: 'info', code: 'table.foreign', object: 'app.t', message: 'foreign table: its definition is migrated, its data stays where it is', fix: 'create the foreign server and user mapping on the target' },
    ]);
    expect(check({ kind: 'm', hasPrimaryKey: false })).toEqual([
      { severity: 'info', code: 'table.matview', object: 'app.t', message: 'materialized view: not replicated; pgshift refreshes it at the end of the full load', fix: 'REFRESH MATERIALIZED VIEW app.t on the target after the cut-over' },
    ]);
    expect(codes(check({ kind: 'p', hasPrimaryKey: false, ownedByMe: false }))).toEqual(['info table.partitioned']);
  });

  it('privileges: SELECT always, ownership for the native engine only', () => {
    expect(check({ canSelect: false })).toEqual([{ severity: 'blocker', code: 'table.privilege.select', object: 'app.t', message: 'the source role cannot read it', fix: 'GRANT SELECT ON app.t TO the source role' }]);
    expect(check({ ownedByMe: false, owner: 'bob' })).toEqual([
      { severity: 'blocker', code: 'table.privilege.owner', object: 'app.t', message: 'owned by bob: only the owner or a superuser can publish it', fix: 'run pgshift as a superuser (RDS: rds_superuser) or as the owner' },
    ]);
    expect(check({ ownedByMe: false }, DMS)).toEqual([]);
  });

  it('row-level security: refused when its policies apply to the reading role, on every engine', () => {
    const bypassing = (o: TableRuleOptions) => ({ ...o, reader: { name: 'mig', bypassRowSecurity: true } });
    for (const o of [NATIVE, DMS]) {
      // Enabled: the owner (or a member of the owning role) is exempt; anyone else is filtered.
      expect(check({ rowSecurity: 'enabled' }, o)).toEqual([]);
      expect(codes(check({ rowSecurity: 'enabled', ownedByMe: false, owner: 'bob' }, o)).filter((c) => c.includes('row-security'))).toEqual(['blocker table.row-security']);
      // Forced: the owner too is filtered.
      expect(check({ rowSecurity: 'forced' }, o)).toEqual([
        {
          severity: 'blocker',
          code: 'table.row-security',
          object: 'app.t',
          message: 'row-level security is forced on it (its owner too is subject to the policies): the policies could hide rows from mig, and the copy would leave them out',
          fix: 'as a superuser, ALTER ROLE mig BYPASSRLS for the migration (or connect as a superuser); or, as its owner, ALTER TABLE app.t NO FORCE ROW LEVEL SECURITY until the cut-over',
        },
      ]);
      // A superuser or a BYPASSRLS role reads every row whatever the policies say.
      expect(check({ rowSecurity: 'forced' }, bypassing(o))).toEqual([]);
      expect(codes(check({ rowSecurity: 'enabled', ownedByMe: false }, bypassing(o))).filter((c) => c.includes('row-security'))).toEqual([]);
    }
    expect(check({ rowSecurity: 'enabled', ownedByMe: false, owner: 'bob' }, DMS)).toEqual([
      {
        severity: 'blocker',
        code: 'table.row-security',
        object: 'app.t',
        message: 'row-level security is enabled on it and mig does not own it: the policies could hide rows from mig, and the copy would leave them out',
        fix: 'as a superuser, ALTER ROLE mig BYPASSRLS for the migration (or connect as a superuser)',
      },
    ]);
  });

  it('WITH OIDS (before 12): a warning that the oid values stay behind; an index on them blocks, on every engine', () => {
    for (const o of [NATIVE, DMS]) {
      expect(check({ withOids: true }, o)).toEqual([
        {
          severity: 'warning',
          code: 'table.with-oids',
          object: 'app.t',
          message: 'created WITH OIDS: its hidden oid column does not exist from PostgreSQL 12 on, so its values are not carried and a query that reads them fails on the target',
          fix: 'if the application reads them, keep them in a real column first (ALTER TABLE app.t ADD COLUMN row_oid oid; UPDATE app.t SET row_oid = oid)',
        },
      ]);
      expect(check({ withOids: true, oidIndexes: ['t_oid_key'] }, o)).toEqual([
        {
          severity: 'blocker',
          code: 'table.with-oids-index',
          object: 'app.t',
          message: 'created WITH OIDS, and t_oid_key is an index on its oid column, which PostgreSQL 12 removed: the target cannot create it',
          fix: 'on the source, move the values to a real column (ALTER TABLE app.t ADD COLUMN row_oid oid; UPDATE app.t SET row_oid = oid), index that instead, then ALTER TABLE app.t SET WITHOUT OIDS',
        },
      ]);
    }
  });

  it('a table in no group warns that it is not migrated', () => {
    expect(check({}, NATIVE, null)).toEqual([{ severity: 'warning', code: 'table.unassigned', object: 'app.t', message: 'in no group: it will not be migrated', fix: 'add it to a group (or a catch-all pattern) in the plan' }]);
  });

  describe('replica identity', () => {
    const noKey = { hasPrimaryKey: false };

    it('native, no key: blocks, pointing at a unique NOT NULL index when there is one', () => {
      expect(check(noKey)).toEqual([
        {
          severity: 'blocker',
          code: 'table.no-key',
          object: 'app.t',
          message: 'no primary key and REPLICA IDENTITY DEFAULT: UPDATE and DELETE fail on the source once it is published',
          fix: 'add a primary key, ALTER TABLE app.t REPLICA IDENTITY FULL, or list it under cdc.replicaIdentityFull for pgshift to do that',
        },
      ]);
      expect(check({ ...noKey, uniqueNotNullIndexes: ['t_code_key'] })[0].fix).toBe('on the source, run ALTER TABLE app.t REPLICA IDENTITY USING INDEX t_code_key (or add a primary key)');
    });

    it('native, no key, consented under cdc.replicaIdentityFull: an info; in no group the consent does not apply', () => {
      const consent = { ...NATIVE, replicaIdentityFull: ['app.*'] };
      expect(check(noKey, consent)).toEqual([
        { severity: 'info', code: 'table.replica-identity-consent', object: 'app.t', message: 'no primary key and REPLICA IDENTITY DEFAULT: pgshift sets REPLICA IDENTITY FULL before publishing it (cdc.replicaIdentityFull)', fix: undefined },
      ]);
      expect(codes(check(noKey, consent, null))).toEqual(['warning table.unassigned', 'blocker table.no-key']);
    });

    it('native, a DEFERRABLE primary key: blocks like no key (it is never the replica identity); consent or FULL lets it through', () => {
      const deferrable = { primaryKeyDeferrable: true };
      expect(check(deferrable)).toEqual([
        {
          severity: 'blocker',
          code: 'table.no-key',
          object: 'app.t',
          message: 'a DEFERRABLE primary key (never a replica identity) and REPLICA IDENTITY DEFAULT: UPDATE and DELETE fail on the source once it is published',
          fix: 'make the primary key NOT DEFERRABLE, ALTER TABLE app.t REPLICA IDENTITY FULL, or list it under cdc.replicaIdentityFull for pgshift to do that',
        },
      ]);
      expect(codes(check(deferrable, { ...NATIVE, replicaIdentityFull: ['app.t'] }))).toEqual(['info table.replica-identity-consent']);
      expect(codes(check({ ...deferrable, replicaIdentity: 'f' }))).toEqual(['warning table.replica-identity-full']);
    });

    it('DMS, no key: a warning (inserts only), whatever the plugin', () => {
      for (const o of [DMS, TEST_DECODING]) {
        expect(check(noKey, o)).toEqual([
          {
            severity: 'warning',
            code: 'table.no-key',
            object: 'app.t',
            message: 'no primary key and REPLICA IDENTITY DEFAULT: DMS carries its inserts but not its UPDATE and DELETE',
            fix: 'add a primary key unless the table is insert-only (verify finds any row that differs)',
          },
        ]);
      }
    });

    it('REPLICA IDENTITY NOTHING blocks on every engine', () => {
      for (const o of [NATIVE, DMS]) {
        expect(check({ replicaIdentity: 'n' }, o)).toEqual([
          {
            severity: 'blocker',
            code: 'table.replica-identity-nothing',
            object: 'app.t',
            message: 'REPLICA IDENTITY NOTHING: UPDATE and DELETE fail on the source once it is published',
            fix: 'on the source, run ALTER TABLE app.t REPLICA IDENTITY DEFAULT (with a primary key) or FULL, or list it under cdc.replicaIdentityFull',
          },
        ]);
      }
    });

    it('USING INDEX: an info naming the index, or a blocker when the index is gone', () => {
      expect(check({ ...noKey, replicaIdentity: 'i', replicaIdentityIndex: 't_code_key' })).toEqual([
        { severity: 'info', code: 'table.replica-identity-index', object: 'app.t', message: 'replica identity is the unique index t_code_key', fix: undefined },
      ]);
      const gone = check({ ...noKey, replicaIdentity: 'i', replicaIdentityIndex: null });
      expect(codes(gone)).toEqual(['blocker table.no-key']);
      expect(gone[0].message).toBe('REPLICA IDENTITY USING INDEX of an index that is gone or invalid: UPDATE and DELETE fail on the source once it is published');
    });

    it('FULL: a warning, a blocker for DMS with pglogical', () => {
      const full = { ...noKey, replicaIdentity: 'f' as const };
      const warning = { severity: 'warning', code: 'table.replica-identity-full', object: 'app.t', message: 'REPLICA IDENTITY FULL: every UPDATE and DELETE is applied by a scan unless the target has a usable index', fix: 'add a primary key if you can' };
      expect(check(full)).toEqual([warning]);
      expect(check(full, TEST_DECODING)).toEqual([warning]);
      expect(check(full, DMS)).toEqual([
        { severity: 'blocker', code: 'table.replica-identity-full', object: 'app.t', message: 'REPLICA IDENTITY FULL without a key is not supported by DMS with pglogical', fix: 'add a primary key, or use plugin: test_decoding for this group' },
      ]);
    });

    it('FULL (set or consented) over a column without equality stops a native stream: a blocker', () => {
      const json = { ...noKey, replicaIdentity: 'f' as const, noEqualityColumns: [{ name: 'doc', type: 'json' }] };
      expect(check(json)[0]).toEqual({
        severity: 'blocker',
        code: 'table.identity-no-equality',
        object: 'app.t',
        message: 'no key, so the target matches an UPDATE or DELETE by every column (REPLICA IDENTITY FULL), and doc (json) has no equality operator: the stream would stop at the first one',
        fix: 'add a primary key, or a unique index on NOT NULL columns and ALTER TABLE app.t REPLICA IDENTITY USING INDEX it, or change the json column(s) to jsonb',
      });
      expect(codes(check(json))).toEqual(['blocker table.identity-no-equality', 'warning table.replica-identity-full']);
      const points = { ...noKey, noEqualityColumns: [{ name: 'a', type: 'point' }, { name: 'b', type: 'xml' }] };
      const consented = check(points, { ...NATIVE, replicaIdentityFull: ['app.t'] });
      expect(codes(consented)).toEqual(['blocker table.identity-no-equality', 'info table.replica-identity-consent']);
      expect(consented[0].message).toContain('a (point), b (xml) have no equality operator');
      expect(consented[0].fix).not.toContain('jsonb');
      // Not for DMS, not outside a group, not with a key.
      expect(codes(check(json, TEST_DECODING))).toEqual(['warning table.replica-identity-full']);
      expect(codes(check(json, NATIVE, null))).toEqual(['warning table.unassigned', 'warning table.replica-identity-full']);
      expect(check({ noEqualityColumns: [{ name: 'doc', type: 'json' }] })).toEqual([]);
    });
  });

  it('DMS suspends a table with ARRAY columns and no primary key', () => {
    expect(check({ hasPrimaryKey: false, replicaIdentity: 'i', replicaIdentityIndex: 'k', arrayColumns: ['tags', 'ids'] }, DMS)).toContainEqual({
      severity: 'blocker',
      code: 'table.array-no-key',
      object: 'app.t',
      message: 'ARRAY column(s) tags, ids without a primary key: DMS suspends the table',
      fix: 'add a primary key',
    });
    expect(check({ arrayColumns: ['tags'] }, DMS)).toEqual([]);
    expect(check({ hasPrimaryKey: false, replicaIdentity: 'i', replicaIdentityIndex: 'k', arrayColumns: ['tags'] })).toHaveLength(1);
  });

  it('generated and identity columns, and a table never analyzed: infos', () => {
    expect(check({ generatedColumns: ['total'], identityColumns: ['id'], hasStatistics: false })).toEqual([
      { severity: 'info', code: 'table.generated', object: 'app.t', message: 'generated column(s) total: left out of the copy, computed by the target', fix: undefined },
      { severity: 'info', code: 'table.identity', object: 'app.t', message: 'identity column(s) id: values copied as they are, sequences carried at cut-over', fix: undefined },
      { severity: 'info', code: 'table.no-statistics', object: 'app.t', message: 'never analyzed: size and row estimates are unknown to the planner and to pgshift', fix: 'run ANALYZE app.t on the source' },
    ]);
  });

  it('an unlogged table is checked as a table only when make-logged makes it one', () => {
    const unlogged = { persistence: 'u' as const, hasPrimaryKey: false };
    expect(check(unlogged, { ...NATIVE, unlogged: { skip: [] } })).toEqual([]);
    expect(check(unlogged, { ...NATIVE, unlogged: { mode: 'copy-at-cutover', skip: [] } })).toEqual([]);
    expect(check(unlogged, { ...NATIVE, unlogged: { mode: 'make-logged', skip: ['app.t'] } })).toEqual([]);
    expect(codes(check(unlogged, { ...NATIVE, unlogged: { mode: 'make-logged', skip: [] } }))).toEqual(['blocker table.no-key']);
  });
});

describe('unlogged findings', () => {
  const tables = [table({ name: 'cache', bytes: 2048 }), table({ name: 'sessions', bytes: 3 * 1024 * 1024 })];

  it('undecided: one blocker naming every table', () => {
    const f = unloggedFindings(decideUnlogged(tables, { skip: [] }));
    expect(codes(f)).toEqual(['blocker unlogged.undecided']);
    expect(f[0].object).toBe('app.cache, app.sessions');
    expect(f[0].message).toContain('unlogged table(s) app.cache, app.sessions');
  });

  it('copy-at-cutover and skip are infos; make-logged warns of the rewrite; an unused skip pattern warns', () => {
    expect(unloggedFindings(decideUnlogged(tables, { mode: 'copy-at-cutover', skip: ['app.sessions', 'app.gone'] }))).toEqual([
      { severity: 'info', code: 'table.unlogged', object: 'app.cache', message: 'unlogged table (2.0 kB): copied inside the cut-over window, writes fenced (unlogged.mode: copy-at-cutover) — its copy time adds to the window', fix: undefined },
      { severity: 'info', code: 'table.unlogged', object: 'app.sessions', message: 'unlogged table: left empty on the target, as unlogged.skip says', fix: undefined },
      { severity: 'warning', code: 'unlogged.skip', object: 'app.gone', message: 'unlogged.skip names no unlogged table of the source', fix: 'correct the name, or remove it from unlogged.skip' },
    ]);
    expect(unloggedFindings(decideUnlogged(tables.slice(1), { mode: 'make-logged', skip: [] }))).toEqual([
      {
        severity: 'warning',
        code: 'table.unlogged',
        object: 'app.sessions',
        message: 'unlogged table: pgshift runs ALTER TABLE … SET LOGGED on the source before the load (unlogged.mode: make-logged), rewriting its 3.0 MB under an exclusive lock',
        fix: undefined,
      },
    ]);
    expect(unloggedFindings(decideUnlogged([], { skip: [] }))).toEqual([]);
  });
});

describe('group assignment findings', () => {
  const tables = [table({ name: 'orders' }), table({ name: 'events', kind: 'p' }), table({ name: 'events_2024', isPartition: true })];
  const group = (name: string, ...patterns: string[]) => ({ name, tables: patterns, exclude: [] });

  it('groups that take tables give none', () => {
    expect(groupAssignmentFindings(assignGroups(tables, [group('a', 'app.orders'), group('b', 'app.events*')]))).toEqual([]);
  });

  it('a pattern matching nothing warns; a group left without a table that holds rows blocks', () => {
    const f = groupAssignmentFindings(assignGroups(tables, [group('a', 'app.*'), group('b', 'app.typo'), group('c', 'app.orders')]));
    expect(codes(f)).toEqual(['warning group.pattern', 'warning group.pattern', 'blocker group.empty', 'blocker group.empty']);
    expect(f.map((x) => x.object)).toEqual(['group b', 'group c', 'group b', 'group c']);
    expect(f[0].message).toBe('pattern app.typo matches no table on the source');
    expect(f[3].message).toBe('group c is left with no table: its pattern app.orders matches only tables already taken by group a listed before it (a table belongs to the first group that matches it)');
  });

  it('a group of only a partitioned parent holds no rows: a blocker', () => {
    expect(codes(groupAssignmentFindings(assignGroups(tables, [group('parents', 'app.events'), group('rest', 'app.*')])))).toEqual(['blocker group.empty']);
  });
});

describe('sequence findings', () => {
  const seq = (over: Partial<SequenceFacts>): SequenceFacts => ({ schema: 'app', name: 's', dataType: 'integer', maxValue: 1000n, lastValue: 1n, ownedBy: 'app.t.id', ...over });

  it('an owned sequence far from its maximum, or never used, gives none', () => {
    expect(sequenceFindings([seq({}), seq({ lastValue: null })])).toEqual([]);
  });

  it('owned by no column: an info (still carried)', () => {
    expect(sequenceFindings([seq({ ownedBy: null })])).toEqual([{ severity: 'info', code: 'sequence.unowned', object: 'app.s', message: 'owned by no column: pgshift still carries its value at cut-over', fix: undefined }]);
  });

  it('at 80% of its maximum or more: a warning; at 79.9% none', () => {
    expect(sequenceFindings([seq({ lastValue: 799n })])).toEqual([]);
    expect(sequenceFindings([seq({ lastValue: 800n })])).toEqual([
      { severity: 'warning', code: 'sequence.near-limit', object: 'app.s', message: 'integer sequence at 80% of its maximum 1000', fix: 'widen it before it runs out: ALTER SEQUENCE app.s AS bigint, and the column too' },
    ]);
    expect(sequenceFindings([seq({ lastValue: 2147483000n, maxValue: 2147483647n })])[0].message).toBe('integer sequence at 99.9% of its maximum 2147483647');
    expect(sequenceFindings([seq({ lastValue: -5n, maxValue: -1n })])).toEqual([]);
  });
});

describe('LOB truncation', () => {
  const scan = (maxBytes: number, exact = true, samplePercent = 100) => ({ ...lobAdvice(maxBytes, 32), exact, samplePercent });

  it('values that fit the task limit, or the native engine: none', () => {
    expect(lobTruncationFindings('app.t', scan(10 * 1024), 32, 'dms')).toEqual([]);
    expect(lobTruncationFindings('app.t', scan(1024 * 1024), 32, 'native')).toEqual([]);
  });

  it('over the task limit: an info naming the table limit to set', () => {
    expect(lobTruncationFindings('app.t', scan(1024 * 1024, false, 1.5), 32, 'dms')).toEqual([
      { severity: 'info', code: 'lob.truncation', object: 'app.t', message: 'largest LOB value 1.0 MB (largest in a 1.50% sample) would be truncated at the task limit of 32 KB', fix: 'use lobMaxSizeKb: 3072 for this table' },
    ]);
  });

  it('over the largest limited size: a warning for unlimited LOB mode', () => {
    expect(lobTruncationFindings('app.t', scan(200 * 1024 * 1024), 32, 'dms')).toEqual([
      { severity: 'warning', code: 'lob.truncation', object: 'app.t', message: 'largest LOB value 200 MB (exact) would be truncated at the task limit of 32 KB', fix: 'use lobMode: unlimited for this table (no truncation)' },
    ]);
  });
});
