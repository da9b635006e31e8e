import { describe, expect, it } from 'vitest';
import { blockBounds, keyBounds, partCondition, partCount } from '../../src/core/parts.js';

describe('table parts', () => {
  it('splits above the threshold, capped', () => {
    expect(partCount(10, 100, 16)).toBe(1);
    expect(partCount(1000, 100, 16)).toBe(10);
    expect(partCount(100000, 100, 16)).toBe(16);
    expect(partCount(1000, 100, 1)).toBe(1);
  });

  it('spreads key bounds evenly and never repeats one', () => {
    expect(keyBounds(1n, 100n, 4)).toEqual([25n, 50n, 75n]);
    expect(keyBounds(1n, 3n, 8)).toEqual([1n, 2n]);
    expect(keyBounds(5n, 5n, 4)).toEqual([]);
    expect(blockBounds(1000, 4)).toEqual([250, 500, 750]);
    expect(blockBounds(2, 4)).toEqual([]);
  });

  it('opens the first and last ranges so no row falls outside', () => {
    const plan = { kind: 'key' as const, column: 'id', type: 'bigint', bounds: [25n, 50n] };
    expect([0, 1, 2].map((i) => partCondition(plan, i, '"id"'))).toEqual(['"id" < 25', '"id" >= 25 AND "id" < 50', '"id" >= 50']);
    const ctid = { kind: 'ctid' as const, bounds: [100] };
    expect([0, 1].map((i) => partCondition(ctid, i))).toEqual([`ctid < '(100,0)'::tid`, `ctid >= '(100,0)'::tid`]);
  });
});
