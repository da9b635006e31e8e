import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { parseLsn } from '../../src/core/lsn.js';
import { startStandby, type LocalCluster } from '../../src/local/cluster.js';
import { SampleWriter } from '../../src/local/sample.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { seedSample, sql, startServer } from '../harness/servers.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The paused-replica snapshot with a real streaming standby (pg_basebackup): slots on the primary
 * first, replay paused, rows copied from the replica at its replay LSN, CDC from that LSN through
 * the replication origin — exact under writes; replay resumed on success, on failure and on a
 * signal.
 */
let primary: LocalCluster;
let replica: LocalCluster;
let target: LocalCluster;

beforeAll(async () => {
  [primary, target] = await Promise.all([startServer(15, 'pr-primary'), startServer(17, 'pr-target')]);
  for (const c of [primary, target]) await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD 'app-secret-pw'`);
  await sql(primary.url(), 'CREATE DATABASE shop');
  await seedSample(primary.url('shop'), 0.3);
  replica = await startStandby(primary, 'pr-replica');
  track(replica);
});

const standbys: LocalCluster[] = [];
function track(c: LocalCluster) {
  standbys.push(c);
}
afterAll(async () => {
  for (const c of standbys) await c.destroy();
});

const plan = (db: string, extra = '') =>
  `version: 1\nname: ${db}\nsnapshot: paused-replica\nsource: { url: "\${S}", replicaUrl: "\${R}" }\ntarget: { url: "\${T}" }\ncutover: { fence: database }\n${extra}`;
const env = (db: string) => ({ S: primary.url('shop'), R: replica.url('shop'), T: target.url(db) });
const replaying = async () => (await sql(replica.url(), 'SELECT pg_is_wal_replay_paused() AS p'))[0].p === false;

describe('paused-replica snapshot', () => {
  it('copies from the paused replica, resumes it, and CDC from its LSN makes the target exact under writes', async () => {
    await sql(target.url(), 'CREATE DATABASE t1');
    const ctx = phaseContext(parsePlan(plan('t1'), 'plan', env('t1')), silentLogger);
    const writer = new SampleWriter(primary.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
    writer.start();
    try {
      const r = await runFullLoad(ctx);
      expect(await replaying()).toBe(true);
      const [slot] = await sql(primary.url('shop'), `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = 'pgshift_t1_all'`);
      // The copy's LSN is at or past the slot's: no change can fall between them.
      expect(parseLsn(r.groups[0].snapshotLsn) >= parseLsn(slot.c)).toBe(true);
      await startCdc(ctx);
      await new Promise((res) => setTimeout(res, 1000));
    } finally {
      await writer.stop();
    }
    expect(writer.committed).toBeGreaterThan(20);
    await waitForCatchUp(ctx, 60_000);
    const [a, b] = await Promise.all([tableDigests(primary.url('shop'), SAMPLE_TABLES), tableDigests(target.url('t1'), SAMPLE_TABLES)]);
    expect(b).toEqual(a);
  });

  it('resumes replay when the load fails (a WAL limit crossed)', async () => {
    await sql(target.url(), 'CREATE DATABASE t2');
    const ctx = phaseContext(parsePlan(plan('t2', 'fullLoad: { pausedReplica: { warnBytes: 1, stopBytes: 1 } }'), 'plan', env('t2')), silentLogger);
    const writer = new SampleWriter(primary.url('shop', 'shop_app', 'app-secret-pw'), 2, 2);
    writer.start();
    try {
      await expect(runFullLoad(ctx)).rejects.toMatchObject({ code: 'replica.limit' });
    } finally {
      await writer.stop();
    }
    expect(await replaying()).toBe(true);
  });

  it('resumes replay when the process is interrupted by a signal', async () => {
    await sql(target.url(), 'CREATE DATABASE t3');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pr-'));
    const file = path.join(dir, 'migration.yml');
    writeFileSync(file, plan('t3').replace(/\$\{S\}/, '${SOURCE_URL}').replace(/\$\{R\}/, '${REPLICA_URL}').replace(/\$\{T\}/, '${TARGET_URL}'));
    const child = spawn(process.execPath, ['bin/pgshift.js', 'full-load', '-c', file], {
      env: { ...process.env, SOURCE_URL: primary.url('shop'), REPLICA_URL: replica.url('shop'), TARGET_URL: target.url('t3') },
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // Wait until the replica is paused (pg_dump's pre-data comes next, so the load is still running), then interrupt.
    for (let i = 0; i < 1000 && !/paused at/.test(err); i++) await new Promise((r) => setTimeout(r, 5));
    expect(err).toMatch(/paused at/);
    child.kill('SIGTERM');
    expect(await exited, `the load ended before the signal: ${err}`).toBe(130);
    expect(await replaying()).toBe(true);
  });
});
