import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { qualify, quoteIdent, type QualifiedName } from '../core/ident.js';

/**
 * Streaming COPY from the source straight into the target: no intermediate file, and memory
 * bounded by the stream buffers whatever the table size. Text format, because binary COPY embeds
 * type OIDs (enums, arrays of user types) that differ between two servers.
 */
export interface CopyResult {
  rows: number;
  bytes: number;
}

export async function copyTable(
  source: pg.Client,
  target: pg.Client,
  table: QualifiedName,
  columns: string[],
  onBytes?: (bytes: number) => void,
  /** A part of the table: a WHERE condition on the source (key or ctid range). */
  where?: string,
  /**
   * COPY … FREEZE: the rows are written frozen, so the index builds and ANALYZE that read them
   * next do not set hint bits (and rewrite every page). Only valid in the transaction that
   * truncated the table.
   */
  freeze = false,
): Promise<CopyResult> {
  const cols = columns.map(quoteIdent).join(', ');
  const out = source.query(
    copyTo(where ? `COPY (SELECT ${cols} FROM ONLY ${qualify(table)} WHERE ${where}) TO STDOUT` : `COPY ${qualify(table)} (${cols}) TO STDOUT`),
  );
  const into = target.query(copyFrom(`COPY ${qualify(table)} (${cols}) FROM STDIN${freeze ? ' WITH (FREEZE)' : ''}`));
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      onBytes?.(chunk.length);
      done(null, chunk);
    },
  });
  await pipeline(out, meter, into);
  return { rows: Number(into.rowCount ?? 0), bytes };
}
