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
  /** Patterns (by group) that matched nothing: usually a typo in the plan. */
  unmatched: Array<{ group: string; pattern: string }>;
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

export function assignGroups<T extends QualifiedName>(tables: T[], groups: GroupSpec[]): GroupAssignment<T> {
  const compiled = groups.map((g) => ({
    name: g.name,
    include: g.tables.map((p) => ({ pattern: p, test: compile(p), hits: 0 })),
    exclude: g.exclude.map(compile),
  }));
  const result = new Map<string, T[]>(groups.map((g) => [g.name, []]));
  const unassigned: T[] = [];
  for (const t of tables) {
    let placed = false;
    for (const g of compiled) {
      const hit = g.include.find((p) => p.test(t));
      if (!hit || g.exclude.some((x) => x(t))) continue;
      hit.hits++;
      result.get(g.name)!.push(t);
      placed = true;
      break;
    }
    if (!placed) unassigned.push(t);
  }
  const unmatched = compiled.flatMap((g) => g.include.filter((p) => p.hits === 0).map((p) => ({ group: g.name, pattern: p.pattern })));
  return { groups: result, unassigned, unmatched };
}

export function describeTables(tables: QualifiedName[], max = 5): string {
  const names = tables.slice(0, max).map(displayName);
  return tables.length > max ? `${names.join(', ')} and ${tables.length - max} more` : names.join(', ');
}
