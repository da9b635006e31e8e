import { describe, expect, it } from 'vitest';
import { fullIdentityWithoutEquality } from '../../src/core/replica-identity.js';

const base = { schema: 'corpus', name: 'docs', hasPrimaryKey: false, primaryKeyDeferrable: false, identityIndexValid: false, noEqualityColumns: [{ name: 'doc', type: 'json' }] };

describe('REPLICA IDENTITY FULL on columns without equality', () => {
  it('stops the apply when the target must compare every column', () => {
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'f' }, [])).toBe(true);
    // Set FULL by pgshift with the plan's consent: the same.
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'd' }, ['corpus.*'])).toBe(true);
    // A DEFERRABLE primary key is no index the target's apply may use: the same.
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'f', hasPrimaryKey: true, primaryKeyDeferrable: true }, [])).toBe(true);
  });

  it('is no problem with a key, a valid identity index, comparable columns, or no consent (refused for another reason)', () => {
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'f', hasPrimaryKey: true }, [])).toBe(false);
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'i', identityIndexValid: true }, ['corpus.*'])).toBe(false);
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'f', noEqualityColumns: [] }, [])).toBe(false);
    expect(fullIdentityWithoutEquality({ ...base, replicaIdentity: 'd' }, [])).toBe(false);
  });
});
