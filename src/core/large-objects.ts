/**
 * What makes a target's large objects equal to the source's, from each side's digests by OID
 * (content digest and owner): copy the ones missing or different, remove the ones the source no
 * longer has. Nothing replicates large objects, so verify reports these as differences and the
 * cut-over carries them.
 */
export interface LargeObjectChanges {
  /** OIDs to copy from the source (missing on the target, or different there). */
  copy: string[];
  /** OIDs to unlink on the target (gone from the source). */
  remove: string[];
}

export function largeObjectChanges(source: Map<string, string>, target: Map<string, string>): LargeObjectChanges {
  const copy = [...source].filter(([oid, d]) => target.get(oid) !== d).map(([oid]) => oid);
  const remove = [...target.keys()].filter((oid) => !source.has(oid));
  return { copy, remove };
}

export function describeLargeObjectChanges(c: LargeObjectChanges): string {
  const parts = [];
  if (c.copy.length) parts.push(`${c.copy.length} missing or different on the target`);
  if (c.remove.length) parts.push(`${c.remove.length} only on the target`);
  return parts.join(', ');
}
