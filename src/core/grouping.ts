/**
 * Proposing table groups (pure). Each group becomes one slot and one CDC stream, so groups are
 * how a big migration is parallelised and isolated:
 *
 *  - seed rule (the reference story): the N largest tables each get their own group, everything
 *    else goes into one more group — a catch-all pattern listed last, so tables created later
 *    land there too;
 *  - balanced: longest-processing-time bin packing by size into K groups, keeping tables that may
 *    use DMS batch apply apart from those that may not, so no group mixes the two.
 */
export interface SizedTable {
  name: string;
  bytes: number;
  batchApply: boolean;
}

export interface ProposedGroup {
  name: string;
  tables: string[];
  bytes: number;
}

export function groupNameFor(table: string, taken: Set<string>): string {
  const bare = table.replace(/^.*\./, '').replace(/"/g, '');
  let base = bare.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(base)) base = `t_${base}`;
  base = base.slice(0, 36) || 't';
  let name = base;
  for (let i = 2; taken.has(name) || name === 'rest'; i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

export function seedGroups(tables: SizedTable[], largest: number): ProposedGroup[] {
  const sorted = [...tables].sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name));
  const taken = new Set<string>();
  const own = sorted.slice(0, largest).filter((t) => t.bytes > 0);
  const groups: ProposedGroup[] = own.map((t) => ({ name: groupNameFor(t.name, taken), tables: [t.name], bytes: t.bytes }));
  const rest = sorted.filter((t) => !own.includes(t));
  if (rest.length > 0) groups.push({ name: 'rest', tables: ['*.*'], bytes: rest.reduce((n, t) => n + t.bytes, 0) });
  return groups;
}

export function balancedGroups(tables: SizedTable[], count: number): ProposedGroup[] {
  const pools = [
    { prefix: 'batch', tables: tables.filter((t) => t.batchApply) },
    { prefix: 'single', tables: tables.filter((t) => !t.batchApply) },
  ].filter((p) => p.tables.length > 0);
  const total = tables.reduce((n, t) => n + Math.max(t.bytes, 1), 0);
  const groups: ProposedGroup[] = [];
  let left = Math.max(count, pools.length);
  pools.forEach((pool, i) => {
    const poolBytes = pool.tables.reduce((n, t) => n + Math.max(t.bytes, 1), 0);
    const share = i === pools.length - 1 ? left : Math.max(1, Math.min(left - (pools.length - 1 - i), Math.round((count * poolBytes) / total)));
    const bins = Math.max(1, Math.min(share, pool.tables.length));
    left -= bins;
    const packed = Array.from({ length: bins }, (_, j) => ({ name: `${pool.prefix}_${j + 1}`, tables: [] as string[], bytes: 0 }));
    for (const t of [...pool.tables].sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name))) {
      const lightest = packed.reduce((a, b) => (b.bytes < a.bytes ? b : a));
      lightest.tables.push(t.name);
      lightest.bytes += t.bytes;
    }
    groups.push(...packed.map((g) => ({ ...g, tables: g.tables.sort() })));
  });
  return groups;
}
