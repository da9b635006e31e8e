import { beforeAll, describe, expect, it } from 'vitest';
import { SampleWriter } from '../../src/local/sample.js';
import { runAction, withoutMaskCommands, type ActionRun } from '../harness/action.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { writePlanFile } from '../harness/plan.js';
import { sql, startPair, type Pair, seedSample } from '../harness/servers.js';

/**
 * The actions of one migration in sequence, through their bundled dist/index.js with the runner's
 * environment simulated, against real PostgreSQL 15 → 15 servers with an application writing:
 * assess → full-load (two groups, as a matrix would run them) → cdc start → cdc status → verify →
 * cutover dry run → cutover → teardown. Also the secret test: the superuser password appears in no
 * output, summary, log line or journal row.
 */
let pair: Pair;
let env: Record<string, string>;
let plan: string;
const runs: ActionRun[] = [];
let journalDump = '';

beforeAll(async () => {
  pair = await startPair(15, 15);
  // Both servers log every statement, with its parameters: nothing pgshift sends may carry a secret.
  for (const c of [pair.source, pair.target]) for (const q of [`ALTER SYSTEM SET log_statement = 'all'`, 'ALTER SYSTEM SET log_min_duration_statement = 0', 'SELECT pg_reload_conf()']) await sql(c.url(), q);
  await seedSample(pair.sourceUrl, 0.05);
  env = { SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl };
  plan = writePlanFile(`groups:
  - { name: orders, tables: [shop.orders, shop.order_items] }
  - { name: rest, tables: ["*.*"] }
fullLoad: { jobs: 2 }
`);
});

async function action(name: string, inputs: Record<string, string> = {}): Promise<ActionRun> {
  const r = await runAction(name, { config: plan, ...inputs }, env);
  runs.push(r);
  return r;
}

describe('actions pipeline 15 → 15', () => {
  it('runs a whole migration through the bundled actions', async () => {
    const assess = await action('assess');
    expect(assess.code).toBe(0);
    expect(JSON.parse(assess.outputs.groups)).toEqual(['orders', 'rest']);
    expect(assess.summary).toContain('### pgshift assess');

    const writer = new SampleWriter(pair.source.url('shop', 'shop_app', 'app-secret-pw'), 2, 5);
    writer.start();
    try {
      // The matrix: one job per group. The last group to finish runs post-data.
      const first = await action('full-load', { group: 'orders' });
      expect(first.code, first.stdout).toBe(0);
      expect(first.outputs['post-data']).toBe('waiting-for-groups');
      expect(Object.keys(JSON.parse(first.outputs['snapshot-lsns']))).toEqual(['orders']);
      const second = await action('full-load', { group: 'rest' });
      expect(second.code, second.stdout).toBe(0);
      expect(second.outputs['post-data']).toBe('done');
      expect(second.summary).toContain('| rest | pgshift_shop_rest |');

      const start = await action('cdc', { operation: 'start' });
      expect(start.code, start.stdout).toBe(0);
      const status = await action('cdc', { operation: 'status', 'wait-seconds': '10' });
      expect(status.code, status.stdout).toBe(0);
      expect(status.outputs.healthy).toBe('true');
      expect(Number(status.outputs['max-lag-seconds'])).toBeLessThan(10);
      expect(status.summary).toContain('### pgshift cdc status (native) — healthy');

      // As an operator would: verify until it passes (a hot table may stay unsettled for a pass).
      let verify = await action('verify');
      for (let i = 0; i < 3 && verify.outputs.verdict === 'unsettled'; i++) verify = await action('verify');
      expect(verify.code, verify.stdout).toBe(0);
      expect(verify.outputs.verdict).toBe('equal');

      const dry = await action('cutover', { 'dry-run': 'true' });
      expect(dry.code, dry.stdout).toBe(0);
      expect(dry.outputs['dry-run']).toBe('true');
      expect(dry.summary).toContain('The gate passed');
      expect((await sql(pair.sourceUrl, `SELECT count(*)::int AS n FROM pg_db_role_setting`))[0].n).toBe(0);

      const cut = await action('cutover');
      expect(cut.code, cut.stdout).toBe(0);
      expect(Number(cut.outputs['window-ms'])).toBeGreaterThan(0);
      expect(cut.outputs.endpoint).toMatch(/^127\.0\.0\.1:\d+\/shop$/);
      expect(cut.summary).toContain('Write-unavailable window');
    } finally {
      await writer.stop();
    }
    expect(writer.committed).toBeGreaterThan(0);

    const exact = await action('verify', { exact: 'true' });
    expect(exact.outputs.verdict).toBe('equal');
    const [a, b] = await Promise.all([tableDigests(pair.sourceUrl, SAMPLE_TABLES), tableDigests(pair.targetUrl, SAMPLE_TABLES)]);
    expect(b).toEqual(a);
    const missing = await sql(pair.targetUrl, `SELECT count(*)::int AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.id = id)`, [writer.committedOrders.map(String)]);
    expect(missing[0].n).toBe(0);

    const rows = await sql(pair.targetUrl, `SELECT string_agg(t::text, E'\\n') AS dump FROM (
        SELECT row_to_json(m)::text AS t FROM pgshift.migration m UNION ALL SELECT row_to_json(p)::text FROM pgshift.phase p
        UNION ALL SELECT row_to_json(s)::text FROM pgshift.stream s UNION ALL SELECT row_to_json(e)::text FROM pgshift.event e
        UNION ALL SELECT row_to_json(c)::text FROM pgshift.copy_progress c) x`);
    journalDump = rows[0].dump;
    expect(journalDump).toContain('"phase":"cutover","state":"done"');

    const teardown = await action('teardown');
    expect(teardown.code).toBe(0);
    expect(JSON.parse(teardown.outputs.dropped)).toHaveLength(11); // with the DDL capture's three event triggers
    const again = await action('teardown');
    expect(JSON.parse(again.outputs.dropped)).toEqual([]);
    expect((await sql(pair.sourceUrl, 'SELECT count(*)::int AS n FROM pg_replication_slots'))[0].n).toBe(0);
  });

  it('never shows the password: outputs, summaries, logs, journal', () => {
    const password = pair.source.password;
    expect(runs.length).toBeGreaterThan(8);
    for (const r of runs) {
      const visible = [withoutMaskCommands(r.stdout), r.stderr, r.summary, JSON.stringify(r.outputs)].join('\n');
      expect(visible).not.toContain(password);
      expect(visible).not.toContain(pair.target.password);
      expect(visible).not.toContain('app-secret-pw');
    }
    // The runner is told to mask it.
    expect(runs[0].stdout).toContain(`::add-mask::${password}`);
    expect(journalDump.length).toBeGreaterThan(100);
    expect(journalDump).not.toContain(password);
    // Nor the servers' logs, which logged every statement (the subscriptions' included).
    for (const log of [pair.source.log(), pair.target.log()]) {
      expect(log).toMatch(/CREATE SUBSCRIPTION|pgshift_exec_with_secret|statement: /);
      expect(log).not.toContain(password);
      expect(log).not.toContain(pair.target.password);
    }
  });

  it('refuses a cut-over when nothing streams (exit 3 in the outputs)', async () => {
    const r = await action('cutover');
    expect(r.code).toBe(1);
    expect(r.outputs['exit-code']).toBe('3');
    expect(r.summary).toContain('refused');
  });
});
