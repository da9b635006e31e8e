/**
 * Sequence arithmetic with the sign of the increment. A sequence moves in the direction of its
 * increment: an ascending one (increment > 0) towards its maximum, a descending one (increment < 0)
 * towards its minimum. "Ahead", "behind" and "never backwards" are all measured in that direction,
 * never numerically: for a descending sequence at -100 on the source, a target at -50 is behind
 * (it would hand out -51, which the source already used).
 *
 * A cycling sequence restarts at the other end after its bound. Positions are compared within
 * one cycle: a target that has wrapped around and a source that has not cannot be told apart from
 * their values alone; within a cycle the same rules hold.
 */

export interface SequenceShape {
  increment: bigint;
  min: bigint;
  max: bigint;
  cycle: boolean;
}

export interface SequencePosition {
  lastValue: bigint;
  isCalled: boolean;
}

/** +1 for an ascending sequence, -1 for a descending one. */
export function direction(shape: SequenceShape): 1n | -1n {
  return shape.increment < 0n ? -1n : 1n;
}

/**
 * The value nextval() would return next, in the sequence's own direction; `undefined` when a
 * non-cycling sequence is exhausted. A cycling sequence wraps to the other end.
 */
export function nextValue(shape: SequenceShape, p: SequencePosition): bigint | undefined {
  if (!p.isCalled) return p.lastValue;
  const n = p.lastValue + shape.increment;
  if (n > shape.max) return shape.cycle ? shape.min : undefined;
  if (n < shape.min) return shape.cycle ? shape.max : undefined;
  return n;
}

/**
 * How far position `b` is ahead of `a` in the sequence's direction: > 0 ahead, 0 level, < 0
 * behind. An exhausted sequence is as far ahead as it can be.
 */
export function compareProgress(shape: SequenceShape, a: SequencePosition, b: SequencePosition): number {
  const d = direction(shape);
  // The position reached: the last value handed out, or one step before the value not yet used.
  const reached = (p: SequencePosition) => (p.isCalled ? p.lastValue : p.lastValue - shape.increment);
  const diff = (reached(b) - reached(a)) * d;
  return diff > 0n ? 1 : diff < 0n ? -1 : 0;
}

/** The target is behind the source: its next value is one the source may already have handed out. */
export function isBehind(shape: SequenceShape, source: SequencePosition, target: SequencePosition | undefined): boolean {
  if (!target) return true;
  return compareProgress(shape, source, target) < 0;
}

export type CarryResult =
  | { ok: true; value: bigint; isCalled: boolean; kept?: 'target-ahead'; marginDropped?: boolean }
  | { ok: false; reason: string };

/**
 * The value a target sequence is set to from the source's position, with a safety margin in the
 * sequence's direction. Never backwards (when `target` is given): a target already ahead in the
 * direction of the increment keeps its value. Past its bound a non-cycling sequence is refused (the
 * application would get "reached maximum value" at once); a cycling one drops the margin rather
 * than wrap into values that may still be in use.
 */
export function carryValue(shape: SequenceShape, source: SequencePosition, margin: bigint, target?: SequencePosition): CarryResult {
  const m = margin > 0n ? margin : 0n;
  let value = source.lastValue + direction(shape) * m;
  let marginDropped = false;
  if (value > shape.max || value < shape.min) {
    if (!shape.cycle) {
      const bound = value > shape.max ? `maximum ${shape.max}` : `minimum ${shape.min}`;
      return { ok: false, reason: `would pass its ${bound} (value ${value})` };
    }
    value = source.lastValue;
    marginDropped = m > 0n;
  }
  let isCalled = m > 0n && !marginDropped ? true : source.isCalled;
  if (target && compareProgress(shape, { lastValue: value, isCalled }, target) > 0) {
    return { ok: true, value: target.lastValue, isCalled: target.isCalled, kept: 'target-ahead', marginDropped };
  }
  if (value !== source.lastValue) isCalled = true;
  return { ok: true, value, isCalled, marginDropped };
}
