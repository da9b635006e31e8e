import type pg from 'pg';
import { qualify, quoteIdent } from '../core/ident.js';
import { sleep } from '../core/wait.js';
import type { ServerFacts } from '../core/assess-findings.js';
import type { RelationFacts, SequenceFacts } from '../core/table-findings.js';
import { controlSchemaState } from '../journal/journal.js';
import { CONTROL_SCHEMA, NOT_EXTENSION_MEMBER, USER_SCHEMAS } from './catalog.js';

/**
 * What assess reads from a server: settings, roles, sessions, extensions, and per table the facts
 * that decide how it can be migrated. Catalog reads only — the one exception, LOB sizing, reads a
 * bounded sample whose size is returned with the result. The facts' shapes are the inputs of the
 * rules that judge them (core/assess-findings.ts, core/table-findings.ts).
 */

const SETTINGS = [
  'wal_level', 'max_replication_slots', 'max_wal_senders', 'wal_sender_timeout', 'max_slot_wal_keep_size',
  'logical_decoding_work_mem', 'shared_preload_libraries', 'rds.logical_replication', 'max_logical_replication_workers',
  'max_worker_processes', 'server_version', 'block_size',
];

export async function readServerFacts(c: pg.Client, longTransactionSeconds: number): Promise<ServerFacts> {
  const settings = await readSettings(c);
  const versionNum = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
  const role = await readRoleFacts(c);
  const isRds = settings['rds.logical_replication'] !== null || (await c.query(`SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'`)).rowCount! > 0;
  const counts = (
    await c.query<{ slots: string; senders: string; lo: string }>(
      `SELECT (SELECT count(*) FROM pg_replication_slots)::text AS slots,
              (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::text AS senders,
              (SELECT count(*) FROM pg_largeobject_metadata)::text AS lo`,
    )
  ).rows[0];
  const longTx = await c.query(
    `SELECT pid, extract(epoch FROM now() - xact_start)::int AS seconds, coalesce(application_name, '') AS application,
            coalesce(usename, '') AS "user", coalesce(state, '') AS state
       FROM pg_stat_activity
      WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND now() - xact_start > make_interval(secs => $1)
      ORDER BY xact_start`,
    [longTransactionSeconds],
  );
  const prepared = await c.query(`SELECT gid, extract(epoch FROM now() - prepared)::int AS seconds FROM pg_prepared_xacts WHERE database = current_database()`);
  const ext = await c.query(`SELECT extname AS name, extversion AS version FROM pg_extension ORDER BY 1`);
  const availableExtensions = await readAvailableExtensions(c);
  const triggers = await c.query(`SELECT evtname AS name, evtevent AS event, evtenabled AS enabled FROM pg_event_trigger ORDER BY 1`);
  const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  return {
    versionNum,
    version: settings.server_version ?? '',
    settings,
    isRds,
    role,
    slotsUsed: Number(counts.slots),
    walSendersUsed: Number(counts.senders),
    longTransactions: longTx.rows,
    preparedTransactions: prepared.rows,
    extensions: ext.rows,
    availableExtensions,
    eventTriggers: triggers.rows,
    largeObjects: Number(counts.lo),
    database: db,
    controlSchema: await controlSchemaState(c),
  };
}

/** The SETTINGS this role may read. */
async function readSettings(c: pg.Client): Promise<Record<string, string | null>> {
  const settings: Record<string, string | null> = {};
  // pg_settings hides what this role may not read (shared_preload_libraries without
  // pg_read_all_settings): such a setting stays null, "unknown", rather than failing assess.
  for (const name of SETTINGS) settings[name] = null;
  const s = await c.query<{ name: string; v: string | null }>('SELECT name, current_setting(name, true) AS v FROM pg_settings WHERE name = ANY($1::text[])', [SETTINGS]);
  for (const row of s.rows) settings[row.name] = row.v;
  return settings;
}

/** What the connected role may do: superuser, replication, RDS's superuser, subscriptions, CREATE on the database. */
async function readRoleFacts(c: pg.Client): Promise<ServerFacts['role']> {
  const role = (
    await c.query(
      `SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolreplication AS replication, r.rolsuper OR r.rolbypassrls AS bypass_rls,
              EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_superuser' AND pg_has_role(r.oid, g.oid, 'member')) AS rds_superuser,
              EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'pg_create_subscription' AND pg_has_role(r.oid, g.oid, 'member')) AS create_subscription,
              has_database_privilege(current_database(), 'CREATE') AS create_on_database
         FROM pg_roles r WHERE r.rolname = current_user`,
    )
  ).rows[0];
  return {
    name: role.name,
    superuser: role.superuser,
    replication: role.replication,
    rdsSuperuser: role.rds_superuser,
    bypassRowSecurity: role.bypass_rls,
    createSubscription: role.create_subscription,
    createOnDatabase: role.create_on_database,
  };
}

/** What the server could install, or why it cannot say (see ServerFacts.availableExtensions). */
async function readAvailableExtensions(c: pg.Client): Promise<ServerFacts['availableExtensions']> {
  return c
    .query<{ name: string; default_version: string | null; versions: string[] }>(
      `SELECT a.name, a.default_version, coalesce((SELECT array_agg(v.version) FROM pg_available_extension_versions v WHERE v.name = a.name), '{}') AS versions
         FROM pg_available_extensions a`,
    )
    .then(
      (avail) => new Map(avail.rows.map((r) => [r.name, { defaultVersion: r.default_version, versions: r.versions }])),
      (err: Error) => ({ error: err.message }),
    );
}

/** The DMS meaning of a LOB: text, varchar without length, bytea, json, jsonb, xml, arrays. */
export const LOB_TYPE_TEST = `(t.typname IN ('text', 'bytea', 'json', 'jsonb', 'xml') OR (t.typname = 'varchar' AND a.atttypmod = -1) OR t.typcategory = 'A')`;

export async function readRelations(c: pg.Client, versionNum: number): Promise<RelationFacts[]> {
  const generated = versionNum >= 120000 ? "a.attgenerated <> ''" : 'false';
  // WITH OIDS ended with PostgreSQL 12: before, a table may have the hidden oid column (attnum -2),
  // and indexes on it.
  const withOids = versionNum >= 120000 ? 'false' : 'c.relhasoids';
  const oidIndexes =
    versionNum >= 120000
      ? `'{}'::text[]`
      : `coalesce((SELECT array_agg(ic.relname::text ORDER BY ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                    WHERE i.indrelid = c.oid AND (-2 = ANY (i.indkey::int2[]) OR (i.indexprs IS NOT NULL AND pg_get_indexdef(i.indexrelid) ~ '\\moid\\M'))), '{}')`;
  // reltuples = -1 means "never analyzed" from PostgreSQL 14; before, 0 with no analyze timestamp.
  const noStats =
    versionNum >= 140000
      ? 'c.reltuples < 0'
      : `(c.reltuples = 0 AND coalesce((SELECT st.last_analyze IS NULL AND st.last_autoanalyze IS NULL FROM pg_stat_all_tables st WHERE st.relid = c.oid), true))`;
  const r = await c.query(`
    SELECT n.nspname AS schema, c.relname AS name, c.oid::int AS oid, c.relkind AS kind, c.relpersistence AS persistence,
           c.relispartition AS is_partition, c.relreplident AS replident,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND NOT i.indimmediate) AS pk_deferrable,
           coalesce((SELECT array_agg(ic.relname::text ORDER BY ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                      WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
                        AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k WHERE NOT a.attnotnull)), '{}') AS unique_not_null,
           (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary)::int AS other_unique,
           (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid) AS ri_index,
           coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND ${generated}), '{}') AS generated,
           coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> ''), '{}') AS identity,
           coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND t.typcategory = 'A'), '{}') AS arrays,
           coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND ${LOB_TYPE_TEST} AND NOT (${generated})), '[]') AS lobs,
           coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                       FROM pg_attribute a
                       JOIN pg_type t ON t.oid = a.atttypid
                       JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
                       JOIN pg_type et ON et.oid = CASE WHEN bt.typcategory = 'A' AND bt.typelem <> 0 THEN bt.typelem ELSE bt.oid END
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND et.typtype NOT IN ('e', 'r', 'c', 'm')
                        AND NOT EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                                         WHERE oc.opcdefault AND am.amname IN ('btree', 'hash')
                                           AND oc.opcintype = CASE WHEN et.typtype = 'd' THEN et.typbasetype ELSE et.oid END)), '[]') AS no_equality,
           ((c.relpages + coalesce((SELECT tc.relpages FROM pg_class tc WHERE tc.oid = c.reltoastrelid), 0))::bigint * current_setting('block_size')::bigint)::text AS estimated_bytes,
           CASE WHEN c.relkind IN ('r', 'm', 'p') THEN pg_total_relation_size(c.oid) ELSE 0 END::text AS bytes,
           greatest(c.reltuples, 0)::text AS row_estimate,
           NOT (${noStats}) AS has_stats,
           pg_get_userbyid(c.relowner) AS owner,
           pg_has_role(c.relowner, 'USAGE') AS owned_by_me,
           has_table_privilege(c.oid, 'SELECT') AS can_select,
           CASE WHEN NOT c.relrowsecurity THEN 'off' WHEN c.relforcerowsecurity THEN 'forced' ELSE 'enabled' END AS row_security,
           ${withOids} AS with_oids,
           CASE WHEN ${withOids} THEN ${oidIndexes} ELSE '{}' END AS oid_indexes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'f', 'm') AND ${USER_SCHEMAS} AND ${NOT_EXTENSION_MEMBER}
     ORDER BY n.nspname, c.relname`);
  return r.rows.map(relationFacts);
}

/** A row of readRelations' statement as RelationFacts. */
function relationFacts(x: pg.QueryResultRow): RelationFacts {
  return {
    schema: x.schema,
    name: x.name,
    oid: x.oid,
    kind: x.kind,
    persistence: x.persistence,
    isPartition: x.is_partition,
    replicaIdentity: x.replident,
    hasPrimaryKey: x.has_pk,
    primaryKeyDeferrable: x.pk_deferrable,
    uniqueNotNullIndexes: x.unique_not_null,
    otherUniqueIndexes: x.other_unique,
    replicaIdentityIndex: x.ri_index,
    generatedColumns: x.generated,
    identityColumns: x.identity,
    arrayColumns: x.arrays,
    lobColumns: x.lobs,
    noEqualityColumns: x.no_equality,
    estimatedBytes: Number(x.estimated_bytes),
    bytes: Number(x.bytes),
    rowEstimate: Number(x.row_estimate),
    hasStatistics: x.has_stats,
    owner: x.owner,
    ownedByMe: x.owned_by_me,
    canSelect: x.can_select,
    rowSecurity: x.row_security,
    withOids: x.with_oids,
    oidIndexes: x.oid_indexes,
  };
}

export async function readSequences(c: pg.Client): Promise<SequenceFacts[]> {
  // pg_sequences.last_value is NULL for a sequence never used (and for one we may not read).
  const r = await c.query(`
    SELECT s.schemaname AS schema, s.sequencename AS name, s.data_type::text AS data_type, s.max_value::text AS max_value, s.last_value::text AS last_value,
           (SELECT quote_ident(tn.nspname) || '.' || quote_ident(t.relname) || '.' || quote_ident(a.attname)
              FROM pg_class sc JOIN pg_namespace sn ON sn.oid = sc.relnamespace
              JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid AND d.deptype IN ('a', 'i')
              JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
              JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
             WHERE sn.nspname = s.schemaname AND sc.relname = s.sequencename LIMIT 1) AS owned_by
      FROM pg_sequences s
     WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema', '${CONTROL_SCHEMA}')
     ORDER BY 1, 2`);
  return r.rows.map((x) => ({
    schema: x.schema,
    name: x.name,
    dataType: x.data_type,
    maxValue: BigInt(x.max_value),
    lastValue: x.last_value === null ? null : BigInt(x.last_value),
    ownedBy: x.owned_by,
  }));
}

export interface LobMeasure {
  column: string;
  maxBytes: number;
}

export interface LobScan {
  columns: LobMeasure[];
  exact: boolean;
  rowsScanned: number;
  /** Percentage of the table's pages sampled (100 when exact). */
  samplePercent: number;
  ms: number;
}

/**
 * The largest value of each LOB column: exact below `exactBelowBytes` (or `sampleRows` rows), otherwise
 * from a TABLESAMPLE SYSTEM sample sized to about `sampleRows` rows. Values are measured as DMS
 * sees them: the octet length of their text form (bytea: of the bytes).
 */
export async function scanLobs(c: pg.Client, t: RelationFacts, sampleRows: number, exactBelowBytes: number): Promise<LobScan> {
  const started = Date.now();
  const measures = t.lobColumns.map(
    (col) => `coalesce(max(${col.type === 'bytea' ? `octet_length(${quoteIdent(col.name)})` : `octet_length(${quoteIdent(col.name)}::text)`}), 0)::bigint AS ${quoteIdent(col.name)}`,
  );
  const exact = Math.max(t.estimatedBytes, t.bytes) < exactBelowBytes || !t.hasStatistics || t.rowEstimate <= sampleRows;
  const percent = exact ? 100 : Math.min(100, Math.max(0.0001, (sampleRows / Math.max(t.rowEstimate, 1)) * 100));
  const from = exact ? qualify(t) : `${qualify(t)} TABLESAMPLE SYSTEM (${percent.toFixed(6)})`;
  const r = await c.query(`SELECT count(*)::bigint AS __rows, ${measures.join(', ')} FROM ${from}`);
  const row = r.rows[0];
  return {
    columns: t.lobColumns.map((col) => ({ column: col.name, maxBytes: Number(row[col.name]) })),
    exact,
    rowsScanned: Number(row.__rows),
    samplePercent: percent,
    ms: Date.now() - started,
  };
}

/** WAL written per second on the source, sampled over `seconds`. */
export async function sampleWalRate(c: pg.Client, seconds: number, signal?: AbortSignal): Promise<number> {
  const a = (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
  const t0 = Date.now();
  await sleep(seconds * 1000, signal);
  const r = await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS d', [a]);
  return Number(r.rows[0].d) / ((Date.now() - t0) / 1000);
}
