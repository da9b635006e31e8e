import { batchStreamName } from '../core/names.js';
import { Journal, dropControlSchema, CONTROL, type StreamRecord } from '../journal/journal.js';
import { teardownDms } from './cdc-dms.js';
import { newStreamRecord } from './stream-source.js';
import { dropPglogicalNodeIfUnused, dropReplicationSets } from '../pg/dms-source.js';
import { dropPublication, dropSubscription, setReplicaIdentity, subscriptionExists } from '../pg/replication.js';
import { relationExists } from '../pg/catalog.js';
import { parseQualifiedName } from '../core/ident.js';
import { REPLICA_IDENTITY, ROLES } from './full-load.js';
import type { RoleCopyResult } from '../pg/roles.js';
import { dropSlot } from '../pg/snapshot.js';
import { openSessions, type PhaseContext } from './context.js';
import { reverseNames } from './cutover.js';
import { dropDdlCapture } from '../pg/ddl.js';

/**
 * Teardown removes everything pgshift created, on success and on failure, and can run any number
 * of times: DMS tasks and endpoints (and DMS's control tables and source artifacts), subscriptions
 * on the target, publications or pglogical replication sets and slots on the source (a slot left behind
 * pins WAL until the source's disk fills), the heartbeat tables and both control schemas. Object
 * names come from the journal when it exists and from the plan otherwise, so a half-created
 * migration is cleaned up too. Fences are not touched: after a cut-over the source stays fenced.
 */
export interface TeardownResult {
  dropped: string[];
  /** Roles the full load created (roles: copy), left on the target on purpose: they own the migrated objects. */
  keptRoles: string[];
}

export async function runTeardown(ctx: PhaseContext): Promise<TeardownResult> {
  const s = await openSessions(ctx);
  const dropped: string[] = [];
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    const fromJournal = journal ? await journal.streams() : [];
    const objects = new Map<string, StreamRecord>();
    for (const g of ctx.plan.groups) for (const name of [g.name, batchStreamName(g.name)]) objects.set(name, newStreamRecord(ctx.plan, name));
    for (const r of fromJournal) objects.set(r.group, r);
    await journal?.event('teardown', 'info', 'teardown started');
    // DMS tasks first: a running task holds its slot, which could not be dropped.
    if (ctx.plan.cdc.engine === 'dms') dropped.push(...(await teardownDms(ctx, s, journal, [...objects.keys()])));

    for (const o of objects.values()) {
      const existed = await subscriptionExists(s.target, o.subscription);
      await dropSubscription(s.target, o.subscription);
      if (existed) dropped.push(`subscription ${o.subscription} (target)`);
    }
    for (const o of objects.values()) {
      if (await dropSlot(s.source, o.slot)) dropped.push(`slot ${o.slot} (source)`);
      // The publication (native) or the replication sets (DMS pglogical); a plan whose engine changed
      // may have left the other kind, so both are looked for.
      if (await dropPublication(s.source, o.publication)) dropped.push(`publication ${o.publication} (source)`);
      if (await dropReplicationSets(s.source, o.slot)) dropped.push(`replication sets ${o.slot}, i${o.slot} (source)`);
    }
    if (await dropPglogicalNodeIfUnused(s.source)) dropped.push('pglogical node (source)');
    // Replica identities set with the plan's consent (cdc.replicaIdentityFull) go back to what they were.
    const identities = ((await journal?.phaseState(REPLICA_IDENTITY))?.detail ?? {}) as Record<string, Parameters<typeof setReplicaIdentity>[2]>;
    for (const [table, previous] of Object.entries(identities)) {
      const name = parseQualifiedName(table);
      if (!(await relationExists(s.source, name))) continue;
      await setReplicaIdentity(s.source, name, previous, ctx.signal);
      dropped.push(`REPLICA IDENTITY FULL of ${table} (source; back to ${typeof previous === 'string' ? previous.toUpperCase() : `USING INDEX ${previous.index}`})`);
    }
    // Reverse replication (cutover.rollback): subscription on the source, slot and publication on the target.
    const rev = reverseNames(ctx.plan.name);
    if (await subscriptionExists(s.source, rev.subscription)) {
      await dropSubscription(s.source, rev.subscription);
      dropped.push(`subscription ${rev.subscription} (source)`);
    }
    if (await dropSlot(s.target, rev.slot)) dropped.push(`slot ${rev.slot} (target)`);
    if (await dropPublication(s.target, rev.publication)) dropped.push(`publication ${rev.publication} (target)`);
    for (const t of await dropDdlCapture(s.source)) dropped.push(`event trigger ${t} (source)`);
    // Read before the journal goes with the control schema.
    const keptRoles = (((await journal?.phaseState(ROLES))?.detail ?? undefined) as RoleCopyResult | undefined)?.created.map((c) => c.role) ?? [];
    for (const [side, c] of [['source', s.source], ['target', s.target]] as const) {
      const state = await dropControlSchema(c);
      if (state === 'pgshift') dropped.push(`schema ${CONTROL} (${side})`);
      if (state === 'foreign') ctx.log.warn(`teardown left schema ${CONTROL} on the ${side}: pgshift did not make it`);
    }
    ctx.log.info(dropped.length ? `teardown removed: ${dropped.join(', ')}` : 'teardown: nothing left to remove');
    if (keptRoles.length) ctx.log.info(`teardown kept the roles the full load created on the target (they own the migrated objects): ${keptRoles.join(', ')}`);
    return { dropped, keptRoles };
  } finally {
    await s.close();
  }
}
