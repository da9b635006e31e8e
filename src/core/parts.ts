/**
 * Splitting a large table into parts copied concurrently (pure). A table above the plan's
 * threshold gets ceil(size / threshold) parts, at most `maxParts`: ranges of physical blocks
 * (ctid) from a PostgreSQL 14 source on, where a TID Range Scan reads only its part's pages;
 * before 14, ranges of its integer primary key when it has one (evenly between the key's minimum
 * and maximum; a ctid condition there filters a scan of the whole table), ctid ranges otherwise.
 * The first and last ranges are open, so rows outside the sampled bounds are never missed.
 */
/** Key types that split by arithmetic on their values (format_type names). */
export const INTEGER_TYPES = ['smallint', 'integer', 'bigint'];

export type PartPlan =
  | { kind: 'whole' }
  | { kind: 'key'; column: string; type: string; bounds: bigint[] }
  | { kind: 'ctid'; bounds: number[] };

export function partCount(bytes: number, threshold: number, maxParts: number): number {
  if (bytes <= threshold || maxParts < 2) return 1;
  return Math.min(maxParts, Math.ceil(bytes / threshold));
}

export function keyBounds(min: bigint, max: bigint, parts: number): bigint[] {
  if (parts < 2 || max <= min) return [];
  const span = max - min;
  const out: bigint[] = [];
  for (let i = 1; i < parts; i++) {
    const b = min + (span * BigInt(i)) / BigInt(parts);
    if (out.length === 0 || b > out[out.length - 1]) out.push(b);
  }
  return out;
}

export function blockBounds(blocks: number, parts: number): number[] {
  if (parts < 2 || blocks < parts) return [];
  return Array.from({ length: parts - 1 }, (_, i) => Math.floor((blocks * (i + 1)) / parts));
}

/** The WHERE condition of part `index` (0-based) of `count` parts; identifiers already quoted. */
export function partCondition(plan: Exclude<PartPlan, { kind: 'whole' }>, index: number, quotedColumn?: string): string {
  const lo = index === 0 ? null : plan.bounds[index - 1];
  const hi = index === plan.bounds.length ? null : plan.bounds[index];
  const parts: string[] = [];
  if (plan.kind === 'key') {
    if (lo !== null) parts.push(`${quotedColumn} >= ${lo}`);
    if (hi !== null) parts.push(`${quotedColumn} < ${hi}`);
  } else {
    if (lo !== null) parts.push(`ctid >= '(${lo},0)'::tid`);
    if (hi !== null) parts.push(`ctid < '(${hi},0)'::tid`);
  }
  return parts.length ? parts.join(' AND ') : 'true';
}
