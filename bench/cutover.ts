import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parsePlan } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { startCluster } from '../src/local/cluster.js';
import { SAMPLE_TABLES, tableDigests } from '../src/local/compare.js';
import { startPgBouncer } from '../src/local/pgbouncer.js';
import { createSample } from '../src/local/sample.js';
import { startCdc, waitForCatchUp } from '../src/phases/cdc.js';
import { phaseContext } from '../src/phases/context.js';
import { runCutover } from '../src/phases/cutover.js';
import { runFullLoad } from '../src/phases/full-load.js';
import { runTeardown } from '../src/phases/teardown.js';
import { runVerify } from '../src/phases/verify.js';
import { exec } from './common.js';

/**
 * The cut-over under load through a real PgBouncer, RUNS times, each on a fresh migration
 * (PostgreSQL 15 → 17): pgbench (4 clients, a transaction that updates a row and inserts into a
 * bigserial table) runs through the pooler before, during and after the switch. Recorded: the
 * write-unavailable window, pgbench errors (clients must see a pause, not errors — no duplicate
 * key either, which would mean a sequence was not carried), and that every row committed on the
 * source before the fence is on the target.
 */
const RUNS = Number(process.argv[2] ?? 10);
const APP_PW = 'bench-app-pw';
const [source, target] = await Promise.all([startCluster({ major: 15, name: 'bench-cut-src' }), startCluster({ major: 17, name: 'bench-cut-tgt' })]);
const runs: Array<{ run: number; windowMs: number; steps: string; pgbenchTx: number; pgbenchErrors: number; sourceRowsMissingOnTarget: number; tablesEqual: boolean }> = [];
try {
  for (const c of [source, target]) await exec(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD '${APP_PW}'`);
  for (let run = 1; run <= RUNS; run++) {
    const db = `cut_${run}`;
    // Each run is a fresh migration; the previous run's role fence (cluster-wide) is lifted first.
    for (const c of [source, target]) await exec(c.url(), 'ALTER ROLE shop_app RESET default_transaction_read_only');
    await exec(source.url(), `CREATE DATABASE ${db}`);
    await exec(target.url(), `CREATE DATABASE ${db}`);
    const c = new pg.Client({ connectionString: source.url(db) });
    await c.connect();
    await createSample(c, 0.02);
    await c.query(`CREATE TABLE shop.tickets (id bigserial PRIMARY KEY, note text, at timestamptz DEFAULT now()); GRANT INSERT, SELECT ON shop.tickets TO shop_app; GRANT USAGE ON SEQUENCE shop.tickets_id_seq TO shop_app`);
    await c.end();
    const bouncer = await startPgBouncer({ databases: { app: { host: '127.0.0.1', port: source.port, dbname: db, user: 'shop_app', password: APP_PW } } });
    try {
      const ctx = phaseContext(
        parsePlan(
          `version: 1\nname: ${db}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\ncutover:\n  fence: pgbouncer\n  roles: [shop_app]\n  pgbouncer: { adminUrl: "${bouncer.adminUrl}", database: app, configFile: "${bouncer.configFile}" }\n`,
          'bench plan',
          { S: source.url(db), T: target.url(db) },
        ),
        silentLogger,
      );
      await runFullLoad(ctx);
      await startCdc(ctx);
      await waitForCatchUp(ctx, 30_000);
      for (let i = 0; i < 4 && (await runVerify(ctx)).verdict !== 'equal'; i++);
      const load = pgbench(bouncer.port, 6);
      await new Promise((r) => setTimeout(r, 2000));
      const cut = await runCutover(ctx);
      const out = await load;
      // Every ticket committed on the (now fenced) source is on the target, and the rest is equal.
      const ids = (await query(source.url(db), 'SELECT id::text FROM shop.tickets')).map((r) => r.id);
      const missing = await query(target.url(db), 'SELECT count(*)::int AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.tickets t WHERE t.id = id)', [ids]);
      const tables = SAMPLE_TABLES;
      const [a, b] = await Promise.all([tableDigests(source.url(db), tables), tableDigests(target.url(db), tables)]);
      runs.push({
        run,
        windowMs: cut.windowMs!,
        steps: cut.steps.map((s) => `${s.step} ${s.ms}`).join(', '),
        pgbenchTx: out.transactions,
        pgbenchErrors: out.errors,
        sourceRowsMissingOnTarget: missing[0].n,
        tablesEqual: JSON.stringify([...a]) === JSON.stringify([...b]),
      });
      console.error(JSON.stringify(runs.at(-1)));
      if (out.errors) console.error(out.text.slice(0, 2000));
      await runTeardown(ctx);
    } finally {
      await bouncer.stop();
    }
  }
  const windows = runs.map((r) => r.windowMs).sort((x, y) => x - y);
  const median = windows.length % 2 ? windows[(windows.length - 1) / 2] : (windows[windows.length / 2 - 1] + windows[windows.length / 2]) / 2;
  console.log(JSON.stringify({
    runs: runs.length,
    medianWindowMs: median,
    maxWindowMs: windows.at(-1),
    minWindowMs: windows[0],
    pgbenchErrors: runs.reduce((n, r) => n + r.pgbenchErrors, 0),
    rowsMissing: runs.reduce((n, r) => n + r.sourceRowsMissingOnTarget, 0),
    allEqual: runs.every((r) => r.tablesEqual),
    perRun: runs,
  }, null, 2));
} finally {
  await Promise.all([source.destroy(), target.destroy()]);
}

async function query(url: string, sql: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

function pgbench(port: number, seconds: number): Promise<{ transactions: number; errors: number; text: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbench-'));
  const script = path.join(dir, 'tx.sql');
  writeFileSync(script, `\\set id random(1, 50)\nBEGIN;\nUPDATE shop.customers SET name = name WHERE id = :id;\nINSERT INTO shop.tickets (note) VALUES ('pgbench');\nEND;\n`);
  return new Promise((resolve) => {
    const child = spawn('pgbench', ['-n', '-c', '4', '-j', '1', '-T', String(seconds), '-f', script, '-h', '127.0.0.1', '-p', String(port), '-U', 'shop_app', 'app']);
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('exit', (code) => {
      const tx = /number of transactions actually processed: (\d+)/.exec(text);
      const failed = /number of failed transactions: (\d+)/.exec(text);
      const errors = (failed ? Number(failed[1]) : 0) + (/error|aborted/i.test(text) ? 1 : 0) + (code ? 1 : 0);
      resolve({ transactions: tx ? Number(tx[1]) : 0, errors, text });
    });
  });
}
