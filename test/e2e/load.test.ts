import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { SampleWriter } from '../../src/local/sample.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runVerify } from '../../src/phases/verify.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { pgbenchInit, pgbenchStart } from '../harness/load.js';
import { testPlan } from '../harness/plan.js';
import { seedSample, sql, startPair } from '../harness/servers.js';

describe('full load and CDC under load, 13 → 17', () => {
  it('pgbench plus TOASTed jsonb updates, deletes and partitioned inserts, all through the copy and the stream: the target ends equal', async () => {
    const pair = await startPair(13, 17);
    await seedSample(pair.sourceUrl, 0.1);
    pgbenchInit(pair.sourceUrl, 2);
    await sql(pair.sourceUrl, `
      CREATE TABLE docs (id int PRIMARY KEY, body jsonb);
      INSERT INTO docs SELECT i, jsonb_build_object('text', repeat(md5(i::text), 600), 'n', 0) FROM generate_series(1, 300) i;`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'load-'));
    writeFileSync(path.join(dir, 'toast.sql'), `\\set id random(1, 300)\nUPDATE docs SET body = jsonb_set(body, '{n}', to_jsonb((body->>'n')::int + 1)) WHERE id = :id;\n`);
    writeFileSync(path.join(dir, 'events.sql'), `INSERT INTO shop.events (happened_at, kind) VALUES (now(), 'bench');\nDELETE FROM shop.events WHERE (id, happened_at) = (SELECT id, happened_at FROM shop.events WHERE kind = 'view' LIMIT 1);\n`);
    const ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, 'fullLoad: { jobs: 2 }'), silentLogger);
    const load = pgbenchStart(pair.sourceUrl, { clients: 3, seconds: 120, rate: 300, scripts: ['-btpcb-like@6', `${path.join(dir, 'toast.sql')}@2`, `${path.join(dir, 'events.sql')}@2`] });
    const writer = new SampleWriter(pair.source.url('shop', 'shop_app', 'app-secret-pw'), 1, 5);
    writer.start();
    let transactions = 0;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      await runFullLoad(ctx);
      await startCdc(ctx);
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await writer.stop();
      transactions = (await load.stop()).transactions;
    }
    expect(transactions).toBeGreaterThan(500);
    await waitForCatchUp(ctx, 60_000);
    const tables = [...SAMPLE_TABLES, 'public.docs', 'public.pgbench_accounts', 'public.pgbench_tellers', 'public.pgbench_branches', 'public.pgbench_history'];
    const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, tables), tableDigests(pair.targetUrl, tables)]);
    expect(b).toEqual(a);
    expect((await runVerify(ctx, { exact: true })).verdict).toBe('equal');
  });
});
