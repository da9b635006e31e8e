import { describe, expect, it } from 'vitest';
import { decideUnlogged, madeAfterLoadFix, undecidedFix } from '../../src/core/unlogged.js';

const t = (schema: string, name: string) => ({ schema, name });
const tables = [t('app', 'cache'), t('app', 'sessions'), t('app', 'Temp Stuff')];

describe('unlogged tables: the plan decides, never silently lost', () => {
  it('without a mode every table not skipped is undecided, and the fix names them', () => {
    const d = decideUnlogged(tables, { skip: ['app.cache'] });
    expect(d.skipped).toEqual([t('app', 'cache')]);
    expect(d.undecided.map((x) => x.name)).toEqual(['sessions', 'Temp Stuff']);
    const f = undecidedFix(d.undecided);
    expect(f.message).toContain('app.sessions, app."Temp Stuff"');
    expect(f.fix).toContain('unlogged.mode');
    expect(f.fix).toContain('ALTER TABLE app.sessions SET LOGGED');
    expect(f.fix).toContain('unlogged.skip: [app.sessions, app."Temp Stuff"]');
  });

  it('a mode applies to the tables not skipped; skip patterns take wildcards and report the unmatched', () => {
    const d = decideUnlogged(tables, { mode: 'copy-at-cutover', skip: ['app.sess*', 'app.gone'] });
    expect(d.copyAtCutover.map((x) => x.name)).toEqual(['cache', 'Temp Stuff']);
    expect(d.skipped.map((x) => x.name)).toEqual(['sessions']);
    expect(d.unmatchedSkip).toEqual(['app.gone']);
    expect(decideUnlogged(tables, { mode: 'make-logged', skip: [] }).makeLogged).toHaveLength(3);
  });

  it('mode skip without a list skips nothing by itself: each table must be named', () => {
    const d = decideUnlogged(tables, { mode: 'skip', skip: ['app.*'] });
    expect(d.skipped).toHaveLength(3);
    expect(decideUnlogged(tables, { mode: 'skip', skip: [] }).undecided).toHaveLength(3);
  });

  it('a table made unlogged after the load under make-logged is named with the fix', () => {
    expect(madeAfterLoadFix([t('app', 'late')])).toEqual({
      message: 'unlogged table(s) app.late appeared after the full load: unlogged.mode make-logged acts at the load, so nothing carries its rows',
      fix: 'ALTER TABLE app.late SET LOGGED on the source (the stream then carries it), or list it under unlogged.skip',
    });
  });
});
