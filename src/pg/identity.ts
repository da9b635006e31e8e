import { randomUUID } from 'node:crypto';
import type pg from 'pg';

/**
 * Whether two sessions are connected to the same database of the same server, whatever the URLs
 * say (another host name, an IP address, a port forward, a pooler in front of one of them). The
 * source session takes a unique application_name for a moment and the target session looks for it
 * in its own pg_stat_activity: a server lists only its own backends (a physical standby of the
 * source, which shares its system identifier, does not list the primary's), and every role may
 * read another session's application_name and database. Nothing is written on either server.
 */
export async function sameDatabase(source: pg.Client, target: pg.Client): Promise<boolean> {
  const marker = `pgshift identity ${randomUUID()}`;
  const previous = (await source.query<{ name: string }>(`SELECT current_setting('application_name') AS name`)).rows[0].name;
  await source.query('SELECT set_config($1, $2, false)', ['application_name', marker]);
  try {
    const r = await target.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, [marker]);
    return (r.rowCount ?? 0) > 0;
  } finally {
    await source.query('SELECT set_config($1, $2, false)', ['application_name', previous]);
  }
}
