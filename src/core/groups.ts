import { displayName, parseQualifiedName, type QualifiedName } from './ident.js';

/**
 * Which tables belong to which group. Patterns are written schema.table with * as a wildcard on
 * either side; the first group whose patterns match (and whose exclusions do not) takes the
 * table, so an explicit group listed before a catch-all keeps its tables.
 */
export interface GroupSpec {
  name: string;
  tables: string[];
  exclude: string[];
}

export interface GroupAssignment<T extends QualifiedName> {
  groups: Map<string, T[]>;
  unassigned: T[];
  /** Patterns (by group) that gave their group no table: usually a typo in the plan. */
  unmatched: UnmatchedPattern[];
}

export interface UnmatchedPattern {
  group: string;
  pattern: string;
  /** Earlier groups that took every table the pattern matches (empty: it matches no table). */
  takenBy: string[];
  /** Tables it matches that its own group's exclude leaves out. */
  excluded: number;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 's');
}

/**
 * A pattern as two anchored regular expressions (schema, name), in the syntax JavaScript and
 * PostgreSQL's ~ operator share: the source's DDL capture places new tables with the same rules.
 */
export function patternRegExps(pattern: string): { schema: string; name: string } {
  const q = parseQualifiedName(pattern);
  return { schema: globToRegExp(q.schema).source, name: globToRegExp(q.name).source };
}

function compile(pattern: string): (t: QualifiedName) => boolean {
  const r = patternRegExps(pattern);
  const s = new RegExp(r.schema, 's');
  const n = new RegExp(r.name, 's');
  return (t) => s.test(t.schema) && n.test(t.name);
}

/** Whether a table matches one plan pattern (schema.table, * as a wildcard). */
export function matchesPattern(t: QualifiedName, pattern: string): boolean {
  return compile(pattern)(t);
}

export function assignGroups<T extends QualifiedName>(tables: T[], groups: GroupSpec[]): GroupAssignment<T> {
  const compiled = groups.map((g) => ({
    name: g.name,
    include: g.tables.map((p) => ({ pattern: p, test: compile(p), hits: 0, takenBy: new Set<string>(), excluded: 0 })),
    exclude: g.exclude.map(compile),
  }));
  const result = new Map<string, T[]>(groups.map((g) => [g.name, []]));
  const unassigned: T[] = [];
  for (const t of tables) {
    let owner: string | undefined;
    for (const g of compiled) {
      // Every pattern that matches is counted, so that a later group's pattern can say which
      // earlier group took its tables instead of "matches no table".
      const hits = g.include.filter((p) => p.test(t));
      if (hits.length === 0) continue;
      if (owner !== undefined) {
        for (const p of hits) p.takenBy.add(owner);
      } else if (g.exclude.some((x) => x(t))) {
        for (const p of hits) p.excluded++;
      } else {
        for (const p of hits) p.hits++;
        result.get(g.name)!.push(t);
        owner = g.name;
      }
    }
    if (owner === undefined) unassigned.push(t);
  }
  const unmatched = compiled.flatMap((g) =>
    g.include.filter((p) => p.hits === 0).map((p) => ({ group: g.name, pattern: p.pattern, takenBy: [...p.takenBy], excluded: p.excluded })),
  );
  return { groups: result, unassigned, unmatched };
}

/** What a pattern that gave its group nothing means, and the fix. */
export function describeUnmatched(u: UnmatchedPattern): { message: string; fix: string } {
  if (u.takenBy.length > 0) {
    const earlier = u.takenBy.map((g) => `group ${g}`).join(', ');
    return {
      message: `pattern ${u.pattern} matches only tables already taken by ${earlier} listed before it (a table belongs to the first group that matches it)`,
      fix: `remove the pattern from group ${u.group}, or move group ${u.group} before ${earlier} in the plan`,
    };
  }
  if (u.excluded > 0) {
    return { message: `pattern ${u.pattern} matches only tables that the group's exclude leaves out`, fix: `remove the pattern or the exclusion from group ${u.group}` };
  }
  return { message: `pattern ${u.pattern} matches no table on the source`, fix: 'fix the pattern in the plan (schema.table, * as a wildcard; quote names with capitals or dots)' };
}

/** Why a group ended up with no table that holds rows, from its patterns' fate. */
export function describeEmptyGroup(group: string, unmatched: UnmatchedPattern[]): { message: string; fix: string } {
  const taken = unmatched.find((u) => u.group === group && u.takenBy.length > 0);
  if (taken) {
    const why = describeUnmatched(taken);
    return { message: `group ${group} is left with no table: its ${why.message}`, fix: why.fix };
  }
  return { message: `group ${group} matches no table that holds rows on the source`, fix: 'fix its tables: patterns in the plan (schema.table, * as a wildcard) or remove the group' };
}

export function describeTables(tables: QualifiedName[], max = 5): string {
  const names = tables.slice(0, max).map(displayName);
  return tables.length > max ? `${names.join(', ')} and ${tables.length - max} more` : names.join(', ');
}
