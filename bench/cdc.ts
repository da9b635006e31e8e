import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parsePlan } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { heartbeatTable } from '../src/core/names.js';
import { startCluster } from '../src/local/cluster.js';
import { waitForMarker, writeBeat } from '../src/pg/heartbeat.js';
import { startCdc, waitForCatchUp } from '../src/phases/cdc.js';
import { phaseContext } from '../src/phases/context.js';
import { runFullLoad } from '../src/phases/full-load.js';
import { startProxy } from '../test/harness/proxy.js';
import { exec, pgbenchInit } from './common.js';

/**
 * Native CDC under load, PostgreSQL 13 → 17 on this machine: pgbench's TPC-B-like transaction mixed
 * with updates of large TOASTed jsonb documents, deletes and inserts into a partitioned table, at
 * increasing fixed rates (pgbench -R). Lag is measured end to end every 250 ms: a heartbeat written
 * on the source, timed until the target has applied it. Then the recovery time after each fault:
 * target restart, source restart, the network between them cut for 5 s.
 */
const RATES = (process.argv[2] ?? '250,500,1000,2000,4000').split(',').map(Number);
const SECONDS = Number(process.argv[3] ?? 15);
const [source, target] = await Promise.all([startCluster({ major: 13, name: 'bench-cdc-src' }), startCluster({ major: 17, name: 'bench-cdc-tgt' })]);
const proxy = await startProxy(source.port);
try {
  pgbenchInit(source.url(), 10);
  await exec(source.url(), `
    CREATE TABLE docs (id int PRIMARY KEY, body jsonb);
    INSERT INTO docs SELECT i, jsonb_build_object('text', repeat(md5(i::text), 600), 'n', 0) FROM generate_series(1, 1000) i;
    CREATE TABLE events (id bigserial, at timestamptz NOT NULL DEFAULT now(), kind int, PRIMARY KEY (id)) PARTITION BY RANGE (id);
    CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (1) TO (1000000);
    CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM (1000000) TO (MAXVALUE);
    ANALYZE;`);
  const plan = parsePlan(
    `version: 1\nname: bench\nsource: { url: "\${S}", subscriptionConninfo: "host=127.0.0.1 port=${proxy.port} user=postgres password=${source.password} dbname=postgres" }\ntarget: { url: "\${T}" }\ncutover: { fence: database }\n`,
    'bench plan',
    { S: source.url(), T: target.url() },
  );
  const ctx = phaseContext(plan, silentLogger);
  await runFullLoad(ctx);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 60_000);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-cdc-'));
  writeFileSync(path.join(dir, 'toast.sql'), `\\set id random(1, 1000)\nUPDATE docs SET body = jsonb_set(body, '{n}', to_jsonb((body->>'n')::int + 1)) WHERE id = :id;\n`);
  writeFileSync(path.join(dir, 'events.sql'), `INSERT INTO events (kind) VALUES (1), (2);\nDELETE FROM events WHERE id = (SELECT min(id) FROM events);\n`);
  const pgbench = (rate: number, seconds: number) =>
    new Promise<{ tps: number }>((resolve) => {
      const child = spawn('pgbench', ['-n', '-c', '4', '-j', '2', '-T', String(seconds), '-R', String(rate), '-b', 'tpcb-like@8', '-f', `${path.join(dir, 'toast.sql')}@1`, '-f', `${path.join(dir, 'events.sql')}@1`, '-h', '127.0.0.1', '-p', String(source.port), '-U', 'postgres', 'postgres'], {
        env: { ...process.env, PGPASSWORD: source.password },
      });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', (d) => (text += d));
      child.on('exit', () => resolve({ tps: Number(/tps = ([\d.]+)/.exec(text)?.[1] ?? 0) }));
    });

  const src = new pg.Client({ connectionString: source.url() });
  const tgt = new pg.Client({ connectionString: target.url() });
  await src.connect();
  await tgt.connect();
  const hb = heartbeatTable('all');
  const sampleLag = async (until: () => boolean) => {
    const lags: number[] = [];
    while (!until()) {
      const beat = await writeBeat(src, hb, 'all');
      const waited = await waitForMarker(tgt, hb, 'all', beat, 60_000, 5);
      lags.push(waited ?? 60_000);
      await new Promise((r) => setTimeout(r, 250));
    }
    return lags;
  };
  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  };
  const rates: Array<{ rate: number; tps: number; samples: number; p50: number; p95: number; p99: number; max: number }> = [];
  for (const rate of RATES) {
    let done = false;
    const run = pgbench(rate, SECONDS).finally(() => (done = true));
    const lags = await sampleLag(() => done);
    const { tps } = await run;
    rates.push({ rate, tps: Math.round(tps), samples: lags.length, p50: pct(lags, 50), p95: pct(lags, 95), p99: pct(lags, 99), max: Math.max(...lags) });
    console.error(JSON.stringify(rates.at(-1)));
    await waitForCatchUp(ctx, 300_000);
  }

  // Recovery after faults, under 500 tps: time from the fault's end until a fresh heartbeat is applied.
  const faults: Array<{ fault: string; recoveryMs: number }> = [];
  const recover = async (fault: string, inject: () => Promise<void>) => {
    let done = false;
    const run = pgbench(500, 12).finally(() => (done = true));
    await new Promise((r) => setTimeout(r, 3000));
    await inject();
    const t = Date.now();
    for (;;) {
      try {
        const s = new pg.Client({ connectionString: source.url() });
        const g = new pg.Client({ connectionString: target.url() });
        await s.connect();
        await g.connect();
        const beat = await writeBeat(s, hb, 'all');
        const ok = await waitForMarker(g, hb, 'all', beat, 60_000, 5);
        await s.end();
        await g.end();
        if (ok !== null) break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    faults.push({ fault, recoveryMs: Date.now() - t });
    console.error(JSON.stringify(faults.at(-1)));
    while (!done) await new Promise((r) => setTimeout(r, 100));
    await run;
  };
  await src.end();
  await tgt.end();
  await recover('target restart', () => target.restart());
  await recover('source restart', () => source.restart());
  await recover('network cut for 5 s', async () => {
    proxy.cut(5000);
    await new Promise((r) => setTimeout(r, 5000));
  });
  await waitForCatchUp(ctx, 120_000);
  const sustained = rates.filter((r) => r.p95 < 1000 && r.tps >= r.rate * 0.95).map((r) => r.rate);
  console.log(JSON.stringify({ highestRateWithP95Under1s: sustained.length ? Math.max(...sustained) : 0, rates, faults }, null, 2));
} finally {
  await proxy.close();
  await Promise.all([source.destroy(), target.destroy()]);
}
