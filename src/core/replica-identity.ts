import { matchesPattern } from './groups.js';
import type { QualifiedName } from './ident.js';

/**
 * Whether publishing a table would break the application's writes on the source.
 *
 * Once a table is in a publication that publishes updates and deletes (every publication pgshift
 * creates for the native engine), PostgreSQL refuses every UPDATE and DELETE on it that has no
 * replica identity to log: "cannot update table … because it does not have a replica identity and
 * publishes updates". That is REPLICA IDENTITY NOTHING, DEFAULT without a primary key, DEFAULT
 * with a DEFERRABLE primary key (PostgreSQL never takes a deferrable index as the identity), and
 * USING INDEX whose index was dropped or is invalid. The DMS engine does not publish: with pglogical a
 * key-less table goes only into the insert set (its updates are not captured, assess says so), and
 * test_decoding needs nothing on the source — neither breaks a write.
 *
 * So every phase that creates a publication refuses such a table (exit 3) unless the plan lists it
 * under cdc.replicaIdentityFull, the operator's consent for pgshift to set REPLICA IDENTITY FULL.
 */
export interface IdentityFacts extends QualifiedName {
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  hasPrimaryKey: boolean;
  /** The primary key is DEFERRABLE: it does not serve as the replica identity. */
  primaryKeyDeferrable: boolean;
  /** For USING INDEX: the index exists and is valid. */
  identityIndexValid: boolean;
}

export type IdentityProblem = 'nothing' | 'no-key' | 'deferrable-key' | 'index-gone';

export function identityProblem(t: IdentityFacts): IdentityProblem | undefined {
  if (t.replicaIdentity === 'n') return 'nothing';
  if (t.replicaIdentity === 'd' && !t.hasPrimaryKey) return 'no-key';
  if (t.replicaIdentity === 'd' && t.primaryKeyDeferrable) return 'deferrable-key';
  if (t.replicaIdentity === 'i' && !t.identityIndexValid) return 'index-gone';
  return undefined;
}

export const IDENTITY_PROBLEM_TEXT: Record<IdentityProblem, string> = {
  nothing: 'REPLICA IDENTITY NOTHING',
  'no-key': 'no primary key and REPLICA IDENTITY DEFAULT',
  'deferrable-key': 'a DEFERRABLE primary key (never a replica identity) and REPLICA IDENTITY DEFAULT',
  'index-gone': 'REPLICA IDENTITY USING INDEX of an index that is gone or invalid',
};

export interface PublishPlan<T extends IdentityFacts> {
  /** Tables whose UPDATE and DELETE would fail on the source once published, without consent. */
  refused: Array<{ table: T; problem: IdentityProblem }>;
  /** Tables the plan consents to have set to REPLICA IDENTITY FULL before they are published. */
  setFull: T[];
}

export function planPublishing<T extends IdentityFacts>(tables: T[], engine: 'native' | 'dms', consent: string[]): PublishPlan<T> {
  const out: PublishPlan<T> = { refused: [], setFull: [] };
  if (engine !== 'native') return out;
  for (const t of tables) {
    const problem = identityProblem(t);
    if (!problem) continue;
    if (consent.some((p) => matchesPattern(t, p))) out.setFull.push(t);
    else out.refused.push({ table: t, problem });
  }
  return out;
}

/**
 * A key-less table replicated with REPLICA IDENTITY FULL (set on the source, or by pgshift with
 * the plan's consent) is matched on the target by comparing every column; a column whose type has
 * no equality operator (json, xml, point and the other geometric types, arrays of them) stops the
 * apply at the first UPDATE or DELETE ("could not identify an equality operator for type json").
 * A primary key (not a deferrable one, which neither side uses) or a valid REPLICA IDENTITY USING
 * INDEX spares the comparison.
 */
export function fullIdentityWithoutEquality(t: IdentityFacts & { noEqualityColumns: Array<{ name: string; type: string }> }, consent: string[]): boolean {
  if (!t.noEqualityColumns.length || (t.hasPrimaryKey && !t.primaryKeyDeferrable)) return false;
  if (t.replicaIdentity === 'f') return true;
  return identityProblem(t) !== undefined && consent.some((p) => matchesPattern(t, p));
}
