/**
 * Share done, recent rate and estimated finish of a long load, per group. Pure: the samples and
 * the clock come from the caller.
 *
 * The share counts a finished (or kept) table at its estimate and a table being copied at the bytes
 * copied so far, capped at its estimate: COPY bytes and on-disk size differ, and a share never
 * goes past 100 % or backwards when a table's last part lands. The rate is the one over the last
 * `windowMs` (a load slows down and speeds up with the tables it is on), or since the start while
 * the window is not full yet.
 */
export interface EtaTable {
  group: string;
  state: 'waiting' | 'copying' | 'indexing' | 'done' | 'skipped';
  bytes: number;
  estimatedBytes: number;
}

export interface RateSample {
  at: number;
  bytes: number;
}

export interface GroupEta {
  group: string;
  /** 0…1 of the group's estimated bytes. */
  share: number;
  doneBytes: number;
  estimatedBytes: number;
  /** Bytes per second over the recent window. */
  bytesPerSecond: number;
  etaSeconds: number | null;
  /** ISO time of the estimated finish of the copy. */
  finishAt: string | null;
}

export const RATE_WINDOW_MS = 5 * 60_000;

/** Bytes per second between the oldest sample within the window and the newest. */
export function recentRate(samples: RateSample[], now: number, windowMs = RATE_WINDOW_MS): number {
  const inWindow = samples.filter((s) => s.at >= now - windowMs);
  const first = inWindow.length >= 2 ? inWindow[0] : samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last || last.at <= first.at) return 0;
  return (last.bytes - first.bytes) / ((last.at - first.at) / 1000);
}

/** Keep the samples a window needs (and one before it, so a window is always spanned). */
export function pruneSamples(samples: RateSample[], now: number, windowMs = RATE_WINDOW_MS): RateSample[] {
  const i = samples.findIndex((s) => s.at >= now - windowMs);
  return i <= 0 ? samples : samples.slice(i - 1);
}

export function groupEta(group: string, tables: EtaTable[], samples: RateSample[], now: number): GroupEta {
  const mine = tables.filter((t) => t.group === group);
  const estimatedBytes = mine.reduce((n, t) => n + t.estimatedBytes, 0);
  const doneBytes = mine.reduce((n, t) => n + (t.state === 'waiting' || t.state === 'copying' ? Math.min(t.bytes, t.estimatedBytes) : t.estimatedBytes), 0);
  const rate = recentRate(samples, now);
  const remaining = Math.max(0, estimatedBytes - doneBytes);
  const etaSeconds = remaining === 0 ? 0 : rate > 0 ? Math.round(remaining / rate) : null;
  return {
    group,
    share: estimatedBytes > 0 ? doneBytes / estimatedBytes : 1,
    doneBytes,
    estimatedBytes,
    bytesPerSecond: Math.round(rate),
    etaSeconds,
    finishAt: etaSeconds === null ? null : new Date(now + etaSeconds * 1000).toISOString(),
  };
}
