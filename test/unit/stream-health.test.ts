import { describe, expect, it } from 'vitest';
import { streamHealth, type StreamMeasures } from '../../src/core/stream-health.js';

const thresholds = { maxLagBytes: 1024 * 1024, maxLagSeconds: 30, minSafeWalFraction: 0.2 };

/** A healthy streaming group: slot and subscription present, a heartbeat applied in 0.1 s. */
function measures(change: Partial<StreamMeasures> = {}): StreamMeasures {
  return {
    state: 'streaming',
    lagSeconds: 0.1,
    waitMs: 5000,
    applyErrors: 0,
    ddlProblems: [],
    ...change,
    slot: { name: 's1', exists: true, walStatus: 'reserved', lagBytes: 100, safeWalBytes: null, keepLimitBytes: null, ...change.slot },
    subscription: { name: 'sub1', exists: true, workerRunning: true, ...change.subscription },
  };
}

describe('streamHealth (native)', () => {
  it('streaming when everything holds and the heartbeat came back within the wait', () => {
    expect(streamHealth(measures(), thresholds)).toEqual({ health: 'streaming', problems: [] });
  });

  it('lagging, without a problem, when no heartbeat was applied within the wait (or it took the whole wait)', () => {
    expect(streamHealth(measures({ lagSeconds: null }), thresholds)).toEqual({ health: 'lagging', problems: [] });
    expect(streamHealth(measures({ lagSeconds: 5 }), thresholds).health).toBe('lagging');
    expect(streamHealth(measures({ lagSeconds: 4.99 }), thresholds).health).toBe('streaming');
  });

  it('paused and stopped follow the journal state, even with problems', () => {
    expect(streamHealth(measures({ state: 'paused', subscription: { name: 'sub1', exists: true, workerRunning: false } }), thresholds).health).toBe('paused');
    const stopped = streamHealth(measures({ state: 'loaded', slot: { name: 's1', exists: false, walStatus: null, lagBytes: null, safeWalBytes: null, keepLimitBytes: null } }), thresholds);
    expect(stopped).toEqual({ health: 'stopped', problems: ['slot s1 is missing on the source'] });
  });

  it('a missing subscription or a dead apply worker fails only a streaming group', () => {
    expect(streamHealth(measures({ subscription: { name: 'sub1', exists: true, workerRunning: false } }), thresholds)).toEqual({
      health: 'failing',
      problems: ["subscription sub1 has no running apply worker (see the target's log)"],
    });
    expect(streamHealth(measures({ subscription: { name: 'sub1', exists: false, workerRunning: false } }), thresholds).problems).toEqual(['subscription sub1 is missing on the target']);
    expect(streamHealth(measures({ state: 'stopped', subscription: { name: 'sub1', exists: false, workerRunning: false } }), thresholds)).toEqual({ health: 'stopped', problems: [] });
  });

  it("the slot's WAL: lost, unreserved, and safe WAL at or under the plan's fraction of max_slot_wal_keep_size", () => {
    expect(streamHealth(measures({ slot: { name: 's1', exists: true, walStatus: 'lost', lagBytes: 0, safeWalBytes: null, keepLimitBytes: null } }), thresholds).problems).toEqual(['slot s1 has lost required WAL: the stream cannot continue']);
    expect(streamHealth(measures({ slot: { name: 's1', exists: true, walStatus: 'unreserved', lagBytes: 0, safeWalBytes: null, keepLimitBytes: null } }), thresholds).problems).toEqual(['slot s1 is about to lose WAL (wal_status unreserved)']);
    const limit = 100 * 1024 * 1024;
    const at = (safe: number) => streamHealth(measures({ slot: { name: 's1', exists: true, walStatus: 'reserved', lagBytes: 0, safeWalBytes: safe, keepLimitBytes: limit } }), thresholds);
    expect(at(limit * 0.2).health).toBe('failing');
    expect(at(limit * 0.2).problems[0]).toBe('slot s1 can fall only 20.0 MB further behind before max_slot_wal_keep_size (100 MB) invalidates it');
    expect(at(limit * 0.2 + 1).health).toBe('streaming');
    expect(at(-5).problems[0]).toContain('can fall only 0 B further behind');
  });

  it('apply errors name the way out; none (0) or unknown (null, before 15) is no problem', () => {
    expect(streamHealth(measures({ applyErrors: 2 }), thresholds).problems[0]).toMatch(/^2 apply error\(s\) recorded for sub1: .* then pgshift cdc acknowledge$/);
    expect(streamHealth(measures({ applyErrors: null }), thresholds).health).toBe('streaming');
  });

  it('lag over cdc.maxLagBytes (streaming only) and over cdc.maxLagSeconds', () => {
    const bytes = (lagBytes: number, state = 'streaming') => streamHealth(measures({ state, slot: { name: 's1', exists: true, walStatus: 'reserved', lagBytes, safeWalBytes: null, keepLimitBytes: null } }), thresholds);
    expect(bytes(1024 * 1024).health).toBe('streaming');
    expect(bytes(1024 * 1024 + 1).problems).toEqual(['lag 1.0 MB is above cdc.maxLagBytes 1.0 MB']);
    expect(bytes(10 * 1024 * 1024, 'paused').problems).toEqual([]);
    expect(streamHealth(measures({ lagSeconds: 30, waitMs: 60_000 }), thresholds).health).toBe('streaming');
    expect(streamHealth(measures({ lagSeconds: 30.5, waitMs: 60_000 }), thresholds).problems).toEqual(['lag 30.5 s is above cdc.maxLagSeconds 30']);
  });

  it("the DDL's problems are the group's, in order after the slot's and the subscription's", () => {
    const r = streamHealth(measures({ ddlProblems: ['DDL x not applied'], applyErrors: 1 }), thresholds);
    expect(r.health).toBe('failing');
    expect(r.problems[1]).toBe('DDL x not applied');
  });
});
