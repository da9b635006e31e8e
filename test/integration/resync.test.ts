import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { SampleWriter } from '../../src/local/sample.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { resyncTables, restartCdc } from '../../src/phases/resync.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { runVerify } from '../../src/phases/verify.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { testPlan } from '../harness/plan.js';
import { sql, startPair, type Pair, seedSample } from '../harness/servers.js';

/**
 * Repairs while the application writes (PostgreSQL 13 → 17): a resync of damaged tables, a
 * partial restart of one group, a full restart that first preserves the failure state.
 */
let pair: Pair;
let ctx: PhaseContext;

beforeAll(async () => {
  pair = await startPair(13, 17);
  await seedSample(pair.sourceUrl, 0.05);
  ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, 'groups:\n  - { name: orders, tables: [shop.orders, shop.order_items] }\n  - { name: rest, tables: ["*.*"] }'), silentLogger);
  await runFullLoad(ctx);
  await startCdc(ctx);
});

async function writing<T>(fn: () => Promise<T>): Promise<{ value: T; committed: number }> {
  const writer = new SampleWriter(pair.source.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
  writer.start();
  try {
    await new Promise((r) => setTimeout(r, 300));
    const value = await fn();
    await new Promise((r) => setTimeout(r, 300));
    return { value, committed: writer.committed };
  } finally {
    await writer.stop();
  }
}

async function equalNow() {
  await waitForCatchUp(ctx, 60_000);
  const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, SAMPLE_TABLES), tableDigests(pair.targetUrl, SAMPLE_TABLES)]);
  expect(b).toEqual(a);
}

describe('repairs under load', () => {
  it('resync: damaged tables copied again while the rest keeps streaming, nothing lost or doubled', async () => {
    // Damage on the target, as a bad manual fix would.
    await sql(pair.targetUrl, `SET session_replication_role = replica; DELETE FROM shop.customers WHERE id % 7 = 0; UPDATE shop.products SET price = 0`);
    const { value: r, committed } = await writing(() => resyncTables(ctx, ['shop.customers', 'shop.products']));
    expect(committed).toBeGreaterThan(10);
    expect(r.stream).toBe('rest_r1');
    expect(r.status.groups.map((g) => [g.group, g.health])).toEqual(
      expect.arrayContaining([['rest_r1', expect.stringMatching(/streaming|lagging/)], ['rest', expect.stringMatching(/streaming|lagging/)]]),
    );
    await equalNow();
    expect((await runVerify(ctx)).verdict).toBe('equal');
  });

  it('partial restart: one group loaded again from a new slot', async () => {
    await sql(pair.targetUrl, `SET session_replication_role = replica; DELETE FROM shop.order_items WHERE order_id % 5 = 0`);
    const { value: r } = await writing(() => restartCdc(ctx, { group: 'orders' }));
    expect(r.groups).toEqual(['orders']);
    await equalNow();
  });

  it('full-load --restart of a streaming group: its subscription goes before its slot, then cdc start streams it healthy', async () => {
    await sql(pair.targetUrl, `SET session_replication_role = replica; DELETE FROM shop.orders WHERE id % 9 = 0`);
    const { value: loaded } = await writing(() => runFullLoad(ctx, { group: 'orders', restart: true }));
    expect(loaded.groups.map((g) => g.group)).toEqual(['orders']);
    // The old subscription did not attach to the new slot and apply onto the reloaded tables.
    expect(await sql(pair.targetUrl, `SELECT count(*)::int AS n FROM pg_subscription WHERE subname = 'pgshift_shop_orders'`)).toEqual([{ n: 0 }]);
    const { value: status } = await writing(() => startCdc(ctx));
    expect(status.healthy).toBe(true);
    expect(status.engine === 'native' && status.groups.every((g) => !g.applyErrors)).toBe(true);
    await equalNow();
  });

  it('full restart: the failure state preserved, then everything loaded again', async () => {
    const bundle = path.join(os.tmpdir(), `pgshift-bundle-${process.pid}.json`);
    const { value: r } = await writing(() => restartCdc(ctx, { bundleFile: bundle }));
    expect(r.bundle).toBe(bundle);
    expect(existsSync(bundle)).toBe(true);
    const saved = JSON.parse(readFileSync(bundle, 'utf8'));
    expect(saved.streams.map((s: { group: string }) => s.group).sort()).toEqual(['orders', 'rest', 'rest_r1']);
    expect(saved.events.length).toBeGreaterThan(5);
    expect(JSON.stringify(saved)).not.toContain(pair.source.password);
    // The resync stream folded back into its group.
    expect(r.status.engine === 'native' && r.status.groups.map((g) => g.group).sort()).toEqual(['orders', 'rest']);
    await equalNow();
    const teardown = await runTeardown(ctx);
    expect(teardown.dropped.filter((d) => d.startsWith('slot'))).toHaveLength(2);
    expect(await sql(pair.sourceUrl, 'SELECT count(*)::int AS n FROM pg_replication_slots')).toEqual([{ n: 0 }]);
  });
});
