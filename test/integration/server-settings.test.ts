import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { connect, endpointFor } from '../../src/pg/connect.js';
import { runAssess } from '../../src/phases/assess.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runCutover } from '../../src/phases/cutover.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { runVerify } from '../../src/phases/verify.js';
import { tableDigests } from '../harness/compare.js';
import { repeatUntilStopped } from '../harness/load.js';
import { testPlan } from '../harness/plan.js';
import { sql, startPair } from '../harness/servers.js';

/**
 * Databases in production often carry settings of their own (ALTER DATABASE … SET, an RDS
 * parameter group): timeouts that end idle or long sessions and transactions, a default isolation
 * level, a money locale. They are there for the application; pgshift's sessions idle between
 * steps, hold a snapshot for the whole load and a fence through the window, and must neither be
 * ended by them nor read differently because of them.
 */
const HOSTILE: Record<string, string> = {
  statement_timeout: '1s',
  lock_timeout: '500ms',
  idle_in_transaction_session_timeout: '1s',
  idle_session_timeout: '1s', // 14+
  transaction_timeout: '1s', // 17+: the target here
  default_transaction_isolation: 'serializable',
};

/** Each of HOSTILE the server has, as the database's own setting. */
async function setHostile(url: string): Promise<string[]> {
  const known = await sql<{ name: string }>(url, 'SELECT name FROM pg_settings WHERE name = ANY($1)', [Object.keys(HOSTILE)]);
  for (const { name } of known) await sql(url, `ALTER DATABASE shop SET ${name} = '${HOSTILE[name]}'`);
  return known.map((k) => k.name).sort();
}

// pg_dump here is 15's, so the source is 15 (idle_session_timeout, no transaction_timeout); the
// target, 18, has them all.
describe('databases whose own settings would end or bend pgshift sessions, 15 → 18', () => {
  it('a whole migration runs under one-second session, transaction and idle timeouts and serializable by default', async () => {
    const pair = await startPair(15, 18);
    await sql(pair.sourceUrl, `
      CREATE TABLE items (id bigint PRIMARY KEY, v text, n numeric);
      INSERT INTO items SELECT i, repeat(md5(i::text), 4), i / 7.0 FROM generate_series(1, 300000) i;
      CREATE TABLE notes (id serial PRIMARY KEY, body text);
      GRANT SELECT, INSERT, UPDATE ON items, notes TO shop_app; GRANT USAGE ON SEQUENCE notes_id_seq TO shop_app;
      ANALYZE`);
    expect(await setHostile(pair.sourceUrl)).toHaveLength(5);
    expect(await setHostile(pair.targetUrl)).toHaveLength(6);
    // What a pgshift session starts with on the target, whatever the database says.
    const session = await connect(endpointFor('target', { url: pair.targetUrl }));
    try {
      const shown = await session.query<{ name: string; setting: string }>(`SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name`, [Object.keys(HOSTILE)]);
      expect(Object.fromEntries(shown.rows.map((r) => [r.name, r.setting]))).toEqual({
        default_transaction_isolation: 'read committed',
        idle_in_transaction_session_timeout: '0',
        idle_session_timeout: '0',
        lock_timeout: '0',
        statement_timeout: '0',
        transaction_timeout: '0',
      });
    } finally {
      await session.end();
    }

    const plan = testPlan(pair.sourceUrl, pair.targetUrl, 'fullLoad: { jobs: 2 }');
    plan.cutover.verifyMaxAgeMinutes = 0;
    const ctx = phaseContext(plan, silentLogger);
    expect((await runAssess(ctx)).findings.filter((f) => f.severity === 'blocker')).toEqual([]);
    const load = await runFullLoad(ctx);
    expect(load.rows).toBe(300000);

    await startCdc(ctx);
    const app = pair.source.url('shop', 'shop_app', 'app-secret-pw');
    let written = 0;
    const stopWriting = repeatUntilStopped(async () => {
      await sql(app, `INSERT INTO notes (body) VALUES ('note')`);
      await sql(app, `UPDATE items SET v = 'changed' WHERE id = $1`, [1 + (written % 1000)]);
      written++;
    }, 20);
    await waitForCatchUp(ctx, 60_000);
    expect((await runVerify(ctx)).verdict).toBe('equal');

    const cut = await runCutover(ctx);
    expect(cut.dryRun).toBe(false);
    await stopWriting();
    expect(written).toBeGreaterThan(0);
    // The test's own sessions (plain ones, not pgshift's) are bound by the settings too: a
    // digest of every row must not run into the one-second transaction timeout.
    for (const url of [pair.sourceUrl, pair.targetUrl]) await sql(url, 'ALTER DATABASE shop RESET ALL');
    expect(await tableDigests(pair.targetUrl, ['public.items', 'public.notes'])).toEqual(await tableDigests(pair.sourceUrl, ['public.items', 'public.notes']));
    await runTeardown(ctx);
  });
});
