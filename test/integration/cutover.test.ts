import pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { isPgshiftError, type PgshiftError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import type { LocalCluster } from '../../src/local/cluster.js';
import { startPgBouncer } from '../../src/local/pgbouncer.js';
import { createSample, SampleWriter } from '../../src/local/sample.js';
import { acknowledgeCdcErrors, setCdcPaused, startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runCutover } from '../../src/phases/cutover.js';
import { runRollback } from '../../src/phases/rollback.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { runTeardown } from '../../src/phases/teardown.js';
import { runVerify } from '../../src/phases/verify.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { sql, startServer } from '../harness/servers.js';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Cut-over on real PostgreSQL 15 → 17 servers: a refusal for each precondition of the gate (exit 3,
 * nothing changed), each fence strategy with an application writing, the automatic undo when the
 * barrier times out, PgBouncer queueing clients through the switch, and rollback after it.
 */
let source: LocalCluster;
let target: LocalCluster;
const APP_PW = 'app-secret-pw';

beforeAll(async () => {
  [source, target] = await Promise.all([startServer(15, 'cut-src'), startServer(17, 'cut-tgt')]);
  for (const c of [source, target]) await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD '${APP_PW}'`);
});

// A role fence is cluster-wide and stays after a cut-over (the source must not take writes);
// each test starts with the application role writable again.
beforeEach(async () => {
  for (const c of [source, target]) await sql(c.url(), 'ALTER ROLE shop_app RESET default_transaction_read_only');
});

async function migration(db: string, cutover = 'fence: roles\n  roles: [shop_app]', extra = ''): Promise<{ ctx: PhaseContext; plan: (more: string) => PhaseContext }> {
  await sql(source.url(), `CREATE DATABASE ${db}`).catch(() => {});
  await sql(target.url(), `CREATE DATABASE ${db}`);
  const c = new pg.Client({ connectionString: source.url(db) });
  await c.connect();
  await createSample(c, 0.02);
  // A table the pgbench workload inserts into: its bigserial proves the sequences after the switch.
  await c.query(`CREATE TABLE shop.tickets (id bigserial PRIMARY KEY, note text); GRANT INSERT, SELECT ON shop.tickets TO shop_app; GRANT USAGE ON SEQUENCE shop.tickets_id_seq TO shop_app`);
  await c.end();
  const plan = (more: string) =>
    phaseContext(
      parsePlan(`version: 1\nname: ${db}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\n${extra}\ncutover:\n  ${cutover}\n${more || '  timeoutSeconds: 10'}`, 'plan', {
        S: source.url(db),
        T: target.url(db),
      }),
      silentLogger,
    );
  const ctx = plan('');
  await runFullLoad(ctx);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 30_000);
  return { ctx, plan };
}

async function refusal(p: Promise<unknown>): Promise<PgshiftError> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    if (isPgshiftError(err)) return err;
    throw err;
  }
  throw new Error(`expected a refusal, got ${JSON.stringify(value).slice(0, 500)}`);
}

async function nothingChanged(db: string) {
  expect(await sql(source.url(db), 'SELECT count(*)::int AS n FROM pg_db_role_setting WHERE setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))')).toEqual([{ n: 0 }]);
  const subs = await sql(target.url(db), 'SELECT bool_and(subenabled) AS on FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database()');
  expect(subs[0].on).toBe(true);
}

const appUrl = (c: LocalCluster, db: string) => c.url(db, 'shop_app', APP_PW);

describe('cutover gate', () => {
  it('refuses each unmet precondition with exit 3 and changes nothing', async () => {
    const { ctx, plan } = await migration('gate');
    let e = await refusal(runCutover(ctx));
    expect([e.exitCode, e.code]).toEqual([3, 'cutover.verify']);
    await nothingChanged('gate');
    expect((await runVerify(ctx)).verdict).toBe('equal');

    await setCdcPaused(ctx, true);
    e = await refusal(runCutover(ctx));
    expect([e.exitCode, e.code]).toEqual([3, 'cutover.not-streaming']);
    await setCdcPaused(ctx, false);
    await waitForCatchUp(ctx, 30_000);

    await sql(target.url('gate'), `UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'shop.orders_customer_idx'::regclass`);
    e = await refusal(runCutover(ctx));
    expect([e.exitCode, e.code, e.message]).toEqual([3, 'cutover.invalid-index', 'index shop.orders_customer_idx is invalid on the target']);
    await sql(target.url('gate'), `UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'shop.orders_customer_idx'::regclass`);

    // Made with the DDL capture bypassed (a change cdc.ddl: follow would otherwise carry over):
    // the gate must see what the stream did not bring.
    const uncaptured = 'SET session_replication_role = replica; ';
    await sql(source.url('gate'), `${uncaptured}CREATE INDEX customers_name_idx ON shop.customers (name)`);
    e = await refusal(runCutover(ctx));
    expect([e.exitCode, e.code]).toEqual([3, 'cutover.schema']);
    expect(e.message).toMatch(/^index shop.customers_name_idx is missing on target/);
    await sql(source.url('gate'), `${uncaptured}DROP INDEX shop.customers_name_idx`);

    await sql(source.url('gate'), `${uncaptured}CREATE SEQUENCE shop.ticket_seq`);
    e = await refusal(runCutover(ctx));
    expect([e.exitCode, e.code]).toEqual([3, 'cutover.sequences']);
    await sql(source.url('gate'), `${uncaptured}DROP SEQUENCE shop.ticket_seq`);

    // Lag above a 1-byte threshold while the application writes.
    const busy = new SampleWriter(appUrl(source, 'gate'), 2, 0);
    busy.start();
    try {
      e = await refusal(runCutover(plan('  maxLagBytes: 1')));
    } finally {
      await busy.stop();
    }
    expect([e.exitCode, e.code]).toEqual([3, 'cutover.lag']);
    await waitForCatchUp(ctx, 30_000);
    await verified(ctx);

    // An apply error: a row the target already has arrives from the source.
    await sql(target.url('gate'), `INSERT INTO public.countries VALUES ('ZZ', 'target only')`);
    await sql(source.url('gate'), `INSERT INTO public.countries VALUES ('ZZ', 'source')`);
    for (let i = 0; i < 100; i++) {
      const [r] = await sql(target.url('gate'), `SELECT apply_error_count::int AS n FROM pg_stat_subscription_stats WHERE subname = 'pgshift_gate_all'`);
      if (r?.n > 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await sql(target.url('gate'), `DELETE FROM public.countries WHERE code = 'ZZ'`);
    await waitForCatchUp(ctx, 60_000);
    e = await refusal(runCutover(ctx));
    expect([e.exitCode, e.code]).toEqual([3, 'cutover.apply-errors']);
    expect(await acknowledgeCdcErrors(ctx)).toEqual([{ stream: 'all', errors: expect.any(Number) }]);
    await nothingChanged('gate');

    const dry = await runCutover(ctx, { dryRun: true });
    expect(dry.plannedSteps.length).toBe(6);
    await nothingChanged('gate');
    await runTeardown(ctx);
  });
});

/** Verify until it passes, as an operator would before the cut-over. */
async function verified(ctx: PhaseContext) {
  for (let i = 0; i < 4; i++) if ((await runVerify(ctx)).verdict === 'equal') return;
  throw new Error('verify never passed');
}

async function canWrite(url: string): Promise<boolean> {
  try {
    await sql(url, `INSERT INTO shop."Audit Log" ("Note") VALUES ('probe')`);
    return true;
  } catch {
    return false;
  }
}

describe('cutover fences', () => {
  for (const fence of ['roles', 'database'] as const) {
    it(`${fence}: stops every writer, drains, carries sequences, and the application continues on the target`, async () => {
      const db = `fence_${fence}`;
      // The database variant also pre-bumps the target's sequences before the freeze.
      const { ctx } = await migration(db, fence === 'roles' ? 'fence: roles\n  roles: [shop_app]' : 'fence: database\n  prebumpSequences: true');
      const writer = new SampleWriter(appUrl(source, db), 3, 2);
      writer.start();
      let cut;
      try {
        await new Promise((r) => setTimeout(r, 500));
        await verified(ctx);
        expect(writer.committed).toBeGreaterThan(writer.failed * 10); // the application really writes
        cut = await runCutover(ctx);
        expect(cut.windowMs).toBeGreaterThan(0);
        expect(cut.fence!.terminated).toBeGreaterThan(0);
        expect(cut.finalCheck).toMatch(/^equal/);
        // Every commit before the fence is on the target, row for row.
        const [a, b] = await Promise.all([tableDigests(source.url(db), SAMPLE_TABLES), tableDigests(target.url(db), SAMPLE_TABLES)]);
        expect(b).toEqual(a);
        expect(await canWrite(appUrl(source, db))).toBe(false);
        const [src] = await sql(source.url(db), 'SELECT last_value::int AS v FROM shop.orders_id_seq');
        const [tgt] = await sql(target.url(db), 'SELECT last_value::int AS v FROM shop.orders_id_seq');
        if (fence === 'database') expect(tgt.v).toBeGreaterThan(src.v); // pre-bumped ahead, never moved back
        else expect(tgt.v).toBe(src.v);
        writer.repoint(appUrl(target, db));
        const before = writer.committed;
        await new Promise((r) => setTimeout(r, 1000));
        expect(writer.committed).toBeGreaterThan(before); // no duplicate keys: sequences carried
      } finally {
        await writer.stop();
      }
      const orders = await sql(target.url(db), 'SELECT count(*)::int AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.id = id)', [writer.committedOrders.map(String)]);
      expect(orders[0].n).toBe(0);
      await runTeardown(ctx);
    });
  }

  it('undoes itself when the barrier times out, and a re-run succeeds', async () => {
    const db = 'undo';
    const { ctx, plan } = await migration(db);
    await verified(ctx);
    // The apply worker blocks on a row lock held on the target's heartbeat row: the drain never ends.
    const lock = new pg.Client({ connectionString: target.url(db) });
    await lock.connect();
    await lock.query('BEGIN');
    await lock.query('SELECT * FROM pgshift.heartbeat_all FOR UPDATE');
    let e: PgshiftError;
    try {
      e = await refusal(runCutover(plan('  timeoutSeconds: 2')));
    } finally {
      await lock.query('ROLLBACK');
      await lock.end();
    }
    expect([e.exitCode, e.code]).toEqual([1, 'cutover.undone']);
    expect(e.message).toMatch(/barrier (marker did not reach the target within 2 s|exceeded its budget of 2000 ms)/);
    expect(await canWrite(appUrl(source, db))).toBe(true); // the source is writable again
    await nothingChanged(db);
    const [phase] = await sql(target.url(db), `SELECT state, detail->>'reason' AS reason FROM pgshift.phase WHERE phase = 'cutover'`);
    expect(phase.state).toBe('undone');
    await waitForCatchUp(ctx, 30_000);
    const again = await runCutover(ctx);
    expect(again.windowMs).toBeGreaterThan(0);
    await runTeardown(ctx);
  });

  it('pgbouncer: clients queue through the switch and continue on the target without an error', async () => {
    const db = 'bouncer';
    await sql(source.url(), `CREATE DATABASE ${db}`);
    const bouncer = await startPgBouncer({ databases: { app: { host: '127.0.0.1', port: source.port, dbname: db, user: 'shop_app', password: APP_PW } } });
    try {
      const { ctx } = await migrationOn(db, `fence: pgbouncer\n  roles: [shop_app]\n  pgbouncer: { adminUrl: "${bouncer.adminUrl}", database: app, configFile: "${bouncer.configFile}" }`);
      await verified(ctx);
      // An entry the switch could not rewrite is refused at the gate, before the window.
      const ini = readFileSync(bouncer.configFile, 'utf8');
      writeFileSync(bouncer.configFile, ini.replace(/^app = /m, 'ledger = '));
      await expect(runCutover(ctx)).rejects.toMatchObject({ code: 'pgbouncer.config', exitCode: 3, message: expect.stringContaining('no [databases] entry for app') });
      writeFileSync(bouncer.configFile, ini);
      const load = runPgbench(bouncer.url('app', 'shop_app'), 8);
      await new Promise((r) => setTimeout(r, 1500));
      const cut = await runCutover(ctx);
      expect(cut.windowMs).toBeGreaterThan(0);
      // Every other option kept as written (a quoted connect_query with spaces and a doubled quote),
      // and the real PgBouncer read the new line back: its database app now points at the target.
      expect(readFileSync(bouncer.configFile, 'utf8')).toContain(`app = host=127.0.0.1 port=${target.port} dbname=${db} user=shop_app password=${APP_PW} connect_query='SELECT ''pooled by pgbouncer'''\n`);
      const pooled = await sql(bouncer.adminUrl, 'SHOW DATABASES');
      expect(pooled.find((d) => d.name === 'app')).toMatchObject({ port: target.port, database: db });
      const out = await load;
      expect(out.code, out.text).toBe(0);
      expect(out.text).not.toMatch(/error|aborted/i);
      const after = await sql(target.url(db), `SELECT count(*)::int AS n FROM shop.tickets`);
      expect(after[0].n).toBeGreaterThan(0);
      await runTeardown(ctx);
    } finally {
      await bouncer.stop();
    }
  });

  it('rolls back after the switch, losing nothing written on the target', async () => {
    const db = 'rollback';
    const { ctx } = await migration(db, 'fence: roles\n  roles: [shop_app]\n  rollback: true');
    await verified(ctx);
    const cut = await runCutover(ctx);
    expect(cut.reverse).toMatchObject({ subscription: 'pgshift_rollback_reverse' });
    const writer = new SampleWriter(appUrl(target, db), 2, 2);
    writer.start();
    await new Promise((r) => setTimeout(r, 1000));
    await writer.stop();
    expect(writer.committed).toBeGreaterThan(0);
    const back = await runRollback(ctx);
    expect(back.windowMs).toBeGreaterThan(0);
    const [a, b] = await Promise.all([tableDigests(target.url(db), SAMPLE_TABLES), tableDigests(source.url(db), SAMPLE_TABLES)]);
    expect(b).toEqual(a);
    expect(await canWrite(appUrl(source, db))).toBe(true);
    expect(await canWrite(appUrl(target, db))).toBe(false);
    // Sequences came back too: the application inserts on the source without a duplicate key.
    const again = new SampleWriter(appUrl(source, db), 1, 2);
    again.start();
    await new Promise((r) => setTimeout(r, 500));
    await again.stop();
    expect(again.committed).toBeGreaterThan(0);
    // Once is enough: a second rollback says so and changes nothing.
    await expect(runRollback(ctx)).rejects.toMatchObject({ code: 'rollback.done', exitCode: 3 });
    await runTeardown(ctx);
    expect(await sql(source.url(db), 'SELECT count(*)::int AS n FROM pg_subscription')).toEqual([{ n: 0 }]);
    expect(await sql(target.url(db), 'SELECT count(*)::int AS n FROM pg_replication_slots')).toEqual([{ n: 0 }]);
  });
});

/** Like migration() but for a database that exists already on the source. */
async function migrationOn(db: string, cutover: string) {
  const existing = await sql(source.url(), 'SELECT 1 FROM pg_database WHERE datname = $1', [db]);
  if (existing.length) await sql(source.url(), `DROP DATABASE ${db}`);
  return migration(db, cutover);
}

/** pgbench through the pooler: the TPC-B-like transaction plus an insert that uses a sequence. */
function runPgbench(url: string, seconds: number): Promise<{ code: number; text: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbench-'));
  const script = path.join(dir, 'tx.sql');
  writeFileSync(script, `\\set id random(1, 50)\nBEGIN;\nUPDATE shop.customers SET name = name WHERE id = :id;\nINSERT INTO shop.tickets (note) VALUES ('pgbench');\nEND;\n`);
  return new Promise((resolve) => {
    const u = new URL(url);
    const child = spawn('pgbench', ['-n', '-c', '4', '-j', '1', '-T', String(seconds), '-f', script, '-h', u.hostname, '-p', u.port, '-U', 'shop_app', u.pathname.slice(1)]);
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('exit', (code) => resolve({ code: code ?? 1, text }));
  });
}
