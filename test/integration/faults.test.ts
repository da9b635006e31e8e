import { execFile, type ChildProcess } from 'node:child_process';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { SampleWriter } from '../../src/local/sample.js';
import { cdcStatus, startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { testPlan, writePlanFile } from '../harness/plan.js';
import { pgbenchInit, pgbenchStart } from '../harness/load.js';
import { startProxy, type Proxy } from '../harness/proxy.js';
import { runCli } from '../harness/cli.js';
import { seedSample, sql, startPair, withClient, type Pair } from '../harness/servers.js';

/**
 * Faults during native CDC with an application writing (PostgreSQL 15 → 17): the target
 * restarting, the source restarting, the network between them dropping for a while, and the
 * pgshift process killed while it starts CDC. Each ends with the stream caught up and the data
 * equal, with nothing to do but re-run the interrupted command.
 */
let pair: Pair;
let proxy: Proxy;
let ctx: PhaseContext;
let planFile: string;

beforeAll(async () => {
  pair = await startPair(15, 17);
  await seedSample(pair.sourceUrl, 0.05);
  pgbenchInit(pair.sourceUrl, 1);
  proxy = await startProxy(pair.source.port);
  planFile = writePlanFile('');
  ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, ''), silentLogger);
  // In-process runs reach the source through the proxy (source.subscriptionConninfo).
  ctx.plan.source.subscriptionConninfo = `host=127.0.0.1 port=${proxy.port} user=postgres password=${pair.source.password} dbname=shop`;
  await runFullLoad(ctx);
});

async function underLoad(fault: () => Promise<void>): Promise<{ recoveredMs: number; committed: number; pgbench: number }> {
  // The application's writes and pgbench's, together.
  const writer = new SampleWriter(pair.source.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
  writer.start();
  const bench = pgbenchStart(pair.sourceUrl, { clients: 2, seconds: 60, rate: 200 });
  let committed = 0;
  let pgbench = 0;
  try {
    await new Promise((r) => setTimeout(r, 700));
    await fault();
    await new Promise((r) => setTimeout(r, 700));
  } finally {
    await writer.stop();
    pgbench = (await bench.stop()).transactions;
    committed = writer.committed;
  }
  const t = Date.now();
  await waitForCatchUp(ctx, 120_000);
  const recoveredMs = Date.now() - t;
  const tables = [...SAMPLE_TABLES, 'public.pgbench_accounts', 'public.pgbench_tellers', 'public.pgbench_branches', 'public.pgbench_history'];
  const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, tables), tableDigests(pair.targetUrl, tables)]);
  expect(b).toEqual(a);
  return { recoveredMs, committed, pgbench };
}

/** The CLI as a child process, its exit promised from the start (it may end before anyone waits). */
function spawnCli(args: string[]): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = execFile(process.execPath, ['bin/pgshift.js', ...args], { env: { ...process.env, SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl } }, () => {});
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

/**
 * Kill the CLI with SIGKILL at an exact point: while one of its statements waits for a lock the
 * test holds. Then the lock is released. The orphaned server session either finishes the statement
 * it had started (the crash came just after sending it) or is ended first (the crash came just
 * before), and the caller re-runs the command.
 */
async function killWhileWaiting(args: string[], statement: RegExp, client: pg.Client, orphan: 'finishes' | 'never-ran'): Promise<void> {
  const run = spawnCli(args);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const waiting = await sql<{ query: string }>(pair.targetUrl, `SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`);
    if (waiting.some((w) => statement.test(w.query))) break;
    if (run.child.exitCode !== null) throw new Error(`pgshift ${args.join(' ')} ended (exit ${run.child.exitCode}) before reaching ${statement}`);
    if (Date.now() > deadline) throw new Error(`pgshift ${args.join(' ')} never waited at ${statement}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  run.child.kill('SIGKILL');
  expect((await run.exited).signal).toBe('SIGKILL');
  if (orphan === 'never-ran') {
    await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ~ $1`, [statement.source]);
  }
  await client.query('COMMIT');
  // The orphaned session goes on once the lock is free; wait until it is gone.
  for (let i = 0; i < 500; i++) {
    const left = await sql(pair.targetUrl, `SELECT 1 FROM pg_stat_activity WHERE query ~ $1 AND state = 'active' AND pid <> pg_backend_pid()`, [statement.source]);
    if (!left.length) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the session of the killed pgshift still runs ${statement}`);
}

describe('faults during CDC', () => {
  it('the pgshift process killed while starting CDC, at two points: re-running the command finishes it', async () => {
    // The CLI reaches the source through the plan's URL, so the subscription connects directly.
    const args = ['cdc', 'start', '-c', planFile];
    await withClient(pair.targetUrl, async (lock) => {
      // 1. Killed during CREATE SUBSCRIPTION: the subscription appears afterwards, unknown to the journal.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE pg_catalog.pg_subscription IN SHARE MODE');
      await killWhileWaiting(args, /pgshift_exec_with_secret/, lock, 'finishes'); // CREATE SUBSCRIPTION, its conninfo a bound parameter
      // The orphaned statement either completed once the lock was free (the subscription exists,
      // disabled, unknown to the journal) or the server noticed its client had gone first
      // (client_connection_check_interval) and cancelled it: the re-run must cope with both.
      const created = await sql(pair.targetUrl, 'SELECT subenabled FROM pg_subscription');
      expect(created.map((c) => c.subenabled)).toEqual(created.length ? [false] : []);
      // 2. Killed after enabling it, before the journal records that the group streams.
      await lock.query('BEGIN');
      await lock.query(`SELECT 1 FROM pgshift.stream FOR UPDATE`);
      await killWhileWaiting(args, /^UPDATE "?pgshift"?\.stream/, lock, 'never-ran');
      const [stream] = await sql(pair.targetUrl, 'SELECT state FROM pgshift.stream');
      expect(stream.state).toBe('loaded');
      const [enabled] = await sql(pair.targetUrl, 'SELECT subenabled FROM pg_subscription');
      expect(enabled.subenabled).toBe(true);
    });
    // The journal still says the phase runs; status sees its process is gone.
    const journal = await runCli(['status', '--json', '-c', planFile], { SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl });
    expect(JSON.parse(journal.stdout).result.phases.find((p: { phase: string }) => p.phase === 'cdc')).toMatchObject({ state: 'interrupted' });
    const rerun = spawnCli(args);
    expect((await rerun.exited).code).toBe(0);
    // Route the stream through the proxy for the network fault below (start is idempotent).
    await startCdc(ctx);
    const status = await cdcStatus(ctx);
    expect(status.healthy).toBe(true);
    const [sub] = await sql(pair.targetUrl, 'SELECT subconninfo FROM pg_subscription');
    expect(sub.subconninfo).toContain(`port=${proxy.port}`);
  });

  it('the target restarts', async () => {
    const r = await underLoad(() => pair.target.restart());
    expect(r.committed).toBeGreaterThan(10);
    expect(r.pgbench).toBeGreaterThan(50);
  });

  it('the source restarts', async () => {
    const r = await underLoad(() => pair.source.restart());
    expect(r.committed).toBeGreaterThan(10);
  });

  it('the network between them drops for 3 seconds', async () => {
    const r = await underLoad(async () => proxy.cut(3000));
    expect(r.committed).toBeGreaterThan(10);
  });
});
