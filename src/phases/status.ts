import { connect, endpointFor } from '../pg/connect.js';
import { Journal } from '../journal/journal.js';
import type { PhaseContext } from './context.js';
import type { ProgressSnapshot } from './load-progress.js';
import type { ResumeSummary } from './load-resume.js';

/**
 * `pgshift status`: where the migration stands, read from the journal on the target only — so it
 * works from any machine while a full load or a cut-over runs elsewhere (another runner, a matrix
 * job): phases, streams with their snapshot LSNs, per-table copy progress, recent events.
 */
export interface MigrationStatus {
  migration: string;
  found: boolean;
  phases: Array<{ phase: string; state: string; startedAt: string; finishedAt: string | null }>;
  streams: Array<{ group: string; state: string; slot: string; snapshotMode: string; snapshotLsn: string | null }>;
  tables: { done: number; rows: number; bytes: number };
  /** Live full-load progress per job (`*` = all groups in one process), refreshed every few seconds. */
  loads: Array<{ scope: string; state: string } & ProgressSnapshot>;
  events: Array<{ at: string; phase: string; level: string; message: string }>;
  /** The last resume of each group whose load was resumed: what was kept, redone and created. */
  resumes: Array<{ group: string; state: string } & ResumeSummary>;
}

export async function migrationStatus(ctx: PhaseContext): Promise<MigrationStatus> {
  const target = await connect(endpointFor('target', ctx.plan.target));
  try {
    const journal = await Journal.find(target, ctx.plan.name);
    if (!journal) return { migration: ctx.plan.name, found: false, phases: [], streams: [], tables: { done: 0, rows: 0, bytes: 0 }, loads: [], events: [], resumes: [] };
    const all = await journal.phases();
    const progress = await journal.tableProgress();
    const under = (prefix: string) => all.filter((p) => p.phase.startsWith(prefix)).sort((x, y) => x.phase.localeCompare(y.phase));
    const loads = under('full-load:progress:') as Array<{ phase: string; state: string; detail: ProgressSnapshot }>;
    const resumes = under('full-load:resume:') as Array<{ phase: string; state: string; detail: ResumeSummary }>;
    const done = progress.filter((p) => p.state === 'done' && p.part === 0);
    return {
      migration: ctx.plan.name,
      found: true,
      phases: all.filter((p) => !p.phase.startsWith('full-load:progress:') && !p.phase.startsWith('full-load:resume:')).map(({ phase, state, startedAt, finishedAt }) => ({ phase, state, startedAt, finishedAt })),
      resumes: resumes.map((r) => ({ group: r.phase.slice('full-load:resume:'.length), state: r.state, ...r.detail })),
      loads: loads.map((l) => ({ scope: l.phase.slice('full-load:progress:'.length), state: l.state, ...l.detail })),
      streams: (await journal.streams()).map((s) => ({ group: s.group, state: s.state, slot: s.slot, snapshotMode: s.snapshotMode, snapshotLsn: s.snapshotLsn })),
      tables: { done: done.length, rows: done.reduce((n, p) => n + (p.rows ?? 0), 0), bytes: done.reduce((n, p) => n + (p.bytes ?? 0), 0) },
      events: (await journal.events(20)).map((e) => ({ at: new Date(e.at).toISOString(), phase: e.phase, level: e.level, message: e.message })),
    };
  } finally {
    await target.end().catch(() => {});
  }
}
