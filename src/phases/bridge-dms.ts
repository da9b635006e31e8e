import { gateRefused } from '../core/errors.js';
import { displayName } from '../core/ident.js';
import { heartbeatTable } from '../core/names.js';
import type { Journal, StreamRecord } from '../journal/journal.js';
import { removeFromReplicationSets } from '../pg/dms-source.js';
import { ensureHeartbeat } from '../pg/replication.js';
import { dropSlot } from '../pg/snapshot.js';
import type { BridgeEngine } from './bridge.js';
import type { PhaseContext, ResolvedGroup, Sessions } from './context.js';
import { dmsCarried, journaledDmsTasks, setDmsCarried, type StreamSource } from './stream-source.js';

/**
 * The bridge of a resumed full load on the DMS engine. A DMS stream is a slot (pglogical or
 * test_decoding), for pglogical two replication sets, and — from `cdc start` on — one CDC-only task
 * whose table mapping lists exactly the tables the stream carries (the journal keeps that list
 * once a resume changed it: stream-source.ts `dmsCarried`) and whose CdcStartPosition is the
 * stream's snapshot LSN.
 *
 *   (1) the unfinished tables leave the streams that carry them: out of the carried list (and so
 *       out of every task mapping built later), and out of the slot's replication sets;
 *   (2) nothing to drain — see below;
 *   (3) a new stream `<group>_r<n>`: its sets, heartbeat table and carried list, then its slot with
 *       an exported snapshot at L2; the tables are cleared and copied at L2; `cdc start` creates
 *       its task from its own slot, CdcStartPosition = L2 (peek-checked like every stream's).
 *
 * Why this is consistent without a drain. The native bridge must apply every change the old
 * stream already carried for the moved tables before L2, because a subscription applies whatever
 * its publication sent. On DMS nothing applies a slot's changes but a task, and a group has no task
 * while it is loading: `cdc start` refuses any stream that is preparing or loading, and
 * `cdc restart` deletes a group's tasks before it reloads it. So when the resume runs, not one
 * change of the old slots has been applied, and none ever will be for the moved tables: the old
 * stream's task is created later from the journal's carried list, which no longer names them, and
 * DMS applies only the tables of a task's table mapping (with test_decoding the slot still decodes
 * their changes; the mapping drops them; with pglogical the sets also stop sending them). The moved
 * tables' rows are then exactly their state at L2 plus every change after L2, from the new task;
 * the finished tables' rows are their state at the old snapshot L0 plus every change after L0,
 * from the old task. The runtime check below refuses a group that does have a task (made by hand,
 * or a journal edited), rather than trusting the argument.
 */
export function dmsBridge(ctx: PhaseContext, s: Sessions, journal: Journal, stream: StreamSource, group: ResolvedGroup, own: StreamRecord): BridgeEngine {
  const planned = new Map(stream.parts(group, own).map((p) => [p.record.group, p.tables.map(displayName)]));
  const carried = async (st: StreamRecord) => new Set((await dmsCarried(journal)).get(st.group) ?? planned.get(st.group) ?? []);
  return {
    plugin: stream.plugin,
    carried,
    leave: async (st, tables) => {
      const names = new Set(tables.map(displayName));
      // The list first: a run that dies between the two steps finds the tables gone from the
      // stream and bridges them again; the sets follow what the list says on every later leave.
      await setDmsCarried(journal, { [st.group]: [...(await carried(st))].filter((t) => !names.has(t)) });
      if (stream.plugin === 'pglogical') await removeFromReplicationSets(s.source, st.slot, tables);
    },
    open: async (record, tables) => {
      await journal.saveStream(record);
      await setDmsCarried(journal, { [record.group]: tables.map(displayName) });
      for (const c of [s.source, s.target]) await ensureHeartbeat(c, heartbeatTable(record.group), record.group);
      const full = group.tables.filter((t) => tables.some((x) => displayName(x) === displayName(t)));
      await stream.prepare(s.source, { record, tables: full });
    },
    drop: async (st) => {
      await dropSlot(s.source, st.slot);
      await stream.drop(s.source, st);
      await journal.deleteStream(st.group);
      await setDmsCarried(journal, { [st.group]: null });
    },
    drain: async (streams) => {
      const names = new Set(streams.map((st) => st.group));
      const task = (await journaledDmsTasks<{ group: string; stream: string; identifier: string }>(journal)).find((t) => names.has(t.stream) || t.group === group.name);
      if (task) {
        throw gateRefused(
          'full-load.dms-tasks',
          `group ${group.name}: DMS task ${task.identifier} reads stream ${task.stream}, so the changes it applied cannot be bridged to a newer snapshot`,
          `run pgshift cdc restart --group ${group.name}: it deletes the group's tasks, reloads it and creates new ones`,
        );
      }
      ctx.log.debug(`group ${group.name}: no DMS task reads ${[...names].join(', ')}; nothing was applied from them, nothing to drain`);
    },
  };
}
