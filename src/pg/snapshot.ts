import type pg from 'pg';
import { noteChange } from '../core/changes.js';
import { failure } from '../core/errors.js';
import { parseLsn, type Lsn } from '../core/lsn.js';
import { sleep } from '../core/wait.js';
import { endSession } from './cancel.js';
import { connect, type Endpoint } from './connect.js';

/**
 * The snapshot ↔ LSN coupling (design: correctness core 1). A logical slot is created on a
 * replication connection with an exported snapshot; the rows visible in that snapshot are exactly
 * the state at the slot's consistent point L, and the slot streams exactly the changes committed
 * after L. The snapshot lives only as long as this session stays open and idle, so the holder keeps
 * it open for the whole copy and every copy worker imports it with SET TRANSACTION SNAPSHOT.
 */
export class SnapshotHolder {
  private constructor(
    private readonly session: pg.Client,
    readonly slot: string,
    readonly lsn: Lsn,
    readonly lsnText: string,
    readonly snapshotName: string,
  ) {}

  static async createSlot(ep: Endpoint, slot: string, plugin: string, serverVersionNum: number): Promise<SnapshotHolder> {
    if (!/^[a-z0-9_]{1,63}$/.test(slot)) throw failure('slot.name', `invalid replication slot name ${slot}`);
    const session = await connect(ep, { replication: true, applicationName: 'pgshift snapshot' });
    noteChange(`replication slot ${slot} on the ${ep.role}`);
    try {
      // PostgreSQL 15 introduced the parenthesised option list; older servers take the keyword form.
      const command =
        serverVersionNum >= 150000
          ? `CREATE_REPLICATION_SLOT ${slot} LOGICAL ${plugin} (SNAPSHOT 'export')`
          : `CREATE_REPLICATION_SLOT ${slot} LOGICAL ${plugin} EXPORT_SNAPSHOT`;
      const r = await session.query<{ slot_name: string; consistent_point: string; snapshot_name: string }>(command);
      const row = r.rows[0];
      return new SnapshotHolder(session, slot, parseLsn(row.consistent_point), row.consistent_point, row.snapshot_name);
    } catch (err) {
      await session.end().catch(() => {});
      const e = err as { code?: string; message?: string };
      if (e.code === '42710') {
        throw failure('slot.exists', `replication slot ${slot} already exists on the source`, 'run pgshift full-load --restart to start this group again from a new slot, or pgshift teardown');
      }
      if (e.code === '53400') {
        throw failure('slot.limit', `cannot create replication slot ${slot}: ${e.message}`, 'raise max_replication_slots on the source or drop unused slots');
      }
      throw failure('slot.create', `cannot create replication slot ${slot}: ${e.message}`, undefined, err);
    }
  }

  /** Ends the holder session: the exported snapshot can no longer be imported. The slot stays. */
  async release(): Promise<void> {
    await this.session.end().catch(() => {});
  }
}

/** Start a transaction on a worker connection that sees exactly the exported snapshot. */
export async function importSnapshot(c: pg.Client, snapshotName: string): Promise<void> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  try {
    await c.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "''")}'`);
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw failure(
      'snapshot.gone',
      `the exported snapshot ${snapshotName} can no longer be imported (${(err as Error).message})`,
      'the session holding it has ended; run pgshift full-load --restart to start the group again from a new slot',
      err,
    );
  }
}

/** A logical slot without an exported snapshot (a companion stream's, reverse replication's), if missing. */
export async function ensureSlot(c: pg.Client, slot: string, plugin: string): Promise<void> {
  const exists = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (exists.rowCount) return;
  noteChange(`replication slot ${slot}`);
  await c.query(`SELECT pg_create_logical_replication_slot($1, $2)`, [slot, plugin]);
}

export async function dropSlot(c: pg.Client, slot: string): Promise<boolean> {
  // An active slot cannot be dropped: end the walsender that uses it (ours), then drop.
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await c.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (r.rowCount === 0) return false;
    noteChange(`replication slot ${slot} dropped`);
    const pid = r.rows[0].active_pid;
    if (pid) {
      await endSession(c, pid);
      await sleep(250);
      continue;
    }
    try {
      await c.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === '55006') {
        await sleep(250);
        continue;
      }
      throw err;
    }
  }
  throw failure('slot.drop', `replication slot ${slot} stays active`, 'stop the process that streams from it, then run teardown again');
}

/** How many of these slots exist on the server. */
export async function existingSlotCount(c: pg.Client, slots: string[]): Promise<number> {
  const r = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = ANY($1)', [slots]);
  return r.rows[0].n;
}

/** A plain repeatable-read, read-only transaction (its own snapshot, not an exported one). */
export async function beginReadOnly(c: pg.Client): Promise<void> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
}

/** End a reading transaction. */
export async function endRead(c: pg.Client): Promise<void> {
  await c.query('COMMIT');
}
