import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import type { LocalCluster } from '../../src/local/cluster.js';
import { startPgBouncer, type LocalBouncer } from '../../src/local/pgbouncer.js';
import { createSample, SampleWriter } from '../../src/local/sample.js';
import { startCdc, waitForCatchUp } from '../../src/phases/cdc.js';
import { phaseContext } from '../../src/phases/context.js';
import { runFullLoad } from '../../src/phases/full-load.js';
import { SAMPLE_TABLES, tableDigests } from '../harness/compare.js';
import { startProxy, type Proxy } from '../harness/proxy.js';
import { any, holdLocks, runCli, until, writableAfter, type CliRun } from '../harness/faults.js';
import { sql, startServer, withClient } from '../harness/servers.js';

/**
 * The cut-over's fault matrix, on real PostgreSQL 15 → 17 servers with PgBouncer in front of the
 * source and an application writing through it. For each step of the window — fence, barrier,
 * sequences, final check, switch — pgshift (the CLI, as a child process) is held inside the step by
 * a lock or a frozen proxy the test controls, then interrupted: SIGKILL of its whole process group,
 * SIGINT, SIGTERM, or the step's own budget running out. Each case asserts how long until the
 * application can write again (on the source when undone, on the target when completed), the
 * journal's final state, and at the end that a re-run cuts over with source and target equal.
 *
 * Steps before the decision end undone; the switch (after the decision) always completes. The
 * longest times measured are printed as a table for bench/README.md.
 */
const APP_PW = 'app-secret-pw';
const BOUND_MS = 15_000; // guardSeconds (5) + the watchdog's start and recovery + slack on a busy machine
const WRITABLE_WITHIN_MS = BOUND_MS + 10_000;
let source: LocalCluster;
let target: LocalCluster;
let proxy: Proxy;
const measured: Array<{ step: string; kind: string; outcome: string; ms: number }> = [];

type Kind = 'SIGKILL' | 'SIGINT' | 'SIGTERM' | 'budget' | 'SIGSTOP';
type Step = 'fence' | 'barrier' | 'sequences' | 'final check' | 'switch';

beforeAll(async () => {
  [source, target] = await Promise.all([startServer(15, 'faults-src'), startServer(17, 'faults-tgt')]);
  for (const c of [source, target]) await sql(c.url(), `CREATE ROLE shop_app LOGIN PASSWORD '${APP_PW}'`);
  proxy = await startProxy(source.port);
});

afterAll(async () => {
  await proxy?.close();
});

interface Migration {
  db: string;
  bouncer: LocalBouncer;
  writer: SampleWriter;
  plan(budgets: 'hold' | 'tight'): string;
  env: Record<string, string>;
}

/** A migration streaming through CDC, PgBouncer in front of its source, an application writing through it. */
async function migration(db: string): Promise<Migration> {
  await sql(source.url(), `CREATE DATABASE ${db}`);
  await sql(target.url(), `CREATE DATABASE ${db}`);
  await withClient(source.url(db), async (c) => {
    await createSample(c, 0.02);
    await c.query(`GRANT INSERT, SELECT ON ALL TABLES IN SCHEMA shop TO shop_app; GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO shop_app`);
  });
  const bouncer = await startPgBouncer({ databases: { app: { host: '127.0.0.1', port: source.port, dbname: db, user: 'shop_app', password: APP_PW } } });
  const env = {
    ...process.env,
    S: source.url(db),
    T: target.url(db),
    // The subscription reaches the source through the proxy, so the test can freeze the stream.
    SUB: `host=127.0.0.1 port=${proxy.port} user=postgres password=${source.password} dbname=${db}`,
  } as Record<string, string>;
  const files = { hold: '', tight: '' };
  for (const budgets of ['hold', 'tight'] as const) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-faults-'));
    files[budgets] = path.join(dir, 'migration.yml');
    // hold: budgets far longer than a held step; tight: a held step runs over its budget.
    const limits =
      budgets === 'hold'
        ? 'lockTimeoutSeconds: 60, lockAttempts: 1, timeoutSeconds: 120, sequenceSeconds: 120, finalCheckSeconds: 120'
        : 'lockTimeoutSeconds: 1, lockAttempts: 2, timeoutSeconds: 5, sequenceSeconds: 2, finalCheckSeconds: 2';
    writeFileSync(
      files[budgets],
      `version: 1
name: ${db}
source: { url: "\${S}", subscriptionConninfo: "\${SUB}" }
target: { url: "\${T}" }
cutover:
  fence: pgbouncer
  roles: [shop_app]
  pgbouncer: { adminUrl: "${bouncer.adminUrl}", database: app, configFile: "${bouncer.configFile}" }
  maxLagBytes: 1GB
  verifyMaxAgeMinutes: 0
  guardSeconds: 5
  ${limits.split(', ').join('\n  ')}
`,
    );
  }
  const ctx = phaseContext(parsePlan(`version: 1\nname: ${db}\nsource: { url: "\${S}", subscriptionConninfo: "\${SUB}" }\ntarget: { url: "\${T}" }\n`, 'plan', env), silentLogger);
  await runFullLoad(ctx);
  await startCdc(ctx);
  await waitForCatchUp(ctx, 30_000);
  const writer = new SampleWriter(bouncer.url('app', 'shop_app'), 2, 10);
  writer.start();
  return { db, bouncer, writer, plan: (b) => files[b], env };
}

/** The CLI's cutover in its own process group (as a runner starts it), so its whole group can be killed. */
function cutover(m: Migration, budgets: 'hold' | 'tight'): CliRun {
  return runCli(['cutover', '--yes', '-c', m.plan(budgets)], m.env);
}

/** Hold pgshift inside one step; `reached` says it is there. */
interface Hold {
  engage(): Promise<void>;
  reached(): Promise<boolean>;
  release(): Promise<void>;
}

function holdFor(step: Step, m: Migration): Hold {
  const src = source.url(m.db);
  const tgt = target.url(m.db);
  let lock: pg.Client | undefined;
  const take = async (url: string, statements: string[]) => {
    lock = await holdLocks(url, statements);
  };
  const fenceHeld = () => any(src, `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'pgshift fence' AND l.mode = 'ExclusiveLock' AND l.granted`);
  const waitingOn = (url: string, pattern: string) => any(url, `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ~ $1`, [pattern]);
  let beatBefore = '0';
  const beatWritten = async () => (await sql<{ seq: string }>(src, `SELECT seq::text FROM pgshift.heartbeat_all`))[0].seq !== beatBefore;
  switch (step) {
    case 'fence':
      // An open transaction on a migrated table: the window fence's LOCK waits for it.
      return { engage: () => take(src, ['LOCK TABLE shop.orders IN ROW EXCLUSIVE MODE']), reached: () => waitingOn(src, '^LOCK TABLE'), release: async () => void (await lock?.query('ROLLBACK')) };
    case 'barrier':
      // The stream stands still: the barrier's heartbeat cannot arrive.
      return {
        engage: async () => {
          beatBefore = (await sql<{ seq: string }>(src, `SELECT seq::text FROM pgshift.heartbeat_all`))[0].seq;
          proxy.freeze();
        },
        reached: async () => (await fenceHeld()) && (await beatWritten()),
        release: async () => proxy.thaw(),
      };
    case 'sequences':
    case 'final check': {
      // The gate reads these objects too, so the lock comes once the window is in the barrier:
      // the stream is frozen until then, the lock taken, then the stream let go. sequences: ALTER
      // SEQUENCE in an open transaction on the target (setval waits); final check: a table the
      // final check reads (and the application never writes) locked on the target.
      const statement = step === 'sequences' ? 'ALTER SEQUENCE shop.orders_id_seq CACHE 1' : 'LOCK TABLE public.countries IN ACCESS EXCLUSIVE MODE';
      const waiter = step === 'sequences' ? `application_name = 'pgshift' AND query ~ 'setval|orders_id_seq'` : `application_name = 'pgshift verify'`;
      let locked = false;
      return {
        engage: async () => {
          beatBefore = (await sql<{ seq: string }>(src, `SELECT seq::text FROM pgshift.heartbeat_all`))[0].seq;
          proxy.freeze();
        },
        reached: async () => {
          if (!locked) {
            if (!((await fenceHeld()) && (await beatWritten()))) return false;
            await take(tgt, [statement]);
            locked = true;
            proxy.thaw();
          }
          return any(tgt, `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ${waiter}`);
        },
        release: async () => {
          proxy.thaw();
          await lock?.query('ROLLBACK');
        },
      };
    }
    case 'switch':
      // After the decision: the seal's ALTER ROLE waits on the catalog the test holds.
      return { engage: () => take(src, ['LOCK TABLE pg_catalog.pg_db_role_setting IN SHARE MODE']), reached: () => waitingOn(src, '^ALTER ROLE'), release: async () => void (await lock?.query('COMMIT')) };
  }
}

async function cutoverState(db: string): Promise<{ state: string; by: string | null }> {
  const [r] = await sql<{ state: string; by: string | null }>(target.url(db), `SELECT state, coalesce(detail->>'undoneBy', detail->>'completedBy') AS by FROM pgshift.phase WHERE phase = 'cutover'`);
  return r;
}

/** One cell of the matrix: hold pgshift in `step`, interrupt it with `kind`, check what follows. */
async function interrupt(m: Migration, step: Step, kind: Kind): Promise<void> {
  const hold = holdFor(step, m);
  await hold.engage();
  const run = cutover(m, kind === 'budget' ? 'tight' : 'hold');
  let released = false;
  try {
    if (kind === 'budget') {
      // The step runs over its budget by itself: pgshift cancels it and undoes the window.
      await until('pgshift to give up', async () => run.child.exitCode !== null || ((await hold.reached()) && false));
      const out = await run.exited;
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toMatch(step === 'fence' ? /could not lock the migrated tables/ : /exceeded its budget|did not reach the target within/);
      expect(out.stderr).toMatch(step === 'fence' ? /cut-over undone/ : new RegExp(`cut-over undone: step ${step}|cut-over undone: group`));
      const since = Date.now();
      const ms = await writableAfter([m.bouncer.url('app', 'shop_app'), source.url(m.db, 'shop_app', APP_PW)], since, WRITABLE_WITHIN_MS);
      measured.push({ step, kind, outcome: 'undone', ms });
    } else {
      await until(`pgshift inside the ${step} step`, async () => {
        if (run.child.exitCode !== null) throw new Error(`pgshift ended before the ${step} step: ${(await run.exited).stderr}`);
        return hold.reached();
      });
      const since = Date.now();
      if (kind === 'SIGSTOP') {
        // pgshift hangs with its connections open (a frozen machine, a lost network: no FIN reaches
        // the server). The server ends the window fence after guardSeconds by itself, so direct
        // writes go on; the queue in the paused PgBouncer waits for the watchdog, which acts once
        // the process is gone — killed here.
        process.kill(-run.child.pid!, 'SIGSTOP');
        const ms = await writableAfter([source.url(m.db, 'shop_app', APP_PW)], since, WRITABLE_WITHIN_MS);
        measured.push({ step, kind: 'hang (SIGSTOP), direct writes', outcome: 'fence ended by the server', ms });
        expect(ms).toBeGreaterThanOrEqual(4_000); // not before the guard time: the fence held until then
        process.kill(-run.child.pid!, 'SIGKILL');
        expect((await run.exited).signal).toBe('SIGKILL');
      } else if (kind === 'SIGKILL') process.kill(-run.child.pid!, 'SIGKILL');
      else run.child.kill(kind);
      if (kind === 'SIGSTOP') {
        await writableAfter([m.bouncer.url('app', 'shop_app')], since, WRITABLE_WITHIN_MS);
      } else if (step === 'switch') {
        // Decided: it completes (the watchdog after a kill, pgshift itself after a signal) once the
        // held catalog is free; the application then writes on the target.
        await hold.release();
        released = true;
        const out = await run.exited;
        if (kind === 'SIGKILL') expect(out.signal).toBe('SIGKILL');
        else expect(out.code, out.stderr).toBe(0);
        await until('the cut-over completed', async () => (await cutoverState(m.db)).state === 'done', 60_000);
        const ms = await writableAfter([m.bouncer.url('app', 'shop_app'), target.url(m.db, 'shop_app', APP_PW)], since, WRITABLE_WITHIN_MS);
        measured.push({ step, kind, outcome: 'completed', ms });
        expect((await cutoverState(m.db)).by).toBe(kind === 'SIGKILL' ? 'recovery' : 'this run');
      } else {
        // Not decided: the application writes on the source again — before the hold is released.
        const ms = await writableAfter([m.bouncer.url('app', 'shop_app'), source.url(m.db, 'shop_app', APP_PW)], since, WRITABLE_WITHIN_MS);
        measured.push({ step, kind, outcome: 'undone', ms });
        const out = await run.exited;
        if (kind === 'SIGKILL') expect(out.signal).toBe('SIGKILL');
        else expect(out.code, out.stderr).toBe(1);
        if (kind !== 'SIGKILL') expect(out.stderr).toMatch(new RegExp(`cut-over undone: interrupted by ${kind}`));
      }
    }
    expect(measured.at(-1)!.ms).toBeLessThan(BOUND_MS);
  } finally {
    if (!released) await hold.release();
    if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL');
  }
  if (step !== 'switch') {
    await until('the window undone', async () => (await cutoverState(m.db)).state === 'undone', 60_000);
    expect((await cutoverState(m.db)).by).toBe(kind === 'SIGKILL' || kind === 'SIGSTOP' ? 'recovery' : 'this run');
    // Nothing of the window is left: no seal, the pooler takes queries, the stream applies.
    expect(await sql(source.url(m.db), `SELECT count(*)::int AS n FROM pg_db_role_setting WHERE setconfig::text LIKE '%read_only%'`)).toEqual([{ n: 0 }]);
    expect(await any(target.url(m.db), `SELECT 1 FROM pg_subscription WHERE subenabled`)).toBe(true);
  }
  // The orphaned statements of a killed pgshift end; the next case starts clean.
  for (const url of [source.url(m.db), target.url(m.db)]) {
    await until('no pgshift session waits', async () => !(await any(url, `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pgshift%' AND wait_event_type = 'Lock'`)), 30_000);
  }
}

describe('cut-over fault matrix', () => {
  it('before the decision (fence, barrier, sequences, final check) × (SIGKILL, SIGINT, SIGTERM, budget): undone, the application writes on the source, and a re-run cuts over exactly', async () => {
    const m = await migration('undo_matrix');
    try {
      for (const step of ['fence', 'barrier', 'sequences', 'final check'] as const) {
        for (const kind of ['SIGKILL', 'SIGINT', 'SIGTERM', 'budget'] as const) await interrupt(m, step, kind);
      }
      await interrupt(m, 'barrier', 'SIGSTOP');
      // The application wrote through all of it; stopped now, so that the end state can be compared.
      await m.writer.stop();
      await waitForCatchUp(phaseContext(parsePlan(`version: 1\nname: ${m.db}\nsource: { url: "\${S}" }\ntarget: { url: "\${T}" }\n`, 'plan', m.env), silentLogger), 30_000);
      const again = cutover(m, 'hold');
      const out = await again.exited;
      expect(out.code, out.stderr).toBe(0);
      const [a, b] = await Promise.all([tableDigests(source.url(m.db), SAMPLE_TABLES), tableDigests(target.url(m.db), SAMPLE_TABLES)]);
      expect(b).toEqual(a);
      expect(m.writer.committed).toBeGreaterThan(0);
    } finally {
      await m.writer.stop();
      await m.bouncer.stop();
    }
  }, 360_000);

  for (const kind of ['SIGKILL', 'SIGINT', 'SIGTERM'] as const) {
    it(`after the decision (switch) × ${kind}: completed, the application writes on the target, source and target equal`, async () => {
      const m = await migration(`switch_${kind.toLowerCase()}`);
      try {
        await interrupt(m, 'switch', kind);
        await m.writer.stop();
        // Every order the application committed — on the source before the seal, on the target
        // after the switch — is on the target; the source took nothing the target lacks.
        const committed = m.writer.committedOrders.map(String);
        expect(committed.length).toBeGreaterThan(0);
        expect(await sql(target.url(m.db), 'SELECT count(*)::int AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.id = id)', [committed])).toEqual([{ n: 0 }]);
        const onSource = (await sql<{ id: string }>(source.url(m.db), 'SELECT id::text FROM shop.orders')).map((r) => r.id);
        expect(await sql(target.url(m.db), 'SELECT count(*)::int AS n FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.id = id)', [onSource])).toEqual([{ n: 0 }]);
        expect(await any(source.url(m.db), `SELECT 1 FROM pg_db_role_setting WHERE setconfig::text LIKE '%default_transaction_read_only=on%'`)).toBe(true);
        // Whoever completed it, the journal holds what a rollback lifts and restores: the seal and the pooler's line.
        expect(await sql(target.url(m.db), `SELECT detail->'fence'->>'strategy' AS seal, detail->'pgbouncer' ? 'previous' AS pooler FROM pgshift.phase WHERE phase = 'cutover'`)).toEqual([{ seal: 'roles', pooler: true }]);
      } finally {
        await m.writer.stop();
        await m.bouncer.stop();
      }
    });
  }

  afterAll(() => {
    if (!measured.length) return;
    const rows = measured.map((x) => `| ${x.step} | ${x.kind} | ${x.outcome} | ${x.ms} |`);
    console.log(['', '| step held | interruption | outcome | ms until the application wrote again |', '| --- | --- | --- | --- |', ...rows].join('\n'));
  });
});
