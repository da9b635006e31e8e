import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../src/core/log.js';
import { parseLsn } from '../../src/core/lsn.js';
import { connect, endpointFor } from '../../src/pg/connect.js';
import { dropPglogicalNodeIfUnused, dropReplicationSets, ensurePglogicalNode, ensureReplicationSets, requirePglogical, verifyStartLsn } from '../../src/pg/dms-source.js';
import type pg from 'pg';
import { sql, startServer } from '../harness/servers.js';
import type { LocalCluster } from '../../src/local/cluster.js';

/**
 * The database side of the DMS engine on a real PostgreSQL 15 with Debian's pglogical: node and
 * the two replication sets per slot, the bounded LSN peek with the next-change search, and the
 * refusal of a start position older than the slot's confirmed_flush_lsn.
 */
let server: LocalCluster;
let plain: LocalCluster;
let c: pg.Client;

beforeAll(async () => {
  [server, plain] = await Promise.all([startServer(15, 'dms-src', { shared_preload_libraries: "'pglogical'" }), startServer(15, 'dms-plain')]);
  await sql(server.url(), `
    CREATE TABLE orders (id int PRIMARY KEY, note text);
    CREATE TABLE events (at timestamptz, what text);
    CREATE TABLE parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
    CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');`);
  c = await connect(endpointFor('source', { url: server.url() }));
});
afterAll(async () => {
  await c?.end();
});

const tables = [
  { schema: 'public', name: 'orders', primaryKey: ['id'] },
  { schema: 'public', name: 'events', primaryKey: [] },
  { schema: 'public', name: 'parted_eu', primaryKey: ['id', 'region'] },
  { schema: 'public', name: 'parted_us', primaryKey: ['id', 'region'] },
];

async function setTables(set: string): Promise<string[]> {
  const r = await sql(server.url(), `SELECT c.relname AS t FROM pglogical.replication_set_table st JOIN pglogical.replication_set s USING (set_id) JOIN pg_class c ON c.oid = st.set_reloid WHERE s.set_name = $1 ORDER BY 1`, [set]);
  return r.map((x) => x.t);
}

describe('DMS source preparation (pglogical)', () => {
  it('refuses a source without pglogical preloaded, naming the fix', async () => {
    const p = await connect(endpointFor('source', { url: plain.url() }));
    try {
      await expect(requirePglogical(p, 'plain')).rejects.toThrow(/pglogical is not in shared_preload_libraries/);
    } finally {
      await p.end();
    }
    await requirePglogical(c, 'src');
  });

  it('creates the node and the two sets named after the slot, leaves only; key-less tables kept out of the update/delete set', async () => {
    const warnings: string[] = [];
    const log: Logger = { ...silentLogger, warn: (m) => warnings.push(m) };
    await ensurePglogicalNode(c, `host=127.0.0.1 port=${server.port} dbname=postgres`);
    await ensurePglogicalNode(c, 'ignored: the node exists');
    const sets = await ensureReplicationSets(c, 'pgshift_m_g1', tables, log);
    expect(sets).toMatchObject({ updates: 'pgshift_m_g1', inserts: 'ipgshift_m_g1' });
    const flags = await sql(server.url(), `SELECT set_name, replicate_insert AS i, replicate_update AS u, replicate_delete AS d, replicate_truncate AS t FROM pglogical.replication_set WHERE set_name LIKE '%pgshift%' ORDER BY 1`);
    expect(flags).toEqual([
      { set_name: 'ipgshift_m_g1', i: true, u: false, d: false, t: true },
      { set_name: 'pgshift_m_g1', i: false, u: true, d: true, t: false },
    ]);
    expect(await setTables('ipgshift_m_g1')).toEqual(['events', 'orders', 'parted_eu', 'parted_us']);
    expect(await setTables('pgshift_m_g1')).toEqual(['orders', 'parted_eu', 'parted_us']);
    expect(warnings).toEqual([expect.stringContaining('public.events has no primary key')]);
    // Idempotent, and corrected to the group's tables when they change.
    await ensureReplicationSets(c, 'pgshift_m_g1', tables.filter((t) => t.name !== 'parted_us'), silentLogger);
    expect(await setTables('pgshift_m_g1')).toEqual(['orders', 'parted_eu']);
  });

  it('checks the start LSN with a bounded peek: a change position is kept, another moves to the next change, nothing is consumed', async () => {
    await sql(server.url(), `SELECT pg_create_logical_replication_slot('pgshift_m_g1', 'pglogical')`);
    const [slot] = await sql(server.url(), `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = 'pgshift_m_g1'`);
    // Decoding reads flushed WAL only; the test servers run with synchronous_commit off.
    await sql(server.url(), `INSERT INTO orders VALUES (1, 'a')`);
    await sql(server.url(), `SET synchronous_commit = on; INSERT INTO orders VALUES (2, 'b')`);
    const peeked = await sql(server.url(), `SELECT lsn::text AS lsn FROM pg_logical_slot_peek_changes('pgshift_m_g1', NULL, NULL, 'min_proto_version', '1', 'max_proto_version', '1', 'startup_params_format', '1', 'proto_format', 'json', 'pglogical.replication_set_names', 'pgshift_m_g1,ipgshift_m_g1') WHERE data::jsonb->>'action' <> 'S'`);
    const lsns = [...new Set(peeked.map((p) => p.lsn))];
    expect(lsns.length).toBeGreaterThan(1);
    const base = { slot: 'pgshift_m_g1', plugin: 'pglogical' as const, serverVersionNum: 150000, maxChanges: 10000 };
    // From the slot's own start (the exported snapshot's LSN): the first change at or after it
    // (the next WAL record may begin exactly there).
    const fromSlot = await verifyStartLsn(c, { ...base, captured: slot.c });
    expect(fromSlot).toMatchObject({ captured: slot.c, confirmedFlush: slot.c, exact: lsns[0] === slot.c, lsn: lsns[0] });
    const exact = await verifyStartLsn(c, { ...base, captured: lsns[1] });
    expect(exact).toMatchObject({ lsn: lsns[1], exact: true });
    // Between two changes: the next one.
    const between = (parseLsn(lsns[0]) + 1n).toString(16);
    const mid = await verifyStartLsn(c, { ...base, captured: `0/${between.toUpperCase()}` });
    expect(parseLsn(mid.lsn) > parseLsn(lsns[0])).toBe(true);
    expect(mid.exact).toBe(false);
    // Peeking consumed nothing.
    const [after] = await sql(server.url(), `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = 'pgshift_m_g1'`);
    expect(after.c).toBe(slot.c);
  });

  it('past the last change, a heartbeat write gives the next position; a slot of the other plugin is refused', async () => {
    const [cur] = await sql(server.url(), `SELECT pg_current_wal_lsn()::text AS l`);
    let beats = 0;
    const r = await verifyStartLsn(c, {
      slot: 'pgshift_m_g1', plugin: 'pglogical', serverVersionNum: 150000, maxChanges: 10000, captured: cur.l,
      beat: async () => {
        beats++;
        await sql(server.url(), `INSERT INTO orders VALUES (3, 'beat')`);
      },
    });
    // Either a transaction already followed (autovacuum, the previous test) or the beat made one.
    expect(beats).toBeLessThanOrEqual(1);
    expect(parseLsn(r.lsn) >= parseLsn(cur.l)).toBe(true);
    await sql(server.url(), `SELECT pg_create_logical_replication_slot('pgshift_m_td', 'test_decoding')`);
    await expect(verifyStartLsn(c, { slot: 'pgshift_m_td', plugin: 'pglogical', serverVersionNum: 150000, maxChanges: 10, captured: '0/1' })).rejects.toThrow(/uses the test_decoding plugin/);
  });

  // The test servers run with synchronous_commit off: the insert reaches decoding only once the
  // WAL writer has flushed it, which the peek waits for.
  it('test_decoding: the peek finds the first change after the slot start', async () => {
    const [td] = await sql(server.url(), `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = 'pgshift_m_td'`);
    await sql(server.url(), `INSERT INTO events VALUES (now(), 'x')`);
    const t = await verifyStartLsn(c, { slot: 'pgshift_m_td', plugin: 'test_decoding', serverVersionNum: 150000, maxChanges: 1000, captured: td.c });
    expect(parseLsn(t.lsn) >= parseLsn(td.c)).toBe(true);
  });

  it('test_decoding on a PostgreSQL 10 source, which has no min() or max() for pg_lsn', async () => {
    const old = await startServer(10, 'dms-old');
    await sql(old.url(), `CREATE TABLE events (at timestamptz, what text)`);
    await sql(old.url(), `SELECT pg_create_logical_replication_slot('pgshift_m_old', 'test_decoding')`);
    const [slot] = await sql(old.url(), `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = 'pgshift_m_old'`);
    await sql(old.url(), `INSERT INTO events VALUES (now(), 'x')`);
    const oc = await connect(endpointFor('source', { url: old.url() }));
    try {
      const t = await verifyStartLsn(oc, { slot: 'pgshift_m_old', plugin: 'test_decoding', serverVersionNum: 100000, maxChanges: 1000, captured: slot.c });
      expect(parseLsn(t.lsn) >= parseLsn(slot.c)).toBe(true);
    } finally {
      await oc.end();
    }
  });

  it('refuses a start LSN older than the slot confirmed_flush_lsn, and a missing slot', async () => {
    await expect(verifyStartLsn(c, { slot: 'pgshift_m_g1', plugin: 'pglogical', serverVersionNum: 150000, maxChanges: 10, captured: '0/1' })).rejects.toMatchObject({
      code: 'dms.lsn-too-old',
      exitCode: 3,
    });
    await expect(verifyStartLsn(c, { slot: 'nope', plugin: 'pglogical', serverVersionNum: 150000, maxChanges: 10, captured: '0/1' })).rejects.toMatchObject({ code: 'dms.slot-missing' });
  });

  it('teardown drops the sets, then the node once no set of ours is left', async () => {
    await sql(server.url(), `SELECT pg_drop_replication_slot('pgshift_m_g1')`);
    await dropReplicationSets(c, 'pgshift_m_g1');
    await dropReplicationSets(c, 'pgshift_m_g1');
    await dropPglogicalNodeIfUnused(c);
    expect(await sql(server.url(), `SELECT count(*)::int AS n FROM pglogical.replication_set WHERE set_name LIKE '%pgshift%'`)).toEqual([{ n: 0 }]);
    expect(await sql(server.url(), `SELECT count(*)::int AS n FROM pglogical.node`)).toEqual([{ n: 0 }]);
  });
});
