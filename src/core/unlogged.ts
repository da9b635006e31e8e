import { matchesPattern } from './groups.js';
import { displayName, type QualifiedName } from './ident.js';

/**
 * UNLOGGED tables write nothing to the WAL, so no logical replication (native or DMS) sees their
 * changes; a slot's snapshot copy would be stale by the cut-over. The plan says what happens to
 * each (unlogged.mode, unlogged.skip), and a table it says nothing about is refused by name — an
 * unlogged table is never lost silently.
 */
export type UnloggedMode = 'copy-at-cutover' | 'make-logged' | 'skip';

export interface UnloggedSetting {
  mode?: UnloggedMode;
  skip: string[];
}

export interface UnloggedDecision<T extends QualifiedName> {
  /** Copied inside the cut-over window, writes fenced. */
  copyAtCutover: T[];
  /** Set LOGGED on the source before the load; then published and copied like any table. */
  makeLogged: T[];
  /** Left empty on the target, as the plan says. */
  skipped: T[];
  /** The plan says nothing about them: refused. */
  undecided: T[];
  /** unlogged.skip patterns that match no unlogged table (a typo, or a table since made logged). */
  unmatchedSkip: string[];
}

export function decideUnlogged<T extends QualifiedName>(tables: T[], setting: UnloggedSetting): UnloggedDecision<T> {
  const d: UnloggedDecision<T> = { copyAtCutover: [], makeLogged: [], skipped: [], undecided: [], unmatchedSkip: [] };
  const used = new Set<string>();
  for (const t of tables) {
    const skip = setting.skip.find((p) => matchesPattern(t, p));
    if (skip !== undefined) {
      used.add(skip);
      d.skipped.push(t);
    } else if (setting.mode === 'copy-at-cutover') d.copyAtCutover.push(t);
    else if (setting.mode === 'make-logged') d.makeLogged.push(t);
    else d.undecided.push(t);
  }
  d.unmatchedSkip = setting.skip.filter((p) => !used.has(p));
  return d;
}

/** The refusal for undecided tables: what to write in the plan, by name. */
export function undecidedFix(tables: QualifiedName[]): { message: string; fix: string } {
  const names = tables.map(displayName);
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
  return {
    message: `unlogged table(s) ${shown}: nothing replicates an UNLOGGED table's writes, and the plan does not say what happens to ${names.length > 1 ? 'them' : 'it'}`,
    fix:
      `set unlogged.mode in the plan: copy-at-cutover (copied inside the cut-over window, writes fenced), ` +
      `make-logged (pgshift runs ALTER TABLE ${names[0]} SET LOGGED on the source before the load), ` +
      `or list ${names.length > 1 ? 'them' : 'it'} under unlogged.skip: [${names.slice(0, 5).join(', ')}] to leave ${names.length > 1 ? 'them' : 'it'} empty on the target`,
  };
}

/**
 * make-logged acts at the full load: an unlogged table made since (CREATE UNLOGGED TABLE under
 * CDC) is still unlogged at the cut-over, and nothing carries its rows.
 */
export function madeAfterLoadFix(tables: QualifiedName[]): { message: string; fix: string } {
  const names = tables.map(displayName);
  const many = names.length > 1;
  return {
    message: `unlogged table(s) ${names.join(', ')} appeared after the full load: unlogged.mode make-logged acts at the load, so nothing carries ${many ? 'their' : 'its'} rows`,
    fix: `ALTER TABLE ${names[0]} SET LOGGED on the source (the stream then carries it), or list ${many ? 'them' : 'it'} under unlogged.skip`,
  };
}
