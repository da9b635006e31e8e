import pg from 'pg';
import { afterAll } from 'vitest';
import { findInstall, startCluster, type ClusterOptions, type LocalCluster } from '../../src/local/cluster.js';

/**
 * Real PostgreSQL servers for tests. Each call starts a fresh cluster on a free port (so test
 * files can run in parallel) and registers its removal when the file's tests end.
 */
const started = new Set<LocalCluster>();

// Registered when a test file imports the harness, so it runs after that file's tests whether
// the servers were started in a hook or inside a test.
afterAll(async () => {
  await Promise.all([...started].map((c) => c.destroy()));
  started.clear();
});

export async function startServer(
  major: number,
  name = 'test',
  settings?: Record<string, string | number>,
  more: Omit<ClusterOptions, 'major' | 'name' | 'settings'> = {},
): Promise<LocalCluster> {
  const cluster = await startCluster({ major, name, settings, ...more });
  started.add(cluster);
  return cluster;
}

export function hasMajor(major: number): boolean {
  return findInstall(major) !== undefined;
}

/** Run SQL on a cluster's database as the superuser. */
export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, async (client) => (await client.query<T>(text, params)).rows);
}

/** Run something with one open client on a database. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Run something with one open client on each of two databases. */
export async function withClients<T>(a: string, b: string, fn: (a: pg.Client, b: pg.Client) => Promise<T>): Promise<T> {
  const ca = new pg.Client({ connectionString: a });
  const cb = new pg.Client({ connectionString: b });
  // A server stopped under an open session must fail the next query, not crash the test run.
  for (const c of [ca, cb]) c.on('error', () => {});
  try {
    await Promise.all([ca.connect(), cb.connect()]);
    return await fn(ca, cb);
  } finally {
    await Promise.all([ca.end().catch(() => {}), cb.end().catch(() => {})]);
  }
}

export async function createDatabase(cluster: LocalCluster, name: string): Promise<string> {
  await sql(cluster.url(), `CREATE DATABASE "${name}"`);
  return cluster.url(name);
}

export interface Pair {
  source: LocalCluster;
  target: LocalCluster;
  sourceUrl: string;
  targetUrl: string;
}

/**
 * A source and a target cluster, each with an empty database `db` and the sample's application
 * role, ready for a migration.
 */
export async function startPair(sourceMajor: number, targetMajor: number, db = 'shop'): Promise<Pair> {
  const [source, target] = await Promise.all([startServer(sourceMajor, `src${sourceMajor}`), startServer(targetMajor, `tgt${targetMajor}`)]);
  for (const c of [source, target]) {
    await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'app-secret-pw'`);
    await sql(c.url(), `CREATE DATABASE ${db}`);
  }
  return { source, target, sourceUrl: source.url(db), targetUrl: target.url(db) };
}

/** The sample schema and data of the demo, on a database of a test server. */
export async function seedSample(url: string, scale: number): Promise<void> {
  const { createSample } = await import('../../src/local/sample.js');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await createSample(client, scale);
  } finally {
    await client.end();
  }
}
