import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import type { LocalCluster } from '../../src/local/cluster.js';
import { startPgBouncer, type LocalBouncer } from '../../src/local/pgbouncer.js';
import { createSample, SampleWriter } from '../../src/local/sample.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { any, holdLocks, runCli, until, writableAfter } from '../harness/faults.js';
import { sql, startServer, withClient } from '../harness/servers.js';

/**
 * Rollback dies like the cut-over can: on real PostgreSQL 15 → 17 servers, cut over through
 * PgBouncer with cutover.rollback on and the application writing to the target through it, then
 * `pgshift rollback` (the CLI, as a child process) is held inside a step by a lock the test
 * holds and interrupted:
 *
 *   fence (before the decision) × SIGKILL   the watchdog undoes it: PgBouncer resumed, the
 *                                           application writes on the target again
 *   fence × SIGINT, SIGTERM                 pgshift undoes it itself
 *   switch (after the decision) × SIGKILL   the watchdog completes it: the target sealed, the
 *                                           application writes on the source, nothing lost
 */
const APP_PW = 'app-secret-pw';
const BOUND_MS = 15_000; // guardSeconds (5) + the watchdog's start and recovery + slack on a busy machine
const DB = 'rb_faults';
let source: LocalCluster;
let target: LocalCluster;
let bouncer: LocalBouncer;
let writer: SampleWriter;
let planFile: string;
let env: Record<string, string>;
const measured: Array<{ step: string; kind: string; outcome: string; ms: number }> = [];

beforeAll(async () => {
  [source, target] = await Promise.all([startServer(15, 'rbf-src'), startServer(17, 'rbf-tgt')]);
  for (const c of [source, target]) {
    await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD '${APP_PW}'`);
    await sql(c.url(), `CREATE DATABASE ${DB}`);
  }
  await withClient(source.url(DB), async (c) => {
    await createSample(c, 0.02);
    await c.query(`GRANT INSERT, SELECT ON ALL TABLES IN SCHEMA shop TO shop_app; GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO shop_app`);
  });
  bouncer = await startPgBouncer({ databases: { app: { host: '127.0.0.1', port: source.port, dbname: DB, user: 'shop_app', password: APP_PW } } });
  env = { ...process.env, S: source.url(DB), T: target.url(DB) } as Record<string, string>;
  planFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-rollback-faults-')), 'migration.yml');
  writeFileSync(
    planFile,
    `version: 1
name: ${DB}
source: { url: "\${S}" }
target: { url: "\${T}" }
cutover:
  fence: pgbouncer
  roles: [shop_app]
  pgbouncer: { adminUrl: "${bouncer.adminUrl}", database: app, configFile: "${bouncer.configFile}" }
  rollback: true
  maxLagBytes: 1GB
  verifyMaxAgeMinutes: 0
  guardSeconds: 5
  lockTimeoutSeconds: 60
  lockAttempts: 1
  timeoutSeconds: 120
  sequenceSeconds: 120
  finalCheckSeconds: 120
`,
  );
  const ctx = phaseContext(parsePlan(`version: 1\nname: ${DB}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\n`, 'plan', env), silentLogger);
  await runFullLoad(ctx);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 30_000);
  writer = new SampleWriter(bouncer.url('app', 'shop_app'), 2, 10);
  writer.start();
  // The cut-over dies in its switch and its watchdog completes it: the rollback must undo what a
  // recovered cut-over recorded, not only what one that finished by itself did.
  const held = await holdLocks(source.url(DB), ['LOCK TABLE pg_catalog.pg_db_role_setting IN SHARE MODE']);
  const cut = runCli(['cutover', '--yes', '-c', planFile], env);
  try {
    await until('the cut-over inside its switch', async () => {
      if (cut.child.exitCode !== null) throw new Error(`pgshift cutover ended before its switch: ${(await cut.exited).stderr}`);
      return any(source.url(DB), `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ~ '^ALTER ROLE'`);
    });
    process.kill(-cut.child.pid!, 'SIGKILL');
    expect((await cut.exited).signal).toBe('SIGKILL');
  } finally {
    await held.query('COMMIT').catch(() => {});
    await held.end().catch(() => {});
  }
  await until('the cut-over completed by its watchdog', async () => (await sql(target.url(DB), `SELECT 1 FROM pgshift.phase WHERE phase = 'cutover' AND state = 'done'`)).length > 0, 60_000);
  // The application now writes on the target, through the same PgBouncer database.
  await writableAfter([bouncer.url('app', 'shop_app'), target.url(DB, 'shop_app', APP_PW)], Date.now(), BOUND_MS);
}, 180_000);

afterAll(async () => {
  await writer?.stop();
  await bouncer?.stop();
});

async function rollbackState(): Promise<{ state: string; by: string | null } | undefined> {
  const [r] = await sql<{ state: string; by: string | null }>(target.url(DB), `SELECT state, coalesce(detail->>'undoneBy', detail->>'completedBy') AS by FROM pgshift.phase WHERE phase = 'rollback'`);
  return r;
}

/** The orphaned statements of a killed pgshift end before the next case. */
async function noSessionWaits(): Promise<void> {
  for (const url of [source.url(DB), target.url(DB)]) {
    await until('no pgshift session waits', async () => !(await any(url, `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pgshift%' AND wait_event_type = 'Lock'`)), 30_000);
  }
}

/** Hold pgshift in the rollback's fence (an open transaction on a table it locks on the target), interrupt it with `kind`. */
async function interruptFence(kind: 'SIGKILL' | 'SIGINT' | 'SIGTERM'): Promise<number> {
  const hold = await holdLocks(target.url(DB), ['LOCK TABLE shop.orders IN ROW EXCLUSIVE MODE']);
  const run = runCli(['rollback', '--yes', '-c', planFile], env);
  try {
    await until('pgshift inside the fence step', async () => {
      if (run.child.exitCode !== null) throw new Error(`pgshift ended before the fence: ${(await run.exited).stderr}`);
      return any(target.url(DB), `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ~ '^LOCK TABLE' AND application_name = 'pgshift fence'`);
    });
    const since = Date.now();
    if (kind === 'SIGKILL') process.kill(-run.child.pid!, 'SIGKILL');
    else run.child.kill(kind);
    // Not decided: the application writes on the target again, through PgBouncer and directly — before the hold is let go.
    const ms = await writableAfter([bouncer.url('app', 'shop_app'), target.url(DB, 'shop_app', APP_PW)], since, BOUND_MS + 10_000);
    const out = await run.exited;
    if (kind === 'SIGKILL') expect(out.signal).toBe('SIGKILL');
    else {
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toMatch(new RegExp(`rollback undone: interrupted by ${kind}`));
    }
    await until('the rollback undone', async () => (await rollbackState())?.state === 'undone', 60_000);
    expect((await rollbackState())!.by).toBe(kind === 'SIGKILL' ? 'recovery' : 'this run');
    // Nothing of the window is left: the target is not sealed, the reverse stream still runs.
    expect(await sql(target.url(DB), `SELECT count(*)::int AS n FROM pg_db_role_setting WHERE setconfig::text LIKE '%read_only%'`)).toEqual([{ n: 0 }]);
    expect(await any(source.url(DB), `SELECT 1 FROM pg_subscription WHERE subenabled`)).toBe(true);
    return ms;
  } finally {
    await hold.query('ROLLBACK').catch(() => {});
    await hold.end().catch(() => {});
    if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL');
    await noSessionWaits();
  }
}

describe('rollback fault matrix', () => {
  it('before the decision (fence) × SIGKILL, SIGINT and SIGTERM: undone, the application writes on the target again', async () => {
    for (const kind of ['SIGKILL', 'SIGINT', 'SIGTERM'] as const) {
      const ms = await interruptFence(kind);
      measured.push({ step: 'fence', kind, outcome: 'undone', ms });
      expect(ms).toBeLessThan(BOUND_MS);
    }
  }, 180_000);

  it('after the decision (switch) × SIGKILL: completed by the watchdog, the application writes on the source, nothing it wrote is lost', async () => {
    // The seal's ALTER ROLE on the target waits on the catalog the test holds.
    const hold = await holdLocks(target.url(DB), ['LOCK TABLE pg_catalog.pg_db_role_setting IN SHARE MODE']);
    const run = runCli(['rollback', '--yes', '-c', planFile], env);
    let since = 0;
    try {
      await until('pgshift inside the switch', async () => {
        if (run.child.exitCode !== null) throw new Error(`pgshift ended before the switch: ${(await run.exited).stderr}`);
        return any(target.url(DB), `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ~ '^ALTER ROLE'`);
      });
      expect((await rollbackState())!.state).toBe('running');
      since = Date.now();
      process.kill(-run.child.pid!, 'SIGKILL');
      expect((await run.exited).signal).toBe('SIGKILL');
    } finally {
      await hold.query('COMMIT').catch(() => {});
      await hold.end().catch(() => {});
    }
    await until('the rollback completed', async () => (await rollbackState())?.state === 'done', 60_000);
    expect((await rollbackState())!.by).toBe('recovery');
    const ms = await writableAfter([bouncer.url('app', 'shop_app'), source.url(DB, 'shop_app', APP_PW)], since, BOUND_MS + 10_000);
    measured.push({ step: 'switch', kind: 'SIGKILL', outcome: 'completed', ms });
    expect(ms).toBeLessThan(BOUND_MS);
    await writer.stop();
    // Every order the application committed — on the target before the rollback, on the source
    // after it — is on the source; the target is sealed for the application's role.
    const committed = writer.committedOrders.map(String);
    expect(committed.length).toBeGreaterThan(0);
    await until('the reverse stream applied', async () => (await sql<{ n: number }>(source.url(DB), 'SELECT count(*)::int AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.id = id)', [committed]))[0].n === 0, 30_000);
    expect(await any(target.url(DB), `SELECT 1 FROM pg_db_role_setting WHERE setconfig::text LIKE '%default_transaction_read_only=on%'`)).toBe(true);
    expect(await any(source.url(DB), `SELECT 1 FROM pg_subscription WHERE subenabled`)).toBe(false);
    await noSessionWaits();
  }, 180_000);

  afterAll(() => {
    if (!measured.length) return;
    const rows = measured.map((x) => `| rollback: ${x.step} | ${x.kind} | ${x.outcome} | ${x.ms} |`);
    console.log(['', '| step held | interruption | outcome | ms until the application wrote again |', '| --- | --- | --- | --- |', ...rows].join('\n'));
  });
});
