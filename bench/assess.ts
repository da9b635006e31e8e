import pg from 'pg';
import { parsePlan } from '../src/config/load.js';
import { formatBytes } from '../src/config/size.js';
import { silentLogger } from '../src/core/log.js';
import { startCluster } from '../src/local/cluster.js';
import { runAssess } from '../src/phases/assess.js';
import { phaseContext } from '../src/phases/context.js';

/**
 * Assess on a 1,000-table schema whose statistics say 50 GB: it must finish in seconds without
 * scanning the data. The tables are real (with keys, indexes, LOB columns and a few rows each);
 * their size is the planner's estimate (relpages/reltuples set in pg_class, autovacuum off), which
 * is exactly what assess plans from — so the LOB sampling sizes itself for 50 GB of rows.
 */
const TABLES = Number(process.argv[2] ?? 1000);
const ESTIMATED_BYTES = 50 * 1024 ** 3;

const source = await startCluster({ major: 15, name: 'bench-assess-src', settings: { autovacuum: 'off' } });
const target = await startCluster({ major: 17, name: 'bench-assess-tgt' });
try {
  const c = new pg.Client({ connectionString: source.url() });
  await c.connect();
  const started = Date.now();
  for (let i = 0; i < TABLES; i += 100) {
    const ddl: string[] = [];
    for (let j = i; j < Math.min(i + 100, TABLES); j++) {
      ddl.push(`CREATE TABLE t${j} (id bigint PRIMARY KEY, name text, doc jsonb, tags text[], amount numeric, created_at timestamptz DEFAULT now());
                CREATE INDEX t${j}_created ON t${j} (created_at);
                INSERT INTO t${j} (id, name, doc, tags, amount) SELECT g, 'n' || g, jsonb_build_object('g', g), ARRAY['a'], g FROM generate_series(1, 20) g;`);
    }
    await c.query(ddl.join('\n'));
  }
  await c.query('ANALYZE');
  // Skewed sizes, as in life: a few large tables and a long tail; 50 GB in all.
  const weights = Array.from({ length: TABLES }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  await c.query('BEGIN');
  for (let i = 0; i < TABLES; i++) {
    const bytes = (ESTIMATED_BYTES * weights[i]) / total;
    await c.query(`UPDATE pg_class SET relpages = $1, reltuples = $2 WHERE oid = $3::regclass`, [Math.ceil(bytes / 8192), Math.ceil(bytes / 200), `t${i}`]);
  }
  await c.query('COMMIT');
  await c.end();
  const setupSeconds = (Date.now() - started) / 1000;

  const plan = parsePlan(
    'version: 1\nname: bench\nsource: { url: "${S}" }\ntarget: { url: "${T}" }\ncutover: { fence: database }\nassess: { walSampleSeconds: 1 }\n',
    'bench plan',
    { S: source.url(), T: target.url() },
  );
  const t0 = Date.now();
  const r = await runAssess(phaseContext(plan, silentLogger));
  const seconds = (Date.now() - t0) / 1000;
  const estimated = r.tables.reduce((n, t) => n + t.estimatedBytes, 0);
  const result = {
    tables: r.tables.length,
    estimatedSize: formatBytes(estimated),
    assessSeconds: seconds,
    walSampleSeconds: 1,
    lobTables: r.lobScan.tables,
    lobRowsRead: r.lobScan.rowsScanned,
    lobSampledTables: r.lobScan.sampledTables,
    lobExactTables: r.lobScan.exactTables,
    lobSeconds: r.lobScan.ms / 1000,
    findings: r.findings.length,
    blockers: r.blockers,
    setupSeconds,
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await source.destroy();
  await target.destroy();
}
