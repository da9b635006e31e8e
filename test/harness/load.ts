import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { parseServerUrl } from '../../src/config/url.js';
import { sleep } from '../../src/core/wait.js';

/** Real pgbench against a test server: `init` creates its tables, `start` runs a bounded load. */
function args(url: string): { env: NodeJS.ProcessEnv; conn: string[] } {
  const a = parseServerUrl(url);
  return { env: { ...process.env, PGPASSWORD: a.password }, conn: ['-h', a.host, '-p', String(a.port), '-U', a.user, a.database] };
}

export function pgbenchInit(url: string, scale = 1): void {
  const { env, conn } = args(url);
  const r = spawnSync('pgbench', ['-i', '-q', '-s', String(scale), '--foreign-keys', ...conn], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
  // pgbench_history has no key: publishing it would break an UPDATE or DELETE on it, so pgshift
  // refuses it until it has a replica identity — given here as assess's fix says.
  const id = spawnSync('psql', [...conn, '-qc', 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL'], { env, encoding: 'utf8' });
  if (id.status !== 0) throw new Error(`ALTER TABLE pgbench_history failed: ${id.stderr}`);
}

export interface Load {
  stop(): Promise<{ transactions: number; output: string }>;
}

/** Runs until stopped (at most `seconds`), at `rate` transactions per second if given. */
export function pgbenchStart(url: string, opts: { clients?: number; seconds?: number; rate?: number; scripts?: string[] } = {}): Load {
  const { env, conn } = args(url);
  const argv = ['-c', String(opts.clients ?? 2), '-j', '1', '-T', String(opts.seconds ?? 120), '-n', '-P', '1'];
  if (opts.rate) argv.push('-R', String(opts.rate));
  for (const s of opts.scripts ?? []) argv.push(...(s.startsWith('-b') ? ['-b', s.slice(2)] : ['-f', s]));
  const child: ChildProcess = spawn('pgbench', [...argv, ...conn], { env });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    async stop() {
      child.kill('SIGINT');
      await done;
      // Interrupted, pgbench prints no summary: add up its per-second progress lines instead.
      const m = /number of transactions actually processed: (\d+)/.exec(output);
      const progress = [...output.matchAll(/progress: [\d.]+ s, ([\d.]+) tps/g)].reduce((n, x) => n + Number(x[1]), 0);
      return { transactions: m ? Number(m[1]) : Math.round(progress), output };
    },
  };
}

/**
 * Runs `work` again and again, one run at a time with a pause between, until the returned function
 * is called; that function waits for the run in flight. An interval timer would instead pile runs
 * up (each opening its own sessions) whenever one took longer than the interval, and leave runs
 * going after the test moved on. A run's failure is ignored: the servers are being disturbed on purpose.
 */
export function repeatUntilStopped(work: () => Promise<unknown>, pauseMs: number): () => Promise<void> {
  const stopped = new AbortController();
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      await work().catch(() => {});
      await sleep(pauseMs, stopped.signal).catch(() => {});
    }
  })();
  return async () => {
    stopped.abort();
    await loop;
  };
}
