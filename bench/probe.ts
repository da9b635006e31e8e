import { parsePlan } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { startCluster } from '../src/local/cluster.js';
import { phaseContext } from '../src/phases/context.js';
import { runVerify } from '../src/phases/verify.js';
import { exec, pgbenchInit, timed } from './common.js';
const [s, t] = await Promise.all([
  startCluster({ major: 15, name: 'probe-s', settings: { shared_buffers: "'1GB'", max_parallel_workers_per_gather: 0 } }),
  startCluster({ major: 17, name: 'probe-t', settings: { shared_buffers: "'1GB'", max_parallel_workers_per_gather: 0 } }),
]);
try {
  pgbenchInit(s.url(), 20);
  pgbenchInit(t.url(), 20);
  await exec(s.url(), 'VACUUM ANALYZE');
  await exec(t.url(), 'VACUUM ANALYZE');
  const plan = parsePlan('version: 1\nname: bench\nsource: { url: "${S}" }\ntarget: { url: "${T}" }\ncutover: { fence: database }\nverify: { jobs: 1 }\n', 'p', { S: s.url(), T: t.url() });
  const pg = (await import('pg')).default;
  const { keyedTable, rangeFingerprint, rangesFrom, chunkBoundaries } = await import('../src/pg/chunks.js');
  const { listTables } = await import('../src/pg/catalog.js');
  const { useCanonicalSettings } = await import('../src/pg/hash.js');
  for (const [name, url, v] of [['source15', s.url(), 150000], ['target17', t.url(), 170000]] as const) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await useCanonicalSettings(c);
    const tables = await listTables(c, v);
    const kt = keyedTable(tables.find((x) => x.name === 'pgbench_accounts')!)!;
    const b = await chunkBoundaries(c, kt, 100000, 2000000);
    const ranges = rangesFrom(b);
    const big = rangesFrom(b.filter((_, i) => i % 5 === 4));
    for (const [label, rs, setting] of [['100 chunks', ranges, ''], ['100 chunks', ranges, ''], ['20 chunks', big, ''], ['20 chunks bitmap', big, 'SET enable_indexscan = off'], ['100 chunks bitmap', ranges, 'SET enable_indexscan = off']] as const) {
      if (setting) await c.query(setting);
      const x = await timed(async () => { for (const r of rs) await rangeFingerprint(c, kt, r, v); });
      await c.query('RESET enable_indexscan');
      console.log(name, label, x.seconds.toFixed(2));
    }
    const row = 'ROW(aid, bid, abalance, filler)::text';
    for (let i = 0; i < 2; i++) {
      const g = await timed(() => c.query(`SELECT width_bucket(aid, $1::int[]) AS b, count(*), sum(hashtextextended(${row}, 0)::numeric) FROM pgbench_accounts GROUP BY 1`, [b]));
      console.log(name, 'grouped seq scan', g.seconds.toFixed(2), g.value.rowCount);
      const w = await timed(() => c.query(`SELECT count(*), sum(hashtextextended(${row}, 0)::numeric) FROM pgbench_accounts`));
      console.log(name, 'whole', w.seconds.toFixed(2));
    }
    await c.end();
  }
  const r = await timed(() => runVerify(phaseContext(plan, silentLogger), { exact: true }));
  console.log('total', r.seconds.toFixed(2), r.value.tables.map((x) => `${x.table} ${x.seconds.toFixed(2)} ${x.chunks}`));
} finally {
  await Promise.all([s.destroy(), t.destroy()]);
}
