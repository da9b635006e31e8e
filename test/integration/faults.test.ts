import { execFile } from 'node:child_process';
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
import { seedSample, sql, startPair, type Pair } from '../harness/servers.js';

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

function cli(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['bin/pgshift.js', ...args], { env: { ...process.env, SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl } }, () => {});
    child.on('exit', (code, signal) => resolve(signal ? -1 : (code ?? 1)));
  });
}

describe('faults during CDC', () => {
  it('the pgshift process killed while starting CDC: re-running the command finishes it', async () => {
    // The CLI reaches the source through the plan's URL, so the subscription connects directly.
    const child = execFile(process.execPath, ['bin/pgshift.js', 'cdc', 'start', '-c', planFile], { env: { ...process.env, SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl } });
    await new Promise((r) => setTimeout(r, 400));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(await cli(['cdc', 'start', '-c', planFile])).toBe(0);
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
