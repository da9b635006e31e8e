import { spawnSync } from 'node:child_process';
import { parseServerUrl } from '../src/config/url.js';

/** Helpers shared by the benchmarks. */
export { exec } from '../src/local/exec.js';

export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, value };
}

/** Peak resident set size of this process while `fn` runs, sampled every 20 ms. */
export async function peakRss<T>(fn: () => Promise<T>): Promise<{ peakMb: number; value: T }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await fn();
    return { peakMb: Math.round(peak / 1048576), value };
  } finally {
    clearInterval(timer);
  }
}

export function pgbenchInit(url: string, scale: number): void {
  const a = parseServerUrl(url);
  const r = spawnSync('pgbench', ['-i', '-q', '-s', String(scale), '-h', a.host, '-p', String(a.port), '-U', a.user, a.database], {
    env: { ...process.env, PGPASSWORD: a.password },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`pgbench -i: ${r.stderr}`);
}

export function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}
