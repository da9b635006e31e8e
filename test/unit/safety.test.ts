import { logicalDecodingProblem } from '../../src/core/source-rules.js';
import { afterEach, describe, expect, it } from 'vitest';
import { changesMade, noteChange, resetChanges } from '../../src/core/changes.js';
import { describeFailure, gateRefused, inputError, tagServer } from '../../src/core/errors.js';
import { completeActions, isDecided, undoActions } from '../../src/core/cutover-steps.js';
import { decideGroupLoad } from '../../src/core/load-decision.js';
import { privilegeFindings, type RoleFacts } from '../../src/core/privileges.js';
import { identityProblem, planPublishing } from '../../src/core/replica-identity.js';
import { keywordsUnknownTo, parseConninfo, parseServerUrl } from '../../src/config/url.js';

afterEach(() => resetChanges());

describe('replica identity: what publishing would break on the source', () => {
  const t = (name: string, replicaIdentity: 'd' | 'n' | 'f' | 'i', hasPrimaryKey: boolean, identityIndexValid = false) => ({ schema: 'public', name, replicaIdentity, hasPrimaryKey, identityIndexValid });
  it('names every identity whose UPDATE and DELETE fail once published', () => {
    expect(identityProblem(t('a', 'd', true))).toBeUndefined();
    expect(identityProblem(t('b', 'd', false))).toBe('no-key');
    expect(identityProblem(t('c', 'n', true))).toBe('nothing');
    expect(identityProblem(t('d', 'f', false))).toBeUndefined();
    expect(identityProblem(t('e', 'i', false, true))).toBeUndefined();
    expect(identityProblem(t('f', 'i', false, false))).toBe('index-gone');
  });
  it('refuses them on the native engine unless the plan consents, and never on DMS (which does not publish)', () => {
    const tables = [t('ok', 'd', true), t('logs', 'd', false), t('audit_1', 'n', false), t('audit_2', 'n', false)];
    const native = planPublishing(tables, 'native', ['public.audit_*']);
    expect(native.refused.map((r) => [r.table.name, r.problem])).toEqual([['logs', 'no-key']]);
    expect(native.setFull.map((x) => x.name)).toEqual(['audit_1', 'audit_2']);
    expect(planPublishing(tables, 'dms', [])).toEqual({ refused: [], setFull: [] });
  });
});

describe('full load: what a run does with a group after any earlier run', () => {
  const cases: Array<[string, { state: string; snapshotMode: string } | undefined, boolean, boolean, string]> = [
    ['never loaded', undefined, false, false, 'fresh'],
    ['loaded', { state: 'loaded', snapshotMode: 'exported' }, false, false, 'skip'],
    ['streaming', { state: 'streaming', snapshotMode: 'exported' }, false, false, 'skip'],
    ['streaming, --restart', { state: 'streaming', snapshotMode: 'exported' }, true, false, 'reset'],
    ['cut over, --restart', { state: 'cut-over', snapshotMode: 'exported' }, true, false, 'refuse-cut-over'],
    ['rolled back, --restart', { state: 'rolled-back', snapshotMode: 'exported' }, true, false, 'refuse-cut-over'],
    ['preparing (nothing copied)', { state: 'preparing', snapshotMode: 'exported' }, false, false, 'reset'],
    ['loading, exported snapshot gone', { state: 'loading', snapshotMode: 'exported' }, false, false, 'refuse-interrupted'],
    ['loading, paused replica', { state: 'loading', snapshotMode: 'paused-replica' }, false, true, 'continue'],
    ['preparing, paused replica', { state: 'preparing', snapshotMode: 'paused-replica' }, false, true, 'continue'],
    ['loading from a replica, plan now exported', { state: 'loading', snapshotMode: 'paused-replica' }, false, false, 'refuse-interrupted'],
  ];
  for (const [what, prior, restart, paused, action] of cases) {
    it(`${what} → ${action}`, () => expect(decideGroupLoad(prior, { restart, pausedReplicaPlan: paused })).toBe(action));
  }
});

describe('privileges the phases need', () => {
  const role = (over: Partial<RoleFacts> = {}): RoleFacts => ({ name: 'mig', superuser: false, replication: false, rdsSuperuser: false, createSubscription: false, createOnDatabase: true, ...over });
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
