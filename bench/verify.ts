import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { parsePlan } from '../src/config/load.js';
import { createLogger, silentLogger } from '../src/core/log.js';
import { startCluster } from '../src/local/cluster.js';
import { phaseContext } from '../src/phases/context.js';
import { runVerify } from '../src/phases/verify.js';
import { exec, peakRss, pgbenchInit, ratio, timed } from './common.js';

/**
 * verify --mode full against the two baselines of issue 7, in one run on the same data:
 *   read-once  COPY … TO '/dev/null' of every table, in the server, on both sides at once (the
 *              issue's baseline); also COPY … TO STDOUT into this process, discarded;
 *   pgcopydb   its whole-table checksum per table (count + md5 of sum(hashtext(row))) on both sides.
 * Data: pgbench scale S (S × 100,000 rows in pgbench_accounts; 100 → 10 M rows) on a PostgreSQL 15
 * source and a 17 target, with differences planted on the target in the first and last chunks,
 * NULLs and a TOASTed value; verify must report exactly those.
 */
const SCALE = Number(process.argv[2] ?? 100);
const [source, target] = await Promise.all([
  startCluster({ major: 15, name: 'bench-verify-src', settings: { shared_buffers: "'2GB'", max_parallel_workers_per_gather: 0 } }),
  startCluster({ major: 17, name: 'bench-verify-tgt', settings: { shared_buffers: "'2GB'", max_parallel_workers_per_gather: 0 } }),
]);
try {
  const setup = await timed(async () => {
    pgbenchInit(source.url(), SCALE);
    pgbenchInit(target.url(), SCALE);
    for (const url of [source.url(), target.url()]) {
      await exec(url, `CREATE TABLE docs (id int PRIMARY KEY, body jsonb, note text);
        INSERT INTO docs SELECT i, jsonb_build_object('text', repeat(md5(i::text), CASE WHEN i % 100 = 0 THEN 400 ELSE 2 END)), CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END FROM generate_series(1, 200000) i;`);
      await exec(url, 'VACUUM ANALYZE');
    }
    const last = SCALE * 100000;
    await exec(target.url(), `
      UPDATE pgbench_accounts SET abalance = 1 WHERE aid IN (1, 2, ${Math.floor(last / 2)}, ${last});
      DELETE FROM pgbench_accounts WHERE aid IN (3, ${last - 1});
      INSERT INTO pgbench_accounts VALUES (${last + 1}, 1, 0, 'extra');
      UPDATE docs SET note = NULL WHERE id = 1;
      UPDATE docs SET body = jsonb_build_object('text', repeat('z', 20000)) WHERE id = 100;
      DELETE FROM docs WHERE id = 200000;`);
  });
  // Nothing left over from the setup (a checkpoint of the load's WAL) runs under the timings.
  for (const url of [source.url(), target.url()]) await exec(url, 'CHECKPOINT');
  const planted = 4 + 2 + 1 + 3;
  const tables = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history', 'docs'];

  // Each baseline twice, the faster one kept: the comparison is against a warm, undisturbed read.
  // In the server to /dev/null (nothing leaves it, as with verify's fingerprints), and to this
  // process (what a client-side comparison would pay at least).
  const readBoth = (into: 'devnull' | 'stdout') => timed(() =>
    Promise.all([source.url(), target.url()].map(async (url) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      let bytes = 0;
      for (const t of tables) {
        if (into === 'devnull') await c.query(`COPY ${t} TO '/dev/null'`);
        else await pipeline(c.query(copyTo(`COPY ${t} TO STDOUT`)), new Writable({ write(chunk, _e, done) { bytes += chunk.length; done(); } }));
      }
      await c.end();
      return bytes;
    })),
  );
  const faster = <T extends { seconds: number }>(runs: T[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const readRuns = [await readBoth('devnull'), await readBoth('devnull')];
  const readOnce = faster(readRuns);
  const streamRuns = [await readBoth('stdout'), await readBoth('stdout')];
  const streamOnce = faster(streamRuns);

  const pgcopydb = await timed(() =>
    Promise.all([source.url(), target.url()].map(async (url) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      for (const t of tables) {
        await c.query(`SELECT count(1) AS cnt, md5(format('%s-%s', sum(hashtext(x::text)::bigint), count(1)))::uuid AS chksum FROM ONLY ${t} x`);
      }
      await c.end();
    })),
  );

  const plan = parsePlan('version: 1\nname: bench\nsource: { url: "${S}" }\ntarget: { url: "${T}" }\ncutover: { fence: database }\nverify: { jobs: 1 }\n', 'bench plan', { S: source.url(), T: target.url() });
  // BENCH_VERBOSE=1: verify's debug log (time per table and per step) on stderr.
  const log = process.env.BENCH_VERBOSE ? createLogger((level, m) => console.error(`${level}: ${m}`), { debug: true }) : silentLogger;
  const ctx = phaseContext(plan, log);
  const verify = await peakRss(() => timed(() => runVerify(ctx, { mode: 'full', exact: true })));
  const r = verify.value.value;
  const found = r.tables.reduce((n, t) => n + t.differenceCount, 0);
  console.log(JSON.stringify({
    rows: SCALE * 100000 + 200000,
    setupSeconds: Math.round(setup.seconds),
    readBothSidesOnceSeconds: Number(readOnce.seconds.toFixed(2)),
    readBothSidesOnceRuns: readRuns.map((r) => Number(r.seconds.toFixed(2))),
    streamBothSidesOnceSeconds: Number(streamOnce.seconds.toFixed(2)),
    streamBothSidesOnceRuns: streamRuns.map((r) => Number(r.seconds.toFixed(2))),
    copyBytesPerSide: streamOnce.value[0],
    pgcopydbChecksumSeconds: Number(pgcopydb.seconds.toFixed(2)),
    verifyFullSeconds: Number(verify.value.seconds.toFixed(2)),
    verifyPeakRssMb: verify.peakMb,
    verifyVsReadOnce: ratio(verify.value.seconds, readOnce.seconds),
    verifyVsStreamOnce: ratio(verify.value.seconds, streamOnce.seconds),
    verifyVsPgcopydb: ratio(verify.value.seconds, pgcopydb.seconds),
    plantedDifferences: planted,
    reportedDifferences: found,
    verdict: r.verdict,
    tables: r.tables.map((t) => `${t.table}: ${t.mismatchedChunks}/${t.chunks} mismatched chunks, ${t.seconds.toFixed(2)} s`),
  }, null, 2));
} finally {
  await Promise.all([source.destroy(), target.destroy()]);
}
