import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMap, parseDocument, YAMLMap } from 'yaml';
import type { ProposedGroup } from '../core/grouping.js';

/**
 * Writes assess's proposal into migration.yml without touching anything people wrote: the groups
 * only when the file has none (so edited groups survive every re-run), and per-table settings only
 * for tables that have no entry yet. Comments and layout of the rest of the file are kept.
 */
export interface PlanProposal {
  groups: ProposedGroup[];
  tables: Record<string, { lobMode?: 'limited' | 'unlimited'; lobMaxSizeKb?: number; batchApply?: boolean }>;
}

export interface WriteResult {
  file: string;
  wroteGroups: boolean;
  addedTables: string[];
  changed: boolean;
}

export function writeProposal(file: string, proposal: PlanProposal): WriteResult {
  const original = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const doc = parseDocument(original || '{}');
  if (!isMap(doc.contents)) throw new Error(`${file}: the plan must be a YAML mapping`);
  const root = doc.contents as unknown as YAMLMap<unknown, unknown>;
  let wroteGroups = false;
  if (!(root as YAMLMap<unknown, unknown>).has('groups')) {
    const seq = doc.createNode(proposal.groups.map((g) => ({ name: g.name, tables: g.tables })));
    for (const item of (seq as unknown as { items: unknown[] }).items) {
      const map = item as YAMLMap;
      map.flow = true;
    }
    root.set('groups', seq);
    const pair = root.items.find((p) => (p.key as { value?: unknown })?.value === 'groups');
    if (pair && pair.key && typeof pair.key === 'object') (pair.key as { commentBefore?: string }).commentBefore = ' Proposed by pgshift assess; edit freely, re-running assess keeps your groups.';
    wroteGroups = true;
  }
  const added: string[] = [];
  const entries = Object.entries(proposal.tables);
  if (entries.length > 0) {
    let tables = root.get('tables', true) as YAMLMap | undefined;
    if (!tables || !isMap(tables)) {
      tables = doc.createNode({}) as YAMLMap;
      root.set('tables', tables);
    }
    for (const [name, settings] of entries) {
      if ((tables as YAMLMap<unknown, unknown>).has(name)) continue;
      const node = doc.createNode(settings) as YAMLMap;
      node.flow = true;
      tables.set(name, node);
      added.push(name);
    }
  }
  // Nothing new to propose: leave the file byte for byte as it is.
  const changed = wroteGroups || added.length > 0;
  if (changed) writeFileSync(file, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
  return { file, wroteGroups, addedTables: added, changed };
}
