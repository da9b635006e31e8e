import { describe, expect, it } from 'vitest';
import { blockBounds, keyBounds, partCondition, partCount } from '../../src/core/parts.js';
import { subdivide } from '../../src/core/chunk-bounds.js';

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

describe('verify chunk bounds from a histogram', () => {
  it('cuts integer-key buckets to about chunkRows rows each, keeping the histogram bounds', () => {
    // 4 buckets of 250,000 rows each, chunkRows 100,000: 3 pieces per bucket.
    expect(subdivide(['0', '300', '600', '900', '1200'], 'bigint', 1_000_000, 100_000)).toEqual(
      ['0', '100', '200', '300', '400', '500', '600', '700', '800', '900', '1000', '1100', '1200'],
    );
    // Negative keys, a bucket narrower than its pieces: no bound repeats.
    expect(subdivide(['-10', '-8', '10'], 'integer', 600, 100)).toEqual(['-10', '-9', '-8', '-2', '4', '10']);
  });

  it('leaves small tables and non-integer keys to the histogram, and caps the count', () => {
    expect(subdivide(['0', '50', '100'], 'bigint', 1000, 5000)).toEqual(['0', '50', '100']);
    expect(subdivide(['a', 'm', 'z'], 'text', 10_000_000, 1000)).toEqual(['a', 'm', 'z']);
    expect(subdivide(['0', '1000000000000'], 'bigint', 1e12, 1).length).toBe(50_001);
  });
});

describe('verify chunk bounds of a uuid key', () => {
  it('cuts between uuids as 128-bit numbers and prints them back as uuids', () => {
    const bounds = subdivide(['00000000-0000-0000-0000-000000000000', '80000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'], 'uuid', 800, 100);
    expect(bounds).toEqual([
      '00000000-0000-0000-0000-000000000000',
      '20000000-0000-0000-0000-000000000000',
      '40000000-0000-0000-0000-000000000000',
      '60000000-0000-0000-0000-000000000000',
      '80000000-0000-0000-0000-000000000000',
      '9fffffff-ffff-ffff-ffff-ffffffffffff',
      'bfffffff-ffff-ffff-ffff-ffffffffffff',
      'dfffffff-ffff-ffff-ffff-ffffffffffff',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
    ]);
  });
});
