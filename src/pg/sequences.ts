import type pg from 'pg';
import { failure } from '../core/errors.js';
import { qualify, type QualifiedName } from '../core/ident.js';
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

export async function readSequence(c: pg.Client, s: QualifiedName): Promise<{ lastValue: bigint; isCalled: boolean }> {
  const r = await c.query<{ last_value: string; is_called: boolean }>(`SELECT last_value::text, is_called FROM ${qualify(s)}`);
  return { lastValue: BigInt(r.rows[0].last_value), isCalled: r.rows[0].is_called };
}

/** Move a target sequence up to `value`, never down (it may already be further, from an earlier run). */
export async function raiseSequenceTo(c: pg.Client, s: QualifiedName, value: bigint): Promise<void> {
  await c.query(`SELECT pg_catalog.setval($1::regclass, GREATEST($2::bigint, (SELECT last_value FROM ${qualify(s)})), true)`, [qualify(s), value.toString()]);
}

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
    const { lastValue, isCalled } = await readSequence(source, s);
    let value = lastValue + (margin > 0n ? margin : 0n);
    const max = BigInt(s.maxValue);
    if (value > max) {
      throw failure('sequence.limit', `sequence ${qualify(s)} would pass its maximum ${s.maxValue} (value ${value})`, 'lower cutover.sequenceMargin or widen the sequence type');
    }
    // A pre-bumped target sequence is already ahead: never move it back.
    if (options.neverBackwards) {
      const current = await readSequence(target, s);
      if (current.isCalled && current.lastValue > value) value = current.lastValue;
    }
    // With a margin the next nextval() must return value + 1, so mark it called.
    const called = margin > 0n || value !== lastValue ? true : isCalled;
    await target.query('SELECT pg_catalog.setval($1::regclass, $2::bigint, $3)', [qualify(s), value.toString(), called]);
    done.push({ sequence: qualify(s), sourceValue: lastValue.toString(), targetValue: value.toString(), isCalled: called });
  }
  return done;
}
