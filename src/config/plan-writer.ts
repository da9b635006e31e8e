import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMap, parseDocument, YAMLMap } from 'yaml';
import type { ProposedGroup } from '../core/grouping.js';
import { inputError } from '../core/errors.js';

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
  const applied = applyProposal(original, proposal, file);
  // Nothing new to propose: leave the file byte for byte as it is.
  if (applied.changed) writeFileSync(file, applied.text);
  return { file, wroteGroups: applied.wroteGroups, addedTables: applied.addedTables, changed: applied.changed };
}

/** The proposal merged into a plan's text (the rules above); `file` only names it in errors. */
export function applyProposal(original: string, proposal: PlanProposal, file: string): { text: string; wroteGroups: boolean; addedTables: string[]; changed: boolean } {
  const doc = parseDocument(original || '{}');
  if (!isMap(doc.contents)) throw inputError('plan.not-a-mapping', `${file}: the plan must be a YAML mapping`, 'start the file with keys such as version: 1, name: and source:, or remove it and run pgshift init again');
  const root = doc.contents as unknown as YAMLMap<unknown, unknown>;
  let wroteGroups = false;
  if (!(root as YAMLMap<unknown, unknown>).has('groups')) {
    const seq = doc.createNode(proposal.groups.map((g) => ({ name: g.name, tables: g.tables })));
    for (const item of (seq as unknown as { items: unknown[] }).items) {
      const map = item as YAMLMap;
      map.flow = true;
    }
    const key = doc.createNode('groups');
    key.commentBefore = ' Proposed by pgshift assess; edit freely, re-running assess keeps your groups.';
    root.add(doc.createPair(key, seq));
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
  const changed = wroteGroups || added.length > 0;
  return { text: changed ? doc.toString({ lineWidth: 0, flowCollectionPadding: false }) : original, wroteGroups, addedTables: added, changed };
}
