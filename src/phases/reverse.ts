import { parseServerUrl, toConninfo } from '../config/url.js';
import { publicationName, slotName, subscriptionName } from '../core/names.js';
import { createPublicationOf, createSubscription, dropPublication, dropSubscription, publicationExists } from '../pg/replication.js';
import { heartbeatTable } from '../core/names.js';
import type { StreamRecord } from '../journal/journal.js';
import { dropSlot, ensureSlot } from '../pg/snapshot.js';
import { resolveGroups, type PhaseContext, type Sessions } from './context.js';

/**
 * Reverse replication (cutover.rollback): a publication and a slot on the target, a subscription
 * on the source. Started at the switch while nothing but pgshift writes to the target yet, so the
 * slot's consistent point precedes the application's first write there and a rollback loses
 * nothing. The subscription goes through createSubscription like every other (no password in the
 * source's server log).
 */
export function reverseNames(migration: string) {
  return { publication: publicationName(migration, 'reverse'), slot: slotName(migration, 'reverse'), subscription: subscriptionName(migration, 'reverse') };
}

/** The reverse publication on the target: every migrated table and every group's heartbeat (before the window). */
export async function prepareReverse(ctx: PhaseContext, s: Sessions, streams: StreamRecord[]): Promise<void> {
  const names = reverseNames(ctx.plan.name);
  if (await publicationExists(s.target, names.publication)) return;
  const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
  await createPublicationOf(s.target, names.publication, groups.flatMap((g) => g.tables), streams.map((st) => heartbeatTable(st.group)), 'target');
}

export async function startReverse(ctx: PhaseContext, s: Sessions): Promise<ReturnType<typeof reverseNames>> {
  const names = reverseNames(ctx.plan.name);
  await ensureSlot(s.target, names.slot, 'pgoutput');
  await createSubscription(s.source, {
    name: names.subscription,
    conninfo: toConninfo(parseServerUrl(ctx.plan.target.url), { withPassword: true }),
    publication: names.publication,
    slot: names.slot,
    streaming: false,
  }, ctx.log);
  return names;
}

export async function dropReverse(ctx: PhaseContext, s: Sessions): Promise<void> {
  const names = reverseNames(ctx.plan.name);
  await dropSubscription(s.source, names.subscription);
  await dropSlot(s.target, names.slot);
  await dropPublication(s.target, names.publication);
}
