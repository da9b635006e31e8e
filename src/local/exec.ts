import pg from 'pg';

/** Run one SQL script on a local server and close the connection (demo, benchmarks). */
export async function exec(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
