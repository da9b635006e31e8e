import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import type { LocalCluster } from '../../src/local/cluster.js';
import { nativeCdcStatus as cdcStatus, setNativePaused as setCdcPaused, startNativeCdc as startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runCli } from '../harness/cli.js';
import { seedSample, sql, startServer } from '../harness/servers.js';

/**
 * Status you can trust (PostgreSQL 13 → 17): lag in seconds right on an idle source, a schema
 * change on the source reported with its fix, slot retention reported before it bites.
 */
let source: LocalCluster;
let target: LocalCluster;
let ctx: PhaseContext;
const PLAN = 'version: 1\nname: status\nsource: { url: "${S}" }\ntarget: { url: "${T}" }\ncdc: { ddlTrigger: true }\ncutover: { fence: database }\n';

function planFile(): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-watch-')), 'migration.yml');
  writeFileSync(file, PLAN);
  return file;
}

beforeAll(async () => {
  [source, target] = await Promise.all([startServer(13, 'status-src', { max_slot_wal_keep_size: "'32MB'" }), startServer(17, 'status-tgt')]);
  for (const c of [source, target]) {
    await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'x-app-pw'`);
    await sql(c.url(), 'CREATE DATABASE shop');
  }
  await seedSample(source.url('shop'), 0.02);
  ctx = phaseContext(
    parsePlan(PLAN, 'plan', { S: source.url('shop'), T: target.url('shop') }),
    silentLogger,
  );
  await runFullLoad(ctx);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 30_000);
});

describe('cdc status', () => {
  it('measures lag in seconds on an idle source with a heartbeat', async () => {
    await new Promise((r) => setTimeout(r, 3000)); // nothing written: a timestamp-based lag would now read 3 s
    const r = await cdcStatus(ctx);
    const g = r.groups[0];
    expect(g.health).toBe('streaming');
    expect(g.lagSeconds).not.toBeNull();
    expect(g.lagSeconds!).toBeLessThan(1);
    expect(g.tables.ready).toBeGreaterThan(5);
    expect(g.appliedLsn).not.toBeNull();
    expect(r.healthy).toBe(true);
  });

  it('--watch repeats the status until --for has passed, printing each one (exit 0 while healthy)', async () => {
    const r = await runCli(['cdc', 'status', '--config', planFile(), '--wait', '1', '--watch', '1', '--for', '0.05'], { S: source.url('shop'), T: target.url('shop') });
    expect(r.code).toBe(0);
    expect(r.stderr.match(/### pgshift cdc status \(native\) — healthy/g)!.length).toBeGreaterThanOrEqual(2);
    expect(r.stdout).toContain('— healthy');
  });

  it('reports a schema change on the source with the fix, never skipping it silently', async () => {
    await sql(source.url('shop'), `ALTER TABLE public.countries ADD COLUMN iso3 text; INSERT INTO public.countries VALUES ('XX', 'Newland', 'XXX')`);
    let r = await cdcStatus(ctx, 2000);
    for (let i = 0; i < 50 && !(r.groups[0].applyErrors ?? 0); i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = await cdcStatus(ctx, 500);
    }
    const g = r.groups[0];
    expect(r.healthy).toBe(false);
    expect(g.health).toBe('failing');
    expect(g.ddl).toEqual([expect.objectContaining({ command: 'ALTER TABLE', object: 'public.countries' })]);
    expect(g.problems.join('\n')).toMatch(/DDL #\d+ on the source at .* was not carried to the target — cdc.ddl is detect: .*ALTER TABLE public.countries: ALTER TABLE public.countries ADD COLUMN iso3 text — apply it on the target by hand/);
    expect(g.problems.join('\n')).toMatch(/apply error\(s\) recorded .* apply the same DDL on the target/);
    // A watch (no --for: until interrupted) ends at once on a failing status, with exit 1.
    const watch = await runCli(['cdc', 'status', '--config', planFile(), '--wait', '0', '--watch', '60'], { S: source.url('shop'), T: target.url('shop') });
    expect(watch.code).toBe(1);
    expect(watch.stdout).toContain('— FAILING');
    // The fix, as the report says: the same DDL on the target, then acknowledge.
    await sql(target.url('shop'), 'ALTER TABLE public.countries ADD COLUMN iso3 text');
    await waitForCatchUp(ctx, 60_000);
    await sql(target.url('shop'), `SELECT pg_stat_reset_subscription_stats(oid) FROM pg_subscription`);
    await sql(source.url('shop'), 'DELETE FROM pgshift.ddl_log');
    expect(await sql(target.url('shop'), `SELECT iso3 FROM public.countries WHERE code = 'XX'`)).toEqual([{ iso3: 'XXX' }]);
    expect((await cdcStatus(ctx)).healthy).toBe(true);
  });

  it('reports slot retention approaching max_slot_wal_keep_size before the slot is lost', async () => {
    await setCdcPaused(ctx, true);
    try {
      // WAL written while nothing is consumed, against a 32 MB limit, until half of it is used.
      await sql(source.url('shop'), 'CREATE TABLE public.filler (id int PRIMARY KEY, pad text)');
      let g = (await cdcStatus(ctx, 0)).groups[0];
      for (let i = 0; i < 20 && (g.safeWalBytes ?? 0) > 16 * 1024 * 1024; i++) {
        await sql(source.url('shop'), `INSERT INTO public.filler SELECT ${i * 5000} + i, repeat('x', 900) FROM generate_series(1, 5000) i`);
        g = (await cdcStatus(ctx, 0)).groups[0];
      }
      expect(g.walStatus).not.toBe('lost');
      expect(g.problems.join('\n')).toMatch(/can fall only .* further behind before max_slot_wal_keep_size \(32.0 MB\) invalidates it/);
    } finally {
      await setCdcPaused(ctx, false);
    }
  });
});
