import { describe, expect, it } from 'vitest';
import { carryValue, compareProgress, isBehind, nextValue, type SequenceShape } from '../../src/core/sequences.js';

const up: SequenceShape = { increment: 1n, min: 1n, max: 9223372036854775807n, cycle: false };
const down: SequenceShape = { increment: -1n, min: -9223372036854775808n, max: -1n, cycle: false };
const down5: SequenceShape = { increment: -5n, min: -1000n, max: 0n, cycle: false };
const cyc: SequenceShape = { increment: 3n, min: 1n, max: 10n, cycle: true };
const cycDown: SequenceShape = { increment: -2n, min: -10n, max: 10n, cycle: true };
const at = (lastValue: bigint, isCalled = true) => ({ lastValue, isCalled });

describe('sequences: the next value', () => {
  it('steps in the direction of the increment and wraps only a cycling sequence', () => {
    expect(nextValue(up, at(5n))).toBe(6n);
    expect(nextValue(up, at(5n, false))).toBe(5n);
    expect(nextValue(down, at(-5n))).toBe(-6n);
    expect(nextValue(down5, at(-1000n))).toBeUndefined();
    expect(nextValue(cyc, at(9n))).toBe(1n);
    expect(nextValue(cycDown, at(-9n))).toBe(10n);
  });
});

describe('sequences: ahead and behind with the sign of the increment', () => {
  it('an ascending target at a lower value is behind', () => {
    expect(isBehind(up, at(100n), at(50n))).toBe(true);
    expect(isBehind(up, at(100n), at(150n))).toBe(false);
    expect(isBehind(up, at(100n), at(100n))).toBe(false);
    expect(isBehind(up, at(100n), undefined)).toBe(true);
  });

  it('a descending target at a higher value is behind (the numeric comparison got this wrong)', () => {
    expect(isBehind(down, at(-100n), at(-50n))).toBe(true);
    expect(isBehind(down, at(-100n), at(-150n))).toBe(false);
    expect(isBehind(down5, at(-100n), at(-100n))).toBe(false);
  });

  it('is_called counts: a value not yet handed out is one step before it', () => {
    // Source handed out 10; target will hand out 10 next: behind.
    expect(isBehind(up, at(10n), at(10n, false))).toBe(true);
    // Source will hand out 11 next, target handed out 10: level.
    expect(compareProgress(up, at(11n, false), at(10n))).toBe(0);
    expect(compareProgress(down5, at(-95n, false), at(-90n))).toBe(0);
    expect(isBehind(down5, at(-90n), at(-90n, false))).toBe(true);
  });
});

describe('sequences: the value carried at the cut-over', () => {
  it('adds the margin in the direction of the increment', () => {
    expect(carryValue(up, at(100n), 1000n)).toEqual({ ok: true, value: 1100n, isCalled: true, marginDropped: false });
    expect(carryValue(down, at(-100n), 1000n)).toEqual({ ok: true, value: -1100n, isCalled: true, marginDropped: false });
    expect(carryValue(up, at(1n, false), 0n)).toEqual({ ok: true, value: 1n, isCalled: false, marginDropped: false });
  });

  it('never moves a target backwards, in either direction', () => {
    expect(carryValue(up, at(100n), 0n, at(500n))).toMatchObject({ ok: true, value: 500n, kept: 'target-ahead' });
    expect(carryValue(up, at(100n), 0n, at(50n))).toMatchObject({ ok: true, value: 100n });
    // Descending: the target at -50 is behind the source at -100, so it is set to -100.
    expect(carryValue(down, at(-100n), 0n, at(-50n))).toMatchObject({ ok: true, value: -100n });
    expect(carryValue(down, at(-100n), 0n, at(-500n))).toMatchObject({ ok: true, value: -500n, kept: 'target-ahead' });
  });

  it('refuses a non-cycling sequence past its bound, and drops the margin of a cycling one', () => {
    expect(carryValue(down5, at(-990n), 100n)).toEqual({ ok: false, reason: 'would pass its minimum -1000 (value -1090)' });
    expect(carryValue({ ...up, max: 150n }, at(100n), 100n)).toMatchObject({ ok: false, reason: expect.stringMatching(/maximum 150/) });
    expect(carryValue(cyc, at(9n), 5n)).toEqual({ ok: true, value: 9n, isCalled: true, marginDropped: true });
  });
});
