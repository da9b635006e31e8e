import { parsePlan } from '../src/config/load.js';
import { createLogger } from '../src/core/log.js';
import { startCluster } from '../src/local/cluster.js';
import { phaseContext } from '../src/phases/context.js';
import { runVerify } from '../src/phases/verify.js';
import { exec, pgbenchInit, timed } from './common.js';
const [s, t] = await Promise.all([
  startCluster({ major: 15, name: 'probe-s', settings: { shared_buffers: "'1GB'", max_parallel_workers_per_gather: 0 } }),
  startCluster({ major: 17, name: 'probe-t', settings: { shared_buffers: "'1GB'", max_parallel_workers_per_gather: 0 } }),
]);
try {
  pgbenchInit(s.url(), 100);
  pgbenchInit(t.url(), 100);
  await exec(t.url(), 'UPDATE pgbench_accounts SET abalance = 1 WHERE aid IN (1, 5000000, 10000000)');
  await exec(s.url(), 'VACUUM ANALYZE');
  await exec(t.url(), 'VACUUM ANALYZE');
  const plan = parsePlan('version: 1\nname: bench\nsource: { url: "${S}" }\ntarget: { url: "${T}" }\ncutover: { fence: database }\nverify: { jobs: 1 }\n', 'p', { S: s.url(), T: t.url() });
  const log = createLogger((l, line) => console.log(new Date().toISOString().slice(14, 23), line), { debug: true });
  const r = await timed(() => runVerify(phaseContext(plan, log), { exact: true }));
  console.log('total', r.seconds.toFixed(2));
} finally {
  await Promise.all([s.destroy(), t.destroy()]);
}
