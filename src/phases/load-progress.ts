import { displayName, type QualifiedName } from '../core/ident.js';
import type { Logger } from '../core/log.js';
import { formatBytes } from '../config/size.js';
import { groupEta, pruneSamples, type GroupEta, type RateSample } from '../core/eta.js';

/**
 * Full-load progress: per table and overall rows, bytes, rate and ETA. On a terminal it is drawn
 * as bars redrawn in place (Logger.board); elsewhere (Actions, CI logs) one line every few
 * seconds; and a snapshot goes to the journal every few seconds so that `pgshift status` on
 * another machine sees the load as it runs. Per-table figures end in the job summary.
 *
 * Bytes are COPY text bytes; the estimate is the on-disk size, which over-states COPY text for
 * indexed tables — the ETA is an upper bound, said as such.
 */
export interface TableProgress {
  group: string;
  table: string;
  parts: number;
  partsDone: number;
  rows: number;
  bytes: number;
  estimatedBytes: number;
  state: 'waiting' | 'copying' | 'indexing' | 'done' | 'skipped';
  indexes: number;
  /** Indexes to build early once the rows are in. */
  indexesExpected: number;
  startedAt?: number;
  seconds: number;
}

export interface ProgressSnapshot {
  bytes: number;
  estimatedBytes: number;
  rows: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  tablesDone: number;
  tables: number;
  active: Array<{ table: string; bytes: number; estimatedBytes: number; partsDone: number; parts: number; state: string }>;
  /** Per group: share done (kept tables count as done), rate over the last minutes, estimated finish. */
  groups: GroupEta[];
  at: string;
}

export class LoadProgress {
  private readonly tables = new Map<string, TableProgress>();
  private bytes = 0;
  private rows = 0;
  private readonly started = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Per group: bytes copied by this run, sampled for the recent rate. */
  private readonly groupBytes = new Map<string, number>();
  private readonly samples = new Map<string, RateSample[]>();

  constructor(
    private readonly log: Logger,
    private readonly persist?: (snapshot: ProgressSnapshot) => Promise<void>,
  ) {}

  /** Start drawing (and persisting) once the tables are known. */
  start(): void {
    if (this.log.board) this.timers.push(setInterval(() => this.log.board!(this.bars()), 250));
    else this.timers.push(setInterval(() => this.log.progress(this.line()), 5000));
    if (this.persist) this.timers.push(setInterval(() => void this.persist!(this.snapshot()).catch(() => {}), 5000));
    for (const t of this.timers) t.unref();
  }

  track(group: string, table: QualifiedName, estimatedBytes: number, parts: number, indexesExpected: number, state: TableProgress['state'] = 'waiting', partsDone = 0): void {
    this.tables.set(displayName(table), { group, table: displayName(table), parts, partsDone, rows: 0, bytes: 0, estimatedBytes, state, indexes: 0, indexesExpected, seconds: 0 });
    if (!this.groupBytes.has(group)) {
      this.groupBytes.set(group, 0);
      this.samples.set(group, [{ at: this.started, bytes: 0 }]);
    }
  }

  private get(table: QualifiedName): TableProgress {
    return this.tables.get(displayName(table))!;
  }

  /**
   * A part of the table starts copying. Returns the byte meter for its COPY stream, bound to the
   * table's entry: it runs once per chunk, so it does no lookup.
   */
  copying(table: QualifiedName): (bytes: number) => void {
    const t = this.get(table);
    if (t.state === 'waiting') {
      t.state = 'copying';
      t.startedAt = Date.now();
    }
    return (n) => {
      this.bytes += n;
      t.bytes += n;
      this.groupBytes.set(t.group, this.groupBytes.get(t.group)! + n);
    };
  }

  /** A part (or a whole table) committed. Returns true when it was the table's last part. */
  partDone(table: QualifiedName, rows: number): boolean {
    const t = this.get(table);
    t.rows += rows;
    this.rows += rows;
    t.partsDone++;
    if (t.partsDone < t.parts) return false;
    t.state = t.indexesExpected > 0 ? 'indexing' : 'done';
    t.seconds = (Date.now() - (t.startedAt ?? Date.now())) / 1000;
    return true;
  }

  indexBuilt(table: QualifiedName): void {
    const t = this.get(table);
    t.indexes++;
    if (t.state === 'indexing' && t.indexes >= t.indexesExpected) t.state = 'done';
  }

  /** Per-group share, recent rate and estimated finish; samples the rates at most once a second. */
  groupEtas(now = Date.now()): GroupEta[] {
    const tables = [...this.tables.values()];
    return [...this.groupBytes.keys()].map((g) => {
      let samples = this.samples.get(g)!;
      if (now - samples[samples.length - 1].at >= 1000) {
        samples.push({ at: now, bytes: this.groupBytes.get(g)! });
        samples = pruneSamples(samples, now);
        this.samples.set(g, samples);
      }
      return groupEta(g, tables, samples, now);
    });
  }

  snapshot(): ProgressSnapshot {
    const secs = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = this.bytes / secs;
    const all = [...this.tables.values()];
    const todo = all.filter((t) => t.state !== 'skipped');
    const estimatedBytes = todo.reduce((n, t) => n + t.estimatedBytes, 0);
    const remaining = todo.reduce((n, t) => n + (t.state === 'waiting' || t.state === 'copying' ? Math.max(t.estimatedBytes - t.bytes, 0) : 0), 0);
    return {
      bytes: this.bytes,
      estimatedBytes,
      rows: this.rows,
      bytesPerSecond: Math.round(rate),
      etaSeconds: rate > 0 ? Math.round(remaining / rate) : null,
      tablesDone: all.filter((t) => t.state === 'done' || t.state === 'skipped' || t.state === 'indexing').length,
      tables: all.length,
      active: all
        .filter((t) => t.state === 'copying' || t.state === 'indexing')
        .map((t) => ({ table: t.table, bytes: t.bytes, estimatedBytes: t.estimatedBytes, partsDone: t.partsDone, parts: t.parts, state: t.state })),
      groups: this.groupEtas(),
      at: new Date().toISOString(),
    };
  }

  line(): string {
    const s = this.snapshot();
    const groups = s.groups.length > 1 || s.groups.some((g) => g.share > 0) ? `; ${s.groups.map(groupLine).join('; ')}` : '';
    return `full-load: ${s.tablesDone}/${s.tables} tables, ${formatBytes(s.bytes)} copied, ${formatBytes(s.bytesPerSecond)}/s, ${s.rows} rows in finished tables, ETA ≤ ${s.etaSeconds ?? '?'} s${groups}`;
  }

  bars(): string[] {
    const s = this.snapshot();
    const lines = [`${bar(s.bytes, s.estimatedBytes)} all     ${formatBytes(s.bytes)} of ≤${formatBytes(s.estimatedBytes)}  ${formatBytes(s.bytesPerSecond)}/s  ${s.tablesDone}/${s.tables} tables  ETA ≤ ${s.etaSeconds ?? '?'} s`];
    for (const g of s.groups.length > 1 ? s.groups : []) lines.push(`${bar(g.share, 1)} group ${groupLine(g)}`);
    for (const a of s.active.slice(0, 8)) {
      const parts = a.parts > 1 ? ` parts ${a.partsDone}/${a.parts}` : '';
      lines.push(`${bar(a.bytes, a.estimatedBytes)} ${a.state === 'indexing' ? 'index ' : 'copy  '} ${a.table}${parts}  ${formatBytes(a.bytes)}`);
    }
    return lines;
  }

  /** Per-table figures for the result and the job summary, largest first. */
  results(): TableProgress[] {
    return [...this.tables.values()].sort((a, b) => b.bytes - a.bytes || b.estimatedBytes - a.estimatedBytes);
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.log.board?.([]);
  }
}

/** `g 42% at 12 MB/s (last 5 min), done ~13:45:10Z` */
export function groupLine(g: GroupEta): string {
  const finish = g.share >= 1 ? 'copied' : g.finishAt ? `ETA ${formatSeconds(g.etaSeconds!)} (~${g.finishAt.slice(11, 19)}Z)` : 'ETA ?';
  return `${g.group} ${Math.floor(g.share * 100)}% at ${formatBytes(g.bytesPerSecond)}/s, ${finish}`;
}

export function formatSeconds(s: number): string {
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function bar(done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(done / total, 1) : 1;
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.round(f * 100)).padStart(3)}%`;
}
