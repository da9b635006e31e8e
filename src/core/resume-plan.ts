/**
 * Resuming a group's exported-snapshot load after its process died (the snapshot died with it).
 * A pure rule over what the journal and the source's publications say, so that every case can be
 * enumerated by a test.
 *
 * Every table finished whole stays where it is: its rows are exactly the state at the snapshot of
 * the stream that publishes it (the group's own, or an earlier resume's), and that stream applies
 * every change after it. Every other table is pending; the parts a split table had finished are
 * discarded with it (its finished and unfinished parts would be at two snapshots, and rows move
 * between ranges). The pending tables are bridged to a new resume stream, as `cdc resync` does:
 *
 *   (1) they leave the publications that hold them;
 *   (2) every stream of the group that survives applies up to a heartbeat written after that —
 *       so none of them carries a change of a pending table that the new copy would already hold;
 *   (3) a new slot exports a snapshot, the pending tables are cleared and copied at it, and the
 *       new stream applies every change after it.
 *
 * A resume stream that holds no finished table any more is dropped whole (slot, publication,
 * subscription) instead: nothing it carried is kept, so nothing of it needs applying.
 */
export interface ResumeStream {
  name: string;
  /** The tables its publication holds now (schema.table). */
  published: ReadonlySet<string>;
  /** The group's own stream (never dropped: its name is the group's). */
  own: boolean;
}

export interface TableFigures {
  rows: number;
  bytes: number;
}

export interface ResumeInput {
  /** The group's tables (schema.table). */
  tables: readonly string[];
  /** Tables finished whole, with their journaled rows and bytes. */
  done: ReadonlyMap<string, TableFigures>;
  /** Split tables with finished parts but not finished whole: their parts' rows and bytes. */
  partial: ReadonlyMap<string, TableFigures>;
  /** The group's streams: its own first, then its resume and resync streams. */
  streams: readonly ResumeStream[];
}

export interface ResumePlan {
  /** Tables copied again at the new snapshot, in the group's order. */
  pending: string[];
  /** Streams whose publication drops these tables. */
  leave: Array<{ stream: string; tables: string[] }>;
  /** Resume streams dropped whole (they hold no finished table). */
  drop: string[];
  /** Streams that must apply up to a heartbeat before the new snapshot. */
  drain: string[];
  /** Whether a new resume stream (slot, publication, snapshot) is needed. */
  newStream: boolean;
  kept: TableFigures & { tables: number };
  /** Finished parts thrown away with their table (rows and bytes copied again). */
  discarded: TableFigures & { parts: string[] };
}

export function planResume(input: ResumeInput): ResumePlan {
  const pending = input.tables.filter((t) => !input.done.has(t));
  const pendingSet = new Set(pending);
  const kept = { tables: 0, rows: 0, bytes: 0 };
  for (const t of input.tables) {
    const f = input.done.get(t);
    if (!f) continue;
    kept.tables++;
    kept.rows += f.rows;
    kept.bytes += f.bytes;
  }
  const discarded = { rows: 0, bytes: 0, parts: [] as string[] };
  for (const t of pending) {
    const f = input.partial.get(t);
    if (!f) continue;
    discarded.rows += f.rows;
    discarded.bytes += f.bytes;
    discarded.parts.push(t);
  }
  const plan: ResumePlan = { pending, leave: [], drop: [], drain: [], newStream: pending.length > 0, kept, discarded };
  if (!pending.length) return plan;
  for (const st of input.streams) {
    const holdsFinished = [...st.published].some((t) => input.done.has(t));
    if (!st.own && !holdsFinished) {
      plan.drop.push(st.name);
      continue;
    }
    const leaving = [...st.published].filter((t) => pendingSet.has(t));
    if (leaving.length) plan.leave.push({ stream: st.name, tables: pending.filter((t) => leaving.includes(t)) });
    // A stream may have dropped its pending tables in a run that died before its drain: every
    // surviving stream drains, whatever it publishes now.
    plan.drain.push(st.name);
  }
  return plan;
}
