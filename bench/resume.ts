import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startCluster } from '../src/local/cluster.js';
import { exec, pgbenchInit, ratio } from './common.js';

/**
 * A full load killed (SIGKILL of its process group) at about half-way and run again, against the
 * same load uninterrupted, each into a fresh target database (PostgreSQL 15 → 17, exported
 * snapshot, native engine): total wall time of both runs against the uninterrupted one, and the
 * share of the work redone — finished parts discarded with their table plus the bytes in flight at
 * the kill — from the resume's own report in the journal.
 *
 * Data: pgbench at scale S (pgbench_accounts split into parts) plus T tables of pgbench_accounts'
 * shape, 1/T of its size each, so that the load has whole tables as well as parts.
 * `node bench/run.mjs resume [scale] [tables] [jobs] [split]`.
 */
const SCALE = Number(process.argv[2] ?? 50);
const TABLES = Number(process.argv[3] ?? 8);
const JOBS = Number(process.argv[4] ?? 4);
const SPLIT = process.argv[5] ?? '64MB';
const settings = { shared_buffers: "'1GB'", max_wal_size: "'8GB'", checkpoint_timeout: "'30min'", wal_level: 'logical' };
const [source, target] = await Promise.all([startCluster({ major: 15, name: 'bench-rs-src', settings }), startCluster({ major: 17, name: 'bench-rs-tgt', settings })]);

function planFile(db: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-bench-rs-')), 'migration.yml');
  writeFileSync(file, `version: 1\nname: ${db}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\nfullLoad: { jobs: ${JOBS}, indexJobs: 2, splitTablesLargerThan: ${SPLIT}, maxPartsPerTable: 32 }\n`);
  return file;
}

function load(db: string, file: string): { pid: number; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  let stderr = '';
  const child = spawn(process.execPath, ['bin/pgshift.js', 'full-load', '-c', file], { env: { ...process.env, S: source.url('bench'), T: target.url(db) }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => (stderr += d));
  return { pid: child.pid!, done: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr }))) };
}

async function q<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** COPY bytes committed so far: whole tables and parts (a split table's part-0 summary row not counted twice). */
const committed = async (db: string) =>
  Number((await q<{ b: string }>(target.url(db), `SELECT coalesce(sum(bytes), 0)::text AS b FROM pgshift.copy_progress c WHERE state = 'done' AND (part > 0 OR NOT EXISTS (SELECT 1 FROM pgshift.copy_progress p WHERE p.table_name = c.table_name AND p.table_schema = c.table_schema AND p.part > 0))`).catch(() => [{ b: '0' }]))[0].b);

try {
  await exec(source.url(), 'CREATE DATABASE bench');
  console.log(`generating: pgbench scale ${SCALE} and ${TABLES} tables of 1/${TABLES} its size …`);
  pgbenchInit(source.url('bench'), SCALE);
  for (let i = 1; i <= TABLES; i++) {
    await exec(source.url('bench'), `CREATE TABLE t${i} (LIKE pgbench_accounts INCLUDING ALL); INSERT INTO t${i} SELECT * FROM pgbench_accounts WHERE aid % ${TABLES} = ${i - 1}; ANALYZE t${i}`);
  }

  await exec(target.url(), 'CREATE DATABASE plain');
  let t = Date.now();
  const plain = await load('plain', planFile('plain')).done;
  if (plain.code !== 0) throw new Error(plain.stderr);
  const plainSeconds = (Date.now() - t) / 1000;
  const total = await committed('plain');
  console.log(`uninterrupted: ${plainSeconds.toFixed(1)} s, ${(total / 1048576).toFixed(0)} MB of COPY`);

  await exec(target.url(), 'CREATE DATABASE killed');
  const file = planFile('killed');
  t = Date.now();
  const first = load('killed', file);
  let exited = false;
  void first.done.then(() => (exited = true));
  while (!exited && (await committed('killed')) < total / 2) await new Promise((r) => setTimeout(r, 20));
  process.kill(-first.pid, 'SIGKILL');
  await first.done;
  const atKill = await committed('killed');
  const firstSeconds = (Date.now() - t) / 1000;
  t = Date.now();
  const second = await load('killed', file).done;
  if (second.code !== 0) throw new Error(second.stderr);
  const secondSeconds = (Date.now() - t) / 1000;
  const resumes = await q<{ detail: { kept: { bytes: number }; discarded: { bytes: number; tables: string[] }; inFlightBytes: number; copied: { bytes: number } } }>(
    target.url('killed'),
    `SELECT detail FROM pgshift.phase WHERE phase LIKE 'full-load:resume:%'`,
  );
  const r = resumes[0].detail;
  const redone = r.discarded.bytes + r.inFlightBytes;
  const mb = (b: number) => `${(b / 1048576).toFixed(0)} MB`;
  console.log(`killed at ${mb(atKill)} of ${mb(total)} committed (${((100 * atKill) / total).toFixed(0)} %) after ${firstSeconds.toFixed(1)} s; resumed in ${secondSeconds.toFixed(1)} s`);
  console.log(`kept ${mb(r.kept.bytes)}; copied by the resume ${mb(r.copied.bytes)}; redone ${mb(redone)} = ${((100 * redone) / total).toFixed(1)} % of the load (finished parts discarded ${mb(r.discarded.bytes)}${r.discarded.tables.length ? ` of ${r.discarded.tables.join(', ')}` : ''}, in flight ~${mb(r.inFlightBytes)})`);
  console.log(`total wall ${(firstSeconds + secondSeconds).toFixed(1)} s vs ${plainSeconds.toFixed(1)} s uninterrupted: ×${ratio(firstSeconds + secondSeconds, plainSeconds)}`);
  console.log(`at most the parts in flight would be ${JOBS} × ${SPLIT} = ${((100 * JOBS * parseInt(SPLIT, 10) * 1048576) / total).toFixed(1)} % of the load`);
} finally {
  await Promise.all([source.destroy(), target.destroy()]);
}
