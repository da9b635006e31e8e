import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { parsePlan } from '../config/load.js';
import { formatBytes } from '../config/size.js';
import { inputError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { runAssess } from '../phases/assess.js';
import { nativeCdcStatus, startNativeCdc, waitForCatchUp } from '../phases/cdc.js';
import { phaseContext } from '../phases/context.js';
import { runCutover, type CutoverResult } from '../phases/cutover.js';
import { runFullLoad, type FullLoadResult } from '../phases/full-load.js';
import { runTeardown } from '../phases/teardown.js';
import { runVerify, type VerifyResult } from '../phases/verify.js';
import { findInstalls, startCluster, type LocalCluster } from './cluster.js';
import { exec } from './exec.js';
import { SAMPLE_TABLES, tableDigests } from './compare.js';
import { APP_ROLE, createSample, SampleWriter } from './sample.js';
import { sleep } from '../core/wait.js';

/**
 * `pgshift demo`: the whole pipeline on two throw-away local servers of different majors, with an
 * application writing all along — assess → full-load → cdc → verify → cutover → teardown — then
 * the proofs: pgshift's own exact verify inside the fenced window, an independent COPY … ORDER BY
 * comparison of every table, every order the application committed present on the target, and
 * the application writing to the target afterwards without a duplicate key (sequences).
 */
export interface DemoOptions {
  sourceMajor: number;
  targetMajor: number;
  scale: number;
  /** Where the plan the demo runs is written, for the reader to start from. */
  planFile?: string;
  log: Logger;
}

export interface DemoResult {
  source: string;
  target: string;
  phases: Array<{ phase: string; seconds: number; note: string }>;
  fullLoad: Pick<FullLoadResult, 'rows' | 'bytes' | 'seconds' | 'rowsPerSecond'>;
  cutoverWindowMs: number;
  verify: VerifyResult['verdict'];
  independentCheck: { tables: number; equal: boolean; mismatched: string[] };
  planFile?: string;
  writes: { committedBeforeCutover: number; committedOnTarget: number; failedDuringWindow: number; ordersMissingOnTarget: number };
  equal: boolean;
  markdown: string;
}

/** The sample schema has a stored generated column, which PostgreSQL has from 12 on. */
const SAMPLE_MIN_MAJOR = 12;

function pickMajors(source: number, target: number): { source: number; target: number } {
  const installed = [...new Set(findInstalls().map((i) => i.major))].sort((a, b) => a - b);
  if (installed.length === 0) throw inputError('demo.binaries', 'no PostgreSQL binaries found', 'run npm install (it brings PostgreSQL 10, 11, 13 and 17)');
  for (const [flag, major] of [['--source-major', source], ['--target-major', target]] as const) {
    if (!installed.includes(major)) throw inputError('demo.major', `${flag} ${major}: no PostgreSQL ${major} binaries on this machine`, `choose one of ${installed.join(', ')}`);
  }
  if (source < SAMPLE_MIN_MAJOR) {
    throw inputError('demo.major', `--source-major ${source}: the demo's sample schema needs PostgreSQL ${SAMPLE_MIN_MAJOR} or later (generated columns)`, `choose one of ${installed.filter((m) => m >= SAMPLE_MIN_MAJOR).join(', ')}; pgshift itself migrates sources from 10 on`);
  }
  if (target < source) throw inputError('demo.major', `--target-major ${target} is older than --source-major ${source}`, 'a migration goes to the same or a newer major');
  return { source, target };
}

// Long on purpose: the demo is the migration's phases in order, as the README tells them.
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { log } = options;
  const majors = pickMajors(options.sourceMajor, options.targetMajor);
  // Written first: the reader gets the plan even when a step fails, and a file of their own is
  // refused before any server starts.
  if (options.planFile) writeDemoPlan(options.planFile, majors);
  log.info(`demo: starting PostgreSQL ${majors.source} (source) and PostgreSQL ${majors.target} (target) on this machine`);
  const clusters: LocalCluster[] = [];
  const phases: DemoResult['phases'] = [];
  let writer: SampleWriter | undefined;
  const step = async <T>(phase: string, fn: () => Promise<T>, note: (r: T) => string): Promise<T> => {
    const t = Date.now();
    const r = await fn();
    const entry = { phase, seconds: (Date.now() - t) / 1000, note: note(r) };
    phases.push(entry);
    log.info(`demo: ${phase} done in ${entry.seconds.toFixed(1)} s — ${entry.note}`);
    return r;
  };
  try {
    const [source, target] = await Promise.all([
      startCluster({ major: majors.source, name: 'demo-source' }),
      startCluster({ major: majors.target, name: 'demo-target' }),
    ]);
    clusters.push(source, target);
    const appPassword = `app-${Math.random().toString(36).slice(2)}`;
    for (const c of [source, target]) {
      await exec(c.url(), `CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${appPassword}'`);
      await exec(c.url(), 'CREATE DATABASE shop');
    }
    await step('sample data', async () => {
      const c = new pg.Client({ connectionString: source.url('shop') });
      await c.connect();
      try {
        await createSample(c, options.scale);
      } finally {
        await c.end();
      }
    }, () => 'schema with identity, serial and text keys, enum, arrays, jsonb, bytea, a partitioned table, FKs, quoted names');

    const plan = parsePlan(DEMO_PLAN, options.planFile ?? 'demo plan', { SOURCE_URL: source.url('shop'), TARGET_URL: target.url('shop') });
    const ctx = phaseContext(plan, log);
    const appUrl = (c: LocalCluster) => c.url('shop', APP_ROLE, appPassword);

    writer = new SampleWriter(appUrl(source), 3, 2);
    writer.start();
    log.info('demo: the application is writing to the source (3 connections)');

    await step('assess', () => runAssess(ctx), (r) => `${r.groups.length} groups, ${r.blockers} blockers, ${r.findings.length} findings`);
    const load = await step('full-load', () => runFullLoad(ctx), (r) => `${r.rows} rows, ${formatBytes(r.bytes)}, ${r.rowsPerSecond} rows/s, snapshot LSNs ${r.groups.map((g) => g.snapshotLsn).join(', ')}`);
    await step('cdc start', () => startNativeCdc(ctx), (r) => r.groups.map((g) => `${g.group}: ${g.health}`).join(', '));
    await step('cdc catch-up', () => waitForCatchUp(ctx, 60_000), (ms) => `every group applied a fresh heartbeat within ${ms} ms`);
    await step('cdc status', () => nativeCdcStatus(ctx), (r) => r.groups.map((g) => `${g.group}: lag ${g.lagSeconds?.toFixed(2) ?? '?'} s / ${formatBytes(g.lagBytes ?? 0)}`).join(', '));
    await step('verify (writes flowing)', async () => {
      // A table that kept changing under every check is re-verified: the gate wants a pass.
      let r = await runVerify(ctx);
      for (let i = 0; i < 3 && r.verdict === 'unsettled'; i++) r = await runVerify(ctx, { tables: r.unsettled });
      return r;
    }, (r) => `${r.verdict}: ${r.tables.length - r.unsettled.length - r.differences.length} equal, ${r.unsettled.length} still changing, ${r.differences.length} different`);
    const committedBefore = writer.committed;
    const failedBefore = writer.failed;
    const cut: CutoverResult = await step('cutover', () => runCutover(ctx), (r) => `write-unavailable window ${r.windowMs} ms, ${r.sequences.length} sequences set`);
    const exact = await step('verify (exact, fenced)', () => runVerify(ctx, { exact: true }), (r) => `${r.verdict}: ${r.tables.length} tables compared by count and content hash`);
    const independent = await step('independent check', async () => {
      const [a, b] = await Promise.all([tableDigests(source.url('shop'), SAMPLE_TABLES), tableDigests(target.url('shop'), SAMPLE_TABLES)]);
      const mismatched = SAMPLE_TABLES.filter((t) => JSON.stringify(a.get(t)) !== JSON.stringify(b.get(t)));
      return { tables: SAMPLE_TABLES.length, equal: mismatched.length === 0, mismatched };
    }, (r) => (r.equal ? `all ${r.tables} tables identical row for row (COPY … ORDER BY, sha256)` : `DIFFERENT: ${r.mismatched.join(', ')}`));

    const failedDuringWindow = writer.failed - failedBefore;
    const committedAtSwitch = writer.committed;
    const orders = [...writer.committedOrders];
    writer.repoint(appUrl(target));
    await sleep(2000); // the writers' transactions on the target, counted below
    await writer.stop();
    const committedOnTarget = writer.committed - committedAtSwitch;
    const missing = await missingOrders(target.url('shop'), orders);
    await step('teardown', () => runTeardown(ctx), (r) => `${r.dropped.length} objects removed`);

    const equal = exact.verdict === 'equal' && independent.equal && missing === 0 && committedOnTarget > 0;
    const result: Omit<DemoResult, 'markdown'> = {
      source: `PostgreSQL ${majors.source}`,
      target: `PostgreSQL ${majors.target}`,
      phases,
      fullLoad: { rows: load.rows, bytes: load.bytes, seconds: load.seconds, rowsPerSecond: load.rowsPerSecond },
      cutoverWindowMs: cut.windowMs ?? -1,
      verify: exact.verdict,
      independentCheck: independent,
      planFile: options.planFile,
      writes: { committedBeforeCutover: committedBefore, committedOnTarget, failedDuringWindow, ordersMissingOnTarget: missing },
      equal,
    };
    return { ...result, markdown: demoMarkdown(result) };
  } finally {
    await writer?.stop();
    await Promise.all(clusters.map((c) => c.destroy()));
  }
}

/** The plan the demo runs; the URLs come from the environment, as in a plan of one's own. */
const DEMO_PLAN = `version: 1
name: demo
source: { url: "\${SOURCE_URL}" }
target: { url: "\${TARGET_URL}" }
groups:
  - { name: orders, tables: [shop.orders, shop.order_items] }
  - { name: rest, tables: ["*.*"] }
fullLoad: { jobs: 2 }
assess: { walSampleSeconds: 1 }
cutover: { fence: roles, roles: [${APP_ROLE}], timeoutSeconds: 30 }
`;

const DEMO_PLAN_HEADER = '# The plan pgshift demo ran';

/** The three commands that start the same migration between two servers of one's own. */
export const NEXT_COMMANDS = [
  "export SOURCE_URL='postgresql://user@source-host:5432/dbname' TARGET_URL='postgresql://user@target-host:5432/dbname'",
  'npx pgshift init      # reads both servers, proposes the groups, writes migration.yml',
  'npx pgshift assess    # blockers and risks with their fixes; then full-load, cdc start, verify, cutover',
];

function writeDemoPlan(file: string, majors: { source: number; target: number }): void {
  if (existsSync(file) && !readFileSync(file, 'utf8').startsWith(DEMO_PLAN_HEADER)) {
    throw inputError('demo.plan-file', `${file} exists and was not written by pgshift demo; the demo does not overwrite it`, 'pass --plan-file with another path');
  }
  const header = [
    `${DEMO_PLAN_HEADER} (PostgreSQL ${majors.source} → ${majors.target}, the sample database shop). Its servers are gone`,
    '# when the demo ends; for your own, pgshift init writes a plan like this one from SOURCE_URL and TARGET_URL.',
    '',
  ].join('\n');
  writeFileSync(file, header + DEMO_PLAN);
}

async function missingOrders(url: string, ids: bigint[]): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.id = id)`, [ids.map(String)]);
    return Number(r.rows[0].n);
  } finally {
    await c.end();
  }
}

function demoMarkdown(r: Omit<DemoResult, 'markdown'>): string {
  const lines = [
    `## pgshift demo: ${r.source} → ${r.target}`,
    '',
    '| phase | seconds | what happened |',
    '| --- | --- | --- |',
    ...r.phases.map((p) => `| ${p.phase} | ${p.seconds.toFixed(1)} | ${p.note} |`),
    '',
    `- Full load: ${r.fullLoad.rows} rows (${formatBytes(r.fullLoad.bytes)}) at ${r.fullLoad.rowsPerSecond} rows/s.`,
    `- Application: ${r.writes.committedBeforeCutover} transactions committed on the source before the cut-over; ${r.writes.failedDuringWindow} attempts refused while writes were fenced; ${r.writes.committedOnTarget} committed on the target afterwards (no duplicate keys: sequences were carried over).`,
    `- Write-unavailable window (fence → switch): **${r.cutoverWindowMs} ms**.`,
    `- Every order the application committed is on the target: ${r.writes.ordersMissingOnTarget === 0 ? 'yes' : `NO, ${r.writes.ordersMissingOnTarget} missing`}.`,
    `- pgshift verify inside the fenced window: **${r.verify}**; independent COPY … ORDER BY comparison of ${r.independentCheck.tables} tables: **${r.independentCheck.equal ? 'identical' : `different (${r.independentCheck.mismatched.join(', ')})`}**.`,
    '',
    r.equal ? 'Result: the target equals the source row for row. Both servers have been removed.' : 'Result: FAILED — see above.',
    ...(r.planFile ? ['', `The plan this demo ran is in ${r.planFile}. The same against your own servers (docs/guide.md walks through each step):`, '', '```sh', ...NEXT_COMMANDS, '```'] : []),
  ];
  return `${lines.join('\n')}\n`;
}
