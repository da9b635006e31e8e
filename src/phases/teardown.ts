import { publicationName, slotName, subscriptionName } from '../core/names.js';
import { Journal, dropControlSchema, S } from '../journal/journal.js';
import { dropPublication, dropSubscription } from '../pg/replication.js';
import { dropSlot } from '../pg/snapshot.js';
import { openSessions, type PhaseContext } from './context.js';
import { reverseNames } from './cutover.js';
import { dropDdlTrigger } from '../pg/ddl.js';

/**
 * Teardown removes everything pgshift created, on success and on failure, and can run any number
 * of times: subscriptions on the target, publications and slots on the source (a slot left behind
 * pins WAL until the source's disk fills), the heartbeat tables and both control schemas. Object
 * names come from the journal when it exists and from the plan otherwise, so a half-created
 * migration is cleaned up too. Fences are not touched: after a cut-over the source stays fenced.
 */
export interface TeardownResult {
  dropped: string[];
}

export async function runTeardown(ctx: PhaseContext): Promise<TeardownResult> {
  const s = await openSessions(ctx);
  const dropped: string[] = [];
  try {
    const journal = await Journal.find(s.target, ctx.plan.name);
    const fromJournal = journal ? await journal.streams() : [];
    const objects = new Map<string, { slot: string; publication: string; subscription: string }>();
    for (const g of ctx.plan.groups) {
      objects.set(g.name, { slot: slotName(ctx.plan.name, g.name), publication: publicationName(ctx.plan.name, g.name), subscription: subscriptionName(ctx.plan.name, g.name) });
    }
    for (const r of fromJournal) objects.set(r.group, { slot: r.slot, publication: r.publication, subscription: r.subscription });
    await journal?.event('teardown', 'info', 'teardown started');

    for (const o of objects.values()) {
      const before = await s.target.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [o.subscription]);
      await dropSubscription(s.target, o.subscription);
      if (before.rowCount) dropped.push(`subscription ${o.subscription} (target)`);
    }
    for (const o of objects.values()) {
      if (await dropSlot(s.source, o.slot)) dropped.push(`slot ${o.slot} (source)`);
      const pub = await s.source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [o.publication]);
      if (pub.rowCount) {
        await dropPublication(s.source, o.publication);
        dropped.push(`publication ${o.publication} (source)`);
      }
    }
    // Reverse replication (cutover.rollback): subscription on the source, slot and publication on the target.
    const rev = reverseNames(ctx.plan.name);
    if ((await s.source.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [rev.subscription])).rowCount) {
      await dropSubscription(s.source, rev.subscription);
      dropped.push(`subscription ${rev.subscription} (source)`);
    }
    if (await dropSlot(s.target, rev.slot)) dropped.push(`slot ${rev.slot} (target)`);
    if ((await s.target.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [rev.publication])).rowCount) {
      await dropPublication(s.target, rev.publication);
      dropped.push(`publication ${rev.publication} (target)`);
    }
    await dropDdlTrigger(s.source);
    for (const [side, c] of [['source', s.source], ['target', s.target]] as const) {
      const schema = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgshift'`);
      if (schema.rowCount) {
        await dropControlSchema(c);
        dropped.push(`schema ${S} (${side})`);
      }
    }
    ctx.log.info(dropped.length ? `teardown removed: ${dropped.join(', ')}` : 'teardown: nothing left to remove');
    return { dropped };
  } finally {
    await s.close();
  }
}
