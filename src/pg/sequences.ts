import type pg from 'pg';
import { failure } from '../core/errors.js';
import { qualify, type QualifiedName } from '../core/ident.js';
import { carryValue, direction, type SequencePosition, type SequenceShape } from '../core/sequences.js';
import { listSequences, type SequenceInfo } from './catalog.js';

/**
 * Nothing replicates sequences (design: correctness core 3). Every sequence — owned by a serial
 * column, backing an identity column, or owned by nothing — is set on the target from the source's
 * current value, plus an optional margin, refusing to go past the type's maximum.
 */
export interface SequenceSync {
  sequence: string;
  sourceValue: string;
  targetValue: string;
  isCalled: boolean;
}

export async function readSequence(c: pg.Client, s: QualifiedName): Promise<SequencePosition> {
  const r = await c.query<{ last_value: string; is_called: boolean }>(`SELECT last_value::text, is_called FROM ${qualify(s)}`);
  return { lastValue: BigInt(r.rows[0].last_value), isCalled: r.rows[0].is_called };
}

export function shapeOf(s: SequenceInfo): SequenceShape {
  return { increment: BigInt(s.increment), min: BigInt(s.minValue), max: BigInt(s.maxValue), cycle: s.cycle };
}

async function setSequence(c: pg.Client, s: QualifiedName, value: bigint, isCalled: boolean): Promise<void> {
  await c.query('SELECT pg_catalog.setval($1::regclass, $2::bigint, $3)', [qualify(s), value.toString(), isCalled]);
}

/**
 * Set every sequence of the source (or those `only` keeps) on the target from the source's
 * position plus `margin` in the sequence's direction. With neverBackwards, a target already ahead
 * (in the direction of its increment) keeps its value.
 */
export async function syncSequences(
  source: pg.Client,
  target: pg.Client,
  margin = 0n,
  only?: (s: SequenceInfo) => boolean,
  options: { neverBackwards?: boolean } = {},
): Promise<SequenceSync[]> {
  const sequences = (await listSequences(source)).filter((s) => !only || only(s));
  const done: SequenceSync[] = [];
  for (const s of sequences) {
    const from = await readSequence(source, s);
    const current = options.neverBackwards ? await readSequence(target, s) : undefined;
    const r = carryValue(shapeOf(s), from, margin, current);
    if (!r.ok) throw failure('sequence.limit', `sequence ${qualify(s)} ${r.reason}`, 'lower cutover.sequenceMargin or widen the sequence type');
    await setSequence(target, s, r.value, r.isCalled);
    done.push({ sequence: qualify(s), sourceValue: from.lastValue.toString(), targetValue: r.value.toString(), isCalled: r.isCalled });
  }
  return done;
}

/**
 * Before the window: each target sequence moved ahead of the source by its own margin (in its
 * direction), never backwards; a sequence the margin would push past its bound is left for the
 * window's exact carry. Returns how many were moved.
 */
export async function prebumpSequences(
  target: pg.Client,
  sequences: Array<{ sequence: SequenceInfo; position: SequencePosition; margin: bigint }>,
): Promise<number> {
  let moved = 0;
  for (const { sequence, position, margin } of sequences) {
    const r = carryValue(shapeOf(sequence), position, margin, await readSequence(target, sequence));
    if (!r.ok || r.kept) continue;
    await setSequence(target, sequence, r.value, r.isCalled);
    moved++;
  }
  return moved;
}

/** The distance a sequence moved from `a` to `b`, in its own direction (0 when it did not move or cycled). */
export function consumed(s: SequenceInfo, a: SequencePosition, b: SequencePosition): bigint {
  const d = (b.lastValue - a.lastValue) * direction(shapeOf(s));
  return d > 0n ? d : 0n;
}
