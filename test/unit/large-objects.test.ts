import { describe, expect, it } from 'vitest';
import { describeLargeObjectChanges, largeObjectChanges } from '../../src/core/large-objects.js';

describe('large objects: what the cut-over carries', () => {
  it('copies the missing and the different, removes what the source no longer has', () => {
    const source = new Map([['1', 'aa app'], ['2', 'bb app'], ['4', 'dd app']]);
    const target = new Map([['1', 'aa app'], ['2', 'old app'], ['3', 'cc app']]);
    const c = largeObjectChanges(source, target);
    expect(c).toEqual({ copy: ['2', '4'], remove: ['3'] });
    expect(describeLargeObjectChanges(c)).toBe('2 missing or different on the target, 1 only on the target');
    expect(largeObjectChanges(source, new Map(source))).toEqual({ copy: [], remove: [] });
  });

  it('an owner change alone is a difference', () => {
    expect(largeObjectChanges(new Map([['9', 'aa new_owner']]), new Map([['9', 'aa old_owner']])).copy).toEqual(['9']);
  });
});
