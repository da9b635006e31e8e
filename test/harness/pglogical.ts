import { parseLsn } from '../../src/core/lsn.js';
import { sql } from './servers.js';

/** The source side of a DMS stream as DMS would read it: pglogical replication sets and slot changes. */
const PGLOGICAL_PEEK = `'min_proto_version', '1', 'max_proto_version', '1', 'startup_params_format', '1', 'proto_format', 'json'`;

/** The tables (relnames, sorted) of one replication set. */
export async function setTables(url: string, set: string): Promise<string[]> {
  const r = await sql(url, `SELECT c.relname AS t FROM pglogical.replication_set_table st JOIN pglogical.replication_set s USING (set_id) JOIN pg_class c ON c.oid = st.set_reloid WHERE s.set_name = $1 ORDER BY 1`, [set]);
  return r.map((x) => x.t);
}

/** The changes a slot holds at or after `from`, decoded as DMS would (pglogical, the slot's sets), without consuming them. */
export async function slotChanges(url: string, slot: string, from: string): Promise<Array<{ lsn: bigint; data: string }>> {
  const r = await sql(url, `SELECT lsn::text AS l, data FROM pg_logical_slot_peek_changes($1, NULL, NULL, ${PGLOGICAL_PEEK}, 'pglogical.replication_set_names', $2)
     WHERE lsn >= $3::pg_lsn AND data::jsonb->>'action' <> 'S'`, [slot, `${slot},i${slot}`, from]);
  return r.map((x) => ({ lsn: parseLsn(x.l), data: x.data as string }));
}

/** LSNs (distinct, ascending) of the changes a slot holds at or after `from`. */
export async function changeLsns(url: string, slot: string, from: string): Promise<bigint[]> {
  return [...new Set((await slotChanges(url, slot, from)).map((c) => c.lsn))].sort((a, b) => (a < b ? -1 : 1));
}
