import { failure } from '../core/errors.js';
import { displayName, type QualifiedName } from '../core/ident.js';
import { heartbeatTable, isResyncOf, publicationName, resyncStreamName, slotName, subscriptionName } from '../core/names.js';
import { sleep } from '../core/wait.js';
import type { Journal, StreamRecord } from '../journal/journal.js';
import { majorOf } from '../pg/connect.js';
import { ddlQueueOf, installDdlCapture, prepareDdlApply } from '../pg/ddl.js';
import { beatApplied, writeBeat } from '../pg/heartbeat.js';
import { createPublication, createSubscription, dropFromPublication, dropPublication, dropSubscription, ensureHeartbeat, publishedTables, setSubscriptionEnabled, subscriptionState } from '../pg/replication.js';
import { dropSlot } from '../pg/snapshot.js';
import type { PhaseContext, Sessions } from './context.js';
import { subscriptionConninfo } from './preflight.js';

/**
 * The bridge that carries tables from one stream to a newer one without losing or doubling a
 * change (native engine) — used by `cdc resync` (chosen tables of a streaming group) and by a
 * resumed full load (the tables a dead load had not finished):
 *
 *   (1) the tables leave the publications that carry them, at L3;
 *   (2) each of those streams applies up to a heartbeat written after L3, so it has applied every
 *       change to them it will ever send;
 *   (3) a new slot exports a snapshot at L2 > L3; the tables are cleared and copied at L2;
 *   (4) the new stream (publication made here, before its slot) applies from L2.
 *
 * Bridge streams are named `<group>_r<n>`: every command that walks a group's streams (cdc start,
 * status, verify, cut-over, teardown, restart) carries them with the group.
 */

/** The next free bridge stream name of a group (numbers of dropped ones are not reused while a higher one exists). */
export function nextBridgeName(group: string, streams: Array<{ group: string }>): string {
  const used = streams.filter((r) => isResyncOf(r.group, group)).map((r) => Number(r.group.slice(group.length + 2)));
  return resyncStreamName(group, Math.max(0, ...used) + 1);
}

export function bridgeRecord(ctx: PhaseContext, name: string, state: string): StreamRecord {
  return {
    group: name,
    slot: slotName(ctx.plan.name, name),
    publication: publicationName(ctx.plan.name, name),
    subscription: subscriptionName(ctx.plan.name, name),
    snapshotMode: 'exported',
    snapshotLsn: null,
    state,
  };
}

/** (1) The tables leave a stream's publication. */
export async function leaveStream(s: Sessions, carrier: StreamRecord, tables: QualifiedName[]): Promise<void> {
  await dropFromPublication(s.source, carrier.publication, tables);
}

/**
 * The new stream's objects on both sides, journaled first (so a run that dies here finds them):
 * heartbeat tables, DDL capture, and its publication of the tables — made afresh, so that it holds
 * exactly these tables.
 */
export async function openBridgeStream(ctx: PhaseContext, s: Sessions, journal: Journal, record: StreamRecord, tables: QualifiedName[]): Promise<void> {
  await journal.saveStream(record);
  const hb = heartbeatTable(record.group);
  await ensureHeartbeat(s.source, hb, record.group);
  await ensureHeartbeat(s.target, hb, record.group);
  await dropPublication(s.source, record.publication);
  // Schema changes to these tables follow their new stream, as they followed the group's.
  await installDdlCapture(s.source, ctx.plan, record);
  await createPublication(s.source, record.publication, tables, hb, ddlQueueOf(ctx.plan, record.group));
}

/**
 * (2) Each stream applies up to a heartbeat written now. A stream whose subscription does not run
 * yet (a load being resumed: CDC has not started) is applied for the drain and disabled again
 * after it; its replication origin keeps the position, so `cdc start` continues from there.
 * `timeoutMs` bounds a stream whose apply worker is not running; a running one is waited for as
 * long as it applies (a long-dead load leaves much to apply), with a line every 30 seconds.
 */
export async function drainStreams(ctx: PhaseContext, s: Sessions, carriers: StreamRecord[], o: { start: boolean; stalledMs?: number }): Promise<void> {
  const stalledMs = o.stalledMs ?? 120_000;
  const started: StreamRecord[] = [];
  if (o.start && carriers.length) {
    await prepareDdlApply(s.target, ctx.plan, carriers);
    const streaming = majorOf(s.sourceVersion) >= 14 && majorOf(s.targetVersion) >= 14;
    for (const c of carriers) {
      await ensureHeartbeat(s.target, heartbeatTable(c.group), c.group);
      await createSubscription(s.target, { name: c.subscription, conninfo: subscriptionConninfo(ctx), publication: c.publication, slot: c.slot, streaming, startLsn: c.snapshotMode === 'paused-replica' && c.snapshotLsn ? c.snapshotLsn : undefined }, ctx.log);
      started.push(c);
    }
  }
  try {
    for (const c of carriers) {
      const hb = heartbeatTable(c.group);
      const beat = await writeBeat(s.source, hb, c.group);
      let lastSeen = Date.now();
      let lastLine = Date.now();
      for (;;) {
        if (await beatApplied(s.target, hb, c.group, beat)) break;
        if ((await subscriptionState(s.target, c.subscription)).workerRunning) lastSeen = Date.now();
        else if (Date.now() - lastSeen > stalledMs) {
          throw failure('bridge.drain', `stream ${c.group}: its subscription ${c.subscription} has not applied for ${Math.round(stalledMs / 1000)} s`, "check the target's server log for the apply error, then run the same command again: it continues");
        }
        if (Date.now() - lastLine >= 30_000) {
          lastLine = Date.now();
          ctx.log.info(`stream ${c.group}: applying the changes since its snapshot before the bridge (${Math.round((Date.now() - beat.writtenAt) / 1000)} s so far)`);
        }
        await sleep(50, ctx.signal);
      }
    }
  } finally {
    // The load is not streaming yet: cdc start enables them.
    for (const c of started) await setSubscriptionEnabled(s.target, c.subscription, false).catch(() => {});
  }
}

/**
 * What a resumed full load (load-resume.ts) asks of the group's CDC engine to move its unfinished
 * tables to a new resume stream. Native: publications and subscriptions (below); DMS:
 * bridge-dms.ts.
 */
export interface BridgeEngine {
  /** Output plugin of the resume stream's slot. */
  plugin: string;
  /** The tables a stream carries now (schema.table). */
  carried(st: StreamRecord): Promise<Set<string>>;
  /** (1) The tables leave a stream. */
  leave(st: StreamRecord, tables: QualifiedName[]): Promise<void>;
  /** The new stream's objects and journal row, before its slot. */
  open(record: StreamRecord, tables: QualifiedName[]): Promise<void>;
  /** A resume stream of an earlier run dropped whole (slot, engine objects, journal row). */
  drop(st: StreamRecord): Promise<void>;
  /** (2) The surviving streams apply up to the bridge. */
  drain(streams: StreamRecord[]): Promise<void>;
}

export function nativeBridge(ctx: PhaseContext, s: Sessions, journal: Journal): BridgeEngine {
  return {
    plugin: 'pgoutput',
    carried: (st) => publishedTables(s.source, st.publication),
    leave: (st, tables) => leaveStream(s, st, tables),
    open: (record, tables) => openBridgeStream(ctx, s, journal, record, tables),
    drop: async (st) => {
      await dropSubscription(s.target, st.subscription);
      await dropSlot(s.source, st.slot);
      await dropPublication(s.source, st.publication);
      await journal.deleteStream(st.group);
    },
    drain: (streams) => drainStreams(ctx, s, streams, { start: true }),
  };
}

/** Display names → the group's TableInfo-like entries, in the group's order. */
export function tablesNamed<T extends QualifiedName>(all: T[], names: Iterable<string>): T[] {
  const wanted = new Set(names);
  return all.filter((t) => wanted.has(displayName(t)));
}
