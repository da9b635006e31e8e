import { INTEGER_TYPES, keyBounds } from './parts.js';

/**
 * Chunk boundaries for verify (pure): the source's histogram of a table's key, cut finer where its
 * buckets hold too many rows for one chunk.
 */
/**
 * Key types whose values map onto integers in the same order: integers themselves, and uuids as
 * the 128-bit numbers they are (PostgreSQL orders them byte by byte, which is numeric order).
 */
const AS_INTEGER: Record<string, { toInt: (v: string) => bigint; fromInt: (n: bigint) => string }> = {
  ...Object.fromEntries(INTEGER_TYPES.map((t) => [t, { toInt: BigInt, fromInt: String }])),
  uuid: {
    toInt: (v) => BigInt(`0x${v.replace(/-/g, '')}`),
    fromInt: (n) => n.toString(16).padStart(32, '0').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
  },
};
/** More chunks than this and the bounds array itself (a query parameter) grows past a few MB. */
const MAX_CHUNKS = 50_000;

/**
 * The histogram has at most default_statistics_target (100) equal-row buckets whatever the table's
 * size, so a billion-row table would get chunks of 10 M rows: one changed row would mean reading
 * 10 M rows again, and every chunk of a busy table would see one. Buckets of an integer or uuid
 * key are cut into equal key widths of about chunkRows rows each, assuming the keys are spread
 * evenly within a bucket (the buckets themselves follow the real distribution; random uuids are
 * even). Other key types keep the histogram's buckets.
 */
export function subdivide(histogram: string[], type: string, rowEstimate: number, chunkRows: number): string[] {
  const perBucket = rowEstimate / (histogram.length - 1);
  const pieces = Math.min(Math.round(perBucket / chunkRows), Math.floor(MAX_CHUNKS / (histogram.length - 1)));
  const as = AS_INTEGER[type];
  if (!as || pieces <= 1) return histogram;
  const values = histogram.map(as.toInt);
  const out = values.flatMap((lo, i) => (i + 1 < values.length ? [lo, ...keyBounds(lo, values[i + 1], pieces)] : [lo]));
  return dedupe(out.map(as.fromInt));
}

/** Adjacent duplicates removed (boundaries are sorted, so equal values are neighbours). */
export function dedupe(values: string[]): string[] {
  return values.filter((v, i) => i === 0 || v !== values[i - 1]);
}
