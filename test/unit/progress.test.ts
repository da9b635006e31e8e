import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/log.js';
import { cliLogger } from '../../src/cli/main.js';
import { LoadProgress } from '../../src/phases/load-progress.js';

const t = (name: string) => ({ schema: 'public', name });

function recorder(withBoard: boolean) {
  const lines: string[] = [];
  const boards: string[][] = [];
  const log: Logger = { debug() {}, info: (m) => lines.push(m), warn() {}, error() {}, progress: (m) => lines.push(m) };
  if (withBoard) log.board = (b) => boards.push(b);
  return { log, lines, boards };
}

describe('full-load progress', () => {
  it('follows parts, bytes and index builds per table, with an ETA bound from the estimate', () => {
    const { log } = recorder(false);
    const p = new LoadProgress(log);
    p.track('g', t('big'), 1000, 2, 1);
    p.track('g', t('small'), 100, 1, 0);
    p.track('g', t('old'), 500, 1, 0, 'skipped');
    const big = p.copying(t('big'));
    big(400);
    expect(p.partDone(t('big'), 10)).toBe(false);
    let s = p.snapshot();
    expect(s).toMatchObject({ bytes: 400, estimatedBytes: 1100, rows: 10, tables: 3, tablesDone: 1 });
    expect(s.active).toEqual([{ table: 'public.big', bytes: 400, estimatedBytes: 1000, partsDone: 1, parts: 2, state: 'copying' }]);
    p.copying(t('big'))(500);
    expect(p.partDone(t('big'), 12)).toBe(true); // last part: indexes next
    expect(p.snapshot().active[0].state).toBe('indexing');
    p.indexBuilt(t('big'));
    p.copying(t('small'))(90);
    expect(p.partDone(t('small'), 3)).toBe(true);
    s = p.snapshot();
    expect(s).toMatchObject({ bytes: 990, rows: 25, tablesDone: 3, active: [] });
    expect(p.results().map((r) => [r.table, r.state, r.indexes])).toEqual([
      ['public.big', 'done', 1],
      ['public.small', 'done', 0],
      ['public.old', 'skipped', 0],
    ]);
  });

  it('draws bars on a terminal: the overall bar first, then one per table in flight', () => {
    const { log } = recorder(true);
    const p = new LoadProgress(log);
    p.track('g', t('big'), 1000, 4, 0);
    p.copying(t('big'))(500);
    p.partDone(t('big'), 1);
    const bars = p.bars();
    expect(bars).toHaveLength(2);
    expect(bars[0]).toMatch(/^\[#{12}\.{12}\]  50% all/);
    expect(bars[1]).toMatch(/^\[#{12}\.{12}\]  50% copy\s+public\.big parts 1\/4/);
  });

  it('the CLI keeps the board below the log lines, redacted, and erases it when done', () => {
    let err = '';
    const log = cliLogger({ stdout: () => {}, stderr: (x) => (err += x), env: {}, isTTY: true });
    log.board!(['[....] all', '[....] copy public.big postgresql://u:hunter2-secret@h/db']);
    log.info('a log line');
    log.board!([]);
    // Drawn, erased (cursor up 2 lines, clear) before the log line, drawn again, then erased.
    expect(err).toContain('\x1b[2F\x1b[J');
    expect(err).toMatch(/a log line\n\[\.\.\.\.\] all\n/);
    expect(err.endsWith('\x1b[2F\x1b[J')).toBe(true);
    expect(err).not.toContain('hunter2-secret');
    // Not a terminal: no board at all, progress falls back to periodic lines.
    expect(cliLogger({ stdout: () => {}, stderr: () => {}, env: {}, isTTY: false }).board).toBeUndefined();
  });
});

describe('progress per group: share, recent rate, estimated finish', () => {
  it('counts kept tables as done, caps copying tables at their estimate, and rates over the last minutes', async () => {
    const { groupEta, recentRate, pruneSamples } = await import('../../src/core/eta.js');
    const tables = [
      { group: 'g', state: 'skipped' as const, bytes: 0, estimatedBytes: 600 },
      { group: 'g', state: 'copying' as const, bytes: 500, estimatedBytes: 300 },
      { group: 'g', state: 'waiting' as const, bytes: 0, estimatedBytes: 100 },
      { group: 'h', state: 'copying' as const, bytes: 10, estimatedBytes: 1000 },
    ];
    // 10 minutes in: slow at first, 2 bytes/s over the last 5 minutes.
    const t0 = 1_000_000;
    const samples = [{ at: t0, bytes: 0 }, { at: t0 + 300_000, bytes: 1 }, { at: t0 + 600_000, bytes: 601 }];
    expect(recentRate(samples, t0 + 600_000)).toBe(2);
    expect(recentRate([{ at: t0, bytes: 0 }, { at: t0 + 10_000, bytes: 100 }], t0 + 10_000)).toBe(10);
    const g = groupEta('g', tables, samples, t0 + 600_000);
    expect(g).toMatchObject({ group: 'g', doneBytes: 900, estimatedBytes: 1000, share: 0.9, bytesPerSecond: 2, etaSeconds: 50 });
    expect(g.finishAt).toBe(new Date(t0 + 650_000).toISOString());
    expect(groupEta('h', tables, [{ at: t0, bytes: 0 }], t0).etaSeconds).toBeNull();
    expect(pruneSamples(samples, t0 + 900_000).map((s) => s.at)).toEqual([t0 + 300_000, t0 + 600_000]);
  });
});
