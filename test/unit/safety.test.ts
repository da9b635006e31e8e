import { logicalDecodingProblem } from '../../src/core/source-rules.js';
import { afterEach, describe, expect, it } from 'vitest';
import { changesMade, noteChange, resetChanges } from '../../src/core/changes.js';
import { describeFailure, gateRefused, inputError, tagServer } from '../../src/core/errors.js';
import { completeActions, isDecided, rollbackCompleteActions, undoActions } from '../../src/core/cutover-steps.js';
import { decideGroupLoad } from '../../src/core/load-decision.js';
import { planResume } from '../../src/core/resume-plan.js';
import { privilegeFindings, type RoleFacts } from '../../src/core/privileges.js';
import { identityProblem, planPublishing } from '../../src/core/replica-identity.js';
import { keywordsUnknownTo, parseConninfo, parseServerUrl } from '../../src/config/url.js';

afterEach(() => resetChanges());

describe('replica identity: what publishing would break on the source', () => {
  const t = (name: string, replicaIdentity: 'd' | 'n' | 'f' | 'i', hasPrimaryKey: boolean, identityIndexValid = false, primaryKeyDeferrable = false) => ({
    schema: 'public',
    name,
    replicaIdentity,
    hasPrimaryKey,
    identityIndexValid,
    primaryKeyDeferrable,
  });
  it('names every identity whose UPDATE and DELETE fail once published', () => {
    expect(identityProblem(t('a', 'd', true))).toBeUndefined();
    expect(identityProblem(t('b', 'd', false))).toBe('no-key');
    expect(identityProblem(t('c', 'n', true))).toBe('nothing');
    expect(identityProblem(t('d', 'f', false))).toBeUndefined();
    expect(identityProblem(t('e', 'i', false, true))).toBeUndefined();
    expect(identityProblem(t('f', 'i', false, false))).toBe('index-gone');
    // PostgreSQL never takes a DEFERRABLE key as the identity: DEFAULT then logs no key at all.
    expect(identityProblem(t('g', 'd', true, false, true))).toBe('deferrable-key');
    expect(identityProblem(t('h', 'f', true, false, true))).toBeUndefined();
    expect(identityProblem(t('i', 'i', true, true, true))).toBeUndefined();
  });
  it('refuses them on the native engine unless the plan consents, and never on DMS (which does not publish)', () => {
    const tables = [t('ok', 'd', true), t('logs', 'd', false), t('audit_1', 'n', false), t('audit_2', 'n', false), t('positions', 'd', true, false, true)];
    const native = planPublishing(tables, 'native', ['public.audit_*']);
    expect(native.refused.map((r) => [r.table.name, r.problem])).toEqual([
      ['logs', 'no-key'],
      ['positions', 'deferrable-key'],
    ]);
    expect(native.setFull.map((x) => x.name)).toEqual(['audit_1', 'audit_2']);
    expect(planPublishing(tables, 'dms', [])).toEqual({ refused: [], setFull: [] });
  });
});

describe('full load: what a run does with a group after any earlier run', () => {
  type O = { restart?: boolean; paused?: boolean; copied?: boolean; canBridge?: boolean };
  const cases: Array<[string, { state: string; snapshotMode: string } | undefined, O, string]> = [
    ['never loaded', undefined, {}, 'fresh'],
    ['loaded', { state: 'loaded', snapshotMode: 'exported' }, {}, 'skip'],
    ['streaming', { state: 'streaming', snapshotMode: 'exported' }, {}, 'skip'],
    ['streaming, --restart', { state: 'streaming', snapshotMode: 'exported' }, { restart: true }, 'reset'],
    ['loading with tables kept, --restart', { state: 'loading', snapshotMode: 'exported' }, { restart: true, copied: true }, 'reset'],
    ['cut over, --restart', { state: 'cut-over', snapshotMode: 'exported' }, { restart: true }, 'refuse-cut-over'],
    ['rolled back, --restart', { state: 'rolled-back', snapshotMode: 'exported' }, { restart: true }, 'refuse-cut-over'],
    ['preparing (nothing copied)', { state: 'preparing', snapshotMode: 'exported' }, {}, 'reset'],
    ['loading, slot made, nothing copied yet', { state: 'loading', snapshotMode: 'exported' }, {}, 'reset'],
    ['loading, exported snapshot gone, tables finished', { state: 'loading', snapshotMode: 'exported' }, { copied: true }, 'resume'],
    ['loading, exported, engine cannot bridge', { state: 'loading', snapshotMode: 'exported' }, { copied: true, canBridge: false }, 'refuse-interrupted'],
    ['loading, exported, plan now paused-replica', { state: 'loading', snapshotMode: 'exported' }, { copied: true, paused: true }, 'refuse-interrupted'],
    ['loading, paused replica', { state: 'loading', snapshotMode: 'paused-replica' }, { paused: true, copied: true }, 'continue'],
    ['preparing, paused replica', { state: 'preparing', snapshotMode: 'paused-replica' }, { paused: true }, 'continue'],
    ['loading from a replica, plan now exported', { state: 'loading', snapshotMode: 'paused-replica' }, { copied: true }, 'refuse-interrupted'],
  ];
  for (const [what, prior, o, action] of cases) {
    it(`${what} → ${action}`, () =>
      expect(decideGroupLoad(prior, { restart: o.restart ?? false, pausedReplicaPlan: o.paused ?? false, copied: o.copied, canBridge: o.canBridge })).toBe(action));
  }
});

describe('resuming an exported load: what is kept, bridged, dropped and drained', () => {
  const f = (rows: number, bytes = rows * 10) => ({ rows, bytes });
  const tables = ['public.a', 'public.b', 'public.c', 'public.d'];
  it('first resume: finished tables stay on the group stream, the rest leave it; the group stream drains', () => {
    const p = planResume({
      tables,
      done: new Map([['public.a', f(100)], ['public.c', f(5)]]),
      partial: new Map([['public.b', f(40)]]),
      streams: [{ name: 'g', own: true, published: new Set(tables) }],
    });
    expect(p.pending).toEqual(['public.b', 'public.d']);
    expect(p.leave).toEqual([{ stream: 'g', tables: ['public.b', 'public.d'] }]);
    expect(p.drop).toEqual([]);
    expect(p.drain).toEqual(['g']);
    expect(p.newStream).toBe(true);
    expect(p.kept).toEqual({ tables: 2, rows: 105, bytes: 1050 });
    expect(p.discarded).toEqual({ rows: 40, bytes: 400, parts: ['public.b'] });
  });
  it('second resume: a resume stream that finished nothing is dropped whole; one that finished something keeps it and drains', () => {
    const p = planResume({
      tables,
      done: new Map([['public.a', f(1)], ['public.b', f(2)]]),
      partial: new Map(),
      streams: [
        { name: 'g', own: true, published: new Set(['public.a']) },
        { name: 'g_r1', own: false, published: new Set(['public.b', 'public.c']) },
        { name: 'g_r2', own: false, published: new Set(['public.d']) },
      ],
    });
    expect(p.pending).toEqual(['public.c', 'public.d']);
    expect(p.leave).toEqual([{ stream: 'g_r1', tables: ['public.c'] }]);
    expect(p.drop).toEqual(['g_r2']);
    // The group stream left nothing now, but an earlier run may have died between leaving and draining.
    expect(p.drain).toEqual(['g', 'g_r1']);
  });
  it('a table in no publication (a run died between leaving and the new stream) is pending and carried by the new stream', () => {
    const p = planResume({ tables, done: new Map([['public.a', f(1)]]), partial: new Map(), streams: [{ name: 'g', own: true, published: new Set(['public.a']) }] });
    expect(p.pending).toEqual(['public.b', 'public.c', 'public.d']);
    expect(p.leave).toEqual([]);
    expect(p.newStream).toBe(true);
  });
  it('everything finished (died while indexes built): no bridge, no drain, nothing copied', () => {
    const done = new Map(tables.map((t) => [t, f(1)]));
    const p = planResume({ tables, done, partial: new Map(), streams: [{ name: 'g', own: true, published: new Set(tables) }] });
    expect(p).toMatchObject({ pending: [], leave: [], drop: [], drain: [], newStream: false, kept: { tables: 4 } });
  });
});

describe('privileges the phases need', () => {
  const role = (over: Partial<RoleFacts> = {}): RoleFacts => ({ name: 'mig', superuser: false, replication: false, rdsSuperuser: false, bypassRowSecurity: false, createSubscription: false, createOnDatabase: true, ...over });
  it('a superuser needs nothing more; a plain role lacks replication and subscriptions', () => {
    expect(privilegeFindings(role({ superuser: true }), role({ superuser: true }), 17, 'native')).toEqual([]);
    expect(privilegeFindings(role(), role(), 15, 'native').map((f) => f.code)).toEqual(['source.privilege.replication', 'target.privilege.subscription']);
    expect(privilegeFindings(role({ replication: true }), role({ createSubscription: true }), 16, 'native')).toEqual([]);
    expect(privilegeFindings(role({ replication: true }), role({ createOnDatabase: false }), 15, 'dms').map((f) => f.code)).toEqual(['target.privilege.create']);
  });
});

describe('connection strings: only what libpq knows', () => {
  it('refuses an unknown URL parameter at plan load, with the fix', () => {
    expect(() => parseServerUrl('postgresql://u:p@h:5432/db?bogusparam=1')).toThrow(/unknown connection parameter bogusparam/);
    expect(parseServerUrl('postgresql://u:p@h/db?sslmode=require&connect_timeout=5').options).toEqual({ connect_timeout: '5' });
  });
  it('says to percent-encode a raw % or / in a password', () => {
    const err = (() => {
      try {
        parseServerUrl('postgresql://u:50%off@h/db');
      } catch (e) {
        return e as { message: string; hint: string };
      }
    })();
    expect(err?.message).toMatch(/% that is not a percent-encoded character/);
    expect(err?.hint).toMatch(/percent-encode/);
  });
  it('reads a conninfo, quoted values included, and knows which keywords an older libpq lacks', () => {
    expect(parseConninfo(`host=db.internal port=5433 user='app user' password='it''s' dbname=x`.replace("''", "\\'"))).toEqual({ host: 'db.internal', port: '5433', user: 'app user', password: "it's", dbname: 'x' });
    expect(() => parseConninfo('host=x frobnicate=1')).toThrow(/unknown connection parameter frobnicate/);
    expect(keywordsUnknownTo(['host', 'require_auth', 'sslnegotiation'], 16)).toEqual(['sslnegotiation']);
  });
});

describe('the exit-code contract, in one place', () => {
  it('keeps 2 and 3 only while nothing was changed', () => {
    expect(describeFailure(gateRefused('x.gate', 'refused', 'fix it')).exitCode).toBe(3);
    noteChange('pgshift journal of shop on the target');
    const late = describeFailure(inputError('x.input', 'bad'));
    expect(late.exitCode).toBe(1);
    expect(late.line).toMatch(/this run had already changed: pgshift journal of shop on the target/);
    expect(changesMade()).toHaveLength(1);
  });
  it('names the server of a database error and the fix for its SQLSTATE', () => {
    const err = tagServer(Object.assign(new Error('permission denied for database app'), { code: '42501' }), { role: 'target', label: '10.0.0.5:5432/app' });
    const f = describeFailure(err);
    expect(f.exitCode).toBe(1);
    expect(f.message).toBe('target 10.0.0.5:5432/app: permission denied for database app (SQLSTATE 42501)');
    expect(f.hint).toMatch(/grant the missing privilege/);
    expect(describeFailure(new Error('boom')).line).toBe('unexpected error: boom');
  });
});

describe('the cut-over record: what ending an interrupted window takes', () => {
  it('undoes what was attempted before the decision — RESUME whenever PAUSE may have been sent', () => {
    expect(undoActions({ attempted: [] })).toEqual([]);
    expect(undoActions({ attempted: ['lock-tables'] })).toEqual([]); // the server ended the fence with the session
    expect(undoActions({ attempted: ['pause-pooler'] })).toEqual(['resume-pooler']);
    expect(undoActions({ attempted: ['pause-pooler', 'lock-tables', 'stop-forward', 'start-reverse'] })).toEqual(['resume-pooler', 'restart-forward', 'drop-reverse']);
  });
  it('completes every step after the decision, the seal first', () => {
    expect(isDecided({ stage: 'window' })).toBe(false);
    expect(isDecided({ stage: 'decided' })).toBe(true);
    expect(completeActions({ pooler: false, poolerConfig: false, aws: false })).toEqual(['seal-source', 'stop-forward']);
    expect(completeActions({ pooler: true, poolerConfig: true, aws: true })).toEqual(['seal-source', 'stop-forward', 'repoint-pooler', 'resume-pooler', 'repoint-aws']);
  });
  it('a rollback is undone like a cut-over (RESUME), and completes with the target sealed before the source is unsealed or anything points back', () => {
    expect(undoActions({ attempted: ['pause-pooler', 'lock-tables'] })).toEqual(['resume-pooler']);
    expect(rollbackCompleteActions({ pooler: false, poolerConfig: false, aws: false })).toEqual(['seal-target', 'stop-reverse', 'unseal-source']);
    expect(rollbackCompleteActions({ pooler: true, poolerConfig: true, aws: true })).toEqual(['seal-target', 'stop-reverse', 'unseal-source', 'restore-pooler', 'resume-pooler', 'repoint-aws']);
    expect(rollbackCompleteActions({ pooler: true, poolerConfig: false, aws: false })).toEqual(['seal-target', 'stop-reverse', 'unseal-source', 'resume-pooler']);
  });
});

describe('logical decoding on the source', () => {
  it('needs wal_level = logical, and on RDS rds.logical_replication on (named first: it is what to change there)', () => {
    expect(logicalDecodingProblem({ wal_level: 'logical' }, false)).toBeUndefined();
    expect(logicalDecodingProblem({ wal_level: 'logical', 'rds.logical_replication': 'on' }, true)).toBeUndefined();
    expect(logicalDecodingProblem({ wal_level: 'replica' }, false)).toMatchObject({ code: 'source.wal_level', message: 'wal_level is replica; logical decoding needs wal_level = logical' });
    expect(logicalDecodingProblem({ wal_level: undefined }, false)?.message).toBe('wal_level is unknown; logical decoding needs wal_level = logical');
    expect(logicalDecodingProblem({ wal_level: 'replica', 'rds.logical_replication': 'off' }, true)).toMatchObject({ code: 'source.rds_logical_replication', fix: 'set rds.logical_replication = 1 in the parameter group and reboot the source' });
    // Off but not on RDS (the flag is only read there): wal_level decides.
    expect(logicalDecodingProblem({ wal_level: 'logical', 'rds.logical_replication': 'off' }, false)).toBeUndefined();
  });
});
