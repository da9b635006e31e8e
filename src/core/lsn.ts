/**
 * PostgreSQL log sequence numbers ("16/B374D848") as 64-bit integers, so that positions can be
 * compared and subtracted exactly (the high and low halves are both 32-bit hex).
 */
import { failure } from './errors.js';

export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  const m = LSN_TEXT.exec(text.trim());
  if (!m) throw failure('lsn.syntax', `not an LSN: ${JSON.stringify(text)}`, 'a server or the journal returned a position pgshift cannot read; report it with the output of pgshift status --json');
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  const hi = (lsn >> 32n).toString(16).toUpperCase();
  const lo = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${hi}/${lo}`;
}

/** Bytes from `from` to `to`; never negative (a consumer ahead of a sampled head is not behind). */
export function lsnDistance(from: Lsn, to: Lsn): bigint {
  return to > from ? to - from : 0n;
}
