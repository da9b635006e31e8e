import { createHash } from 'node:crypto';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * An independent equality check that shares no code with pgshift's verify: every user table
 * dumped with COPY … ORDER BY its primary key (or all columns) on both sides and hashed. In text by default; in binary
 * for a server older than 12, which prints floats with fewer digits than a newer one (binary
 * holds the type OIDs of enum arrays and composites, so use it only for tables without those).
 */
export async function tableDigests(url: string, tables: string[], format: 'text' | 'binary' = 'text'): Promise<Map<string, { rows: number; sha: string }>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out = new Map<string, { rows: number; sha: string }>();
    for (const t of tables) {
      const cols = await c.query<{ attname: string }>(
        `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attname`,
        [t],
      );
      const list = cols.rows.map((r) => `"${r.attname.replace(/"/g, '""')}"`).join(', ');
      // Rows in primary-key order where there is one (point, box… have no ordering), else by every column.
      const pk = await c.query<{ attname: string }>(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attname`,
        [t],
      );
      const order = pk.rows.length ? pk.rows.map((r) => `"${r.attname.replace(/"/g, '""')}"`).join(', ') : list;
      const hash = createHash('sha256');
      let rows = 0;
      const stream = c.query(copyTo(`COPY (SELECT ${list} FROM ${t} ORDER BY ${order}) TO STDOUT${format === 'binary' ? ' (FORMAT binary)' : ''}`));
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        if (format === 'text') rows += (chunk as Buffer).toString().split('\n').length - 1;
      }
      if (format === 'binary') rows = Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
      out.set(t, { rows, sha: hash.digest('hex') });
    }
    return out;
  } finally {
    await c.end();
  }
}

export const SAMPLE_TABLES = [
  'public.countries',
  'shop.customers',
  'shop.products',
  'shop.orders',
  'shop.order_items',
  'shop.events',
  'shop.events_2025',
  'shop.events_2026',
  'shop.events_later',
  'shop."Audit Log"',
];
