import { readdirSync, readFileSync } from 'node:fs';

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

// pgbench's tables, with the replica identity pgshift needs (one fixture for tests and benches).
export { pgbenchInit } from '../test/harness/load.js';

export function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}

const TICKS = 100; // USER_HZ: /proc's clock ticks per second on Linux

/** Machine-wide CPU seconds so far, from /proc/stat: busy (all but idle and iowait) and iowait. */
export function machineCpu(): { busy: number; iowait: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , iowait, irq, softirq, steal] = f; // the fourth is idle
  return { busy: (user + nice + system + irq + softirq + (steal ?? 0)) / TICKS, iowait: iowait / TICKS };
}

/**
 * CPU seconds a PostgreSQL server has used so far: the postmaster's own and those of its children,
 * exited (reaped into the postmaster's cutime/cstime) and running.
 */
export function serverCpu(dataDir: string): number {
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  let ticks = 0;
  const stat = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ').map(Number);
  const own = stat(postmaster);
  // after ") ": state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14
  ticks += own[11] + own[12] + own[13] + own[14];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const s = stat(entry);
      if (s[1] === postmaster) ticks += s[11] + s[12];
    } catch {
      /* exited meanwhile */
    }
  }
  return ticks / TICKS;
}
