import type pg from 'pg';
import { ddlMode, type DdlMode, type Plan } from '../config/schema.js';
import { gateRefused } from '../core/errors.js';
import { patternRegExps } from '../core/groups.js';
import { quoteIdent } from '../core/ident.js';
import { ddlQueueTable } from '../core/names.js';
import type { Logger } from '../core/log.js';
import { CONTROL, type StreamRecord } from '../journal/journal.js';
import { applyObjectsSql, captureObjectsSql, EVENT_TRIGGERS, queueTableSql } from './ddl-sql.js';

/**
 * DDL while CDC runs (cdc.ddl).
 *
 *  follow   an event trigger on the source queues each schema change on the stream that carries
 *           the rows it concerns; the target runs it when the apply worker reaches it, in commit
 *           order with those rows (ddl-sql.ts). New tables of a group join its publication on the
 *           source and its subscription on the target (joinNewTables), their rows copied then.
 *  detect   the same trigger records every change; cdc status shows it and the cut-over refuses
 *           until it is applied on the target by hand and acknowledged.
 *  off      nothing on the source; a change that breaks the apply stops the stream (cdc status
 *           and verify say so).
 *
 * What is not carried — a statement run inside a function or DO block, one that concerns the rows
 * of two streams, a table without a replica identity, a capture or apply error — is recorded with
 * the statement, shown by cdc status and refused by the cut-over gate (ddlProblems).
 */

export { ddlMode };

/** Whether the source role may install event triggers (superuser, or rds_superuser on RDS). */
export async function canInstallEventTriggers(c: pg.Client): Promise<{ ok: boolean; role: string }> {
  const r = await c.query<{ ok: boolean; role: string }>(
    `SELECT current_user AS role, r.rolsuper OR CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser')
              THEN pg_has_role(current_user, 'rds_superuser', 'MEMBER') ELSE false END AS ok
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  return r.rows[0];
}

/** Refuse (exit 3, nothing created) when cdc.ddl needs an event trigger the source role cannot create. */
export async function requireDdlCapture(c: pg.Client, plan: Plan, sourceLabel: string): Promise<void> {
  const mode = ddlMode(plan);
  if (mode === 'off') return;
  const { ok, role } = await canInstallEventTriggers(c);
  if (ok) return;
  throw gateRefused(
    'source.privilege.event-trigger',
    `source ${sourceLabel}: role ${role} cannot create the event trigger that cdc.ddl: ${mode} needs (superuser or rds_superuser only)`,
    `connect as a superuser (on RDS: GRANT rds_superuser TO ${role}), or set cdc.ddl: off in the plan (a schema change on the source then stops the stream until it is applied on the target)`,
  );
}

/** The queue table of a stream, or none when the plan does not follow DDL. */
export function ddlQueueOf(plan: Plan, stream: string): string | undefined {
  return ddlMode(plan) === 'follow' ? ddlQueueTable(stream) : undefined;
}

/**
 * Source side of one stream, before its snapshot (so that every change after the snapshot is
 * captured): shared objects, the event triggers, the stream's queue table and routing row.
 * Idempotent; a plan with cdc.ddl off installs nothing.
 */
export async function installDdlCapture(c: pg.Client, plan: Plan, record: StreamRecord): Promise<void> {
  const mode = ddlMode(plan);
  if (mode === 'off') return;
  await c.query('BEGIN');
  try {
    // One installer at a time (matrix jobs prepare their groups at once).
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('pgshift.ddl'))`);
    for (const sql of captureObjectsSql()) await c.query(sql);
    const queue = ddlQueueOf(plan, record.group);
    if (queue) for (const sql of queueTableSql(queue)) await c.query(sql);
    const position = plan.groups.findIndex((g) => g.name === record.group);
    const group = plan.groups[position];
    const regexps = (patterns: string[]) => JSON.stringify(patterns.map(patternRegExps));
    await c.query(
      `INSERT INTO ${CONTROL}.ddl_stream (publication, stream, migration, queue, position, include, exclude, mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (publication) DO UPDATE SET stream = EXCLUDED.stream, migration = EXCLUDED.migration, queue = EXCLUDED.queue,
         position = EXCLUDED.position, include = EXCLUDED.include, exclude = EXCLUDED.exclude, mode = EXCLUDED.mode`,
      // A stream that is no group of the plan (a DMS batch-apply companion) places no new table.
      [record.publication, record.group, plan.name, queue ?? null, position < 0 ? 1000 : position, group ? regexps(group.tables) : '[]', group ? regexps(group.exclude) : '[]', mode],
    );
    const existing = new Set((await c.query<{ evtname: string }>(`SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'pgshift\\_ddl%'`)).rows.map((r) => r.evtname));
    for (const t of EVENT_TRIGGERS) if (!existing.has(t.name)) await c.query(t.sql);
    if (queue) await publishQueue(c, record.publication, queue);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * DDL capture for streams loaded before it existed (or under another cdc.ddl), at cdc start: it is
 * installed with each stream before its snapshot, so this only warns that DDL made since the
 * snapshot was not captured (verify's schema tier and the cut-over gate compare the catalogs).
 */
export async function ensureDdlCapture(plan: Plan, log: Logger, sourceLabel: string, c: pg.Client, streams: StreamRecord[]): Promise<void> {
  const mode = ddlMode(plan);
  if (mode === 'off') return;
  await requireDdlCapture(c, plan, sourceLabel);
  const known = (await tableExists(c, 'pgshift.ddl_stream'))
    ? new Map((await c.query<{ publication: string; mode: string }>(`SELECT publication, mode FROM ${CONTROL}.ddl_stream`)).rows.map((r) => [r.publication, r.mode]))
    : new Map<string, string>();
  for (const st of streams) {
    if (known.get(st.publication) !== mode) log.warn(`group ${st.group}: DDL capture (cdc.ddl: ${mode}) installed now, after the snapshot: a schema change made on the source since then was not captured`);
    await installDdlCapture(c, plan, st);
  }
}

/** The queue into its stream's publication, when the publication exists already (a re-run, an older load). */
async function publishQueue(c: pg.Client, publication: string, queue: string): Promise<void> {
  const r = await c.query(
    `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS pub,
            EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'pgshift' AND tablename = $2) AS member`,
    [publication, queue],
  );
  if (r.rows[0].pub && !r.rows[0].member) await c.query(`ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${CONTROL}.${quoteIdent(queue)}`);
}

/** Target side, before the subscriptions apply anything: each stream's queue and the trigger that runs it. */
export async function prepareDdlApply(c: pg.Client, plan: Plan, streams: StreamRecord[]): Promise<void> {
  if (ddlMode(plan) !== 'follow') return;
  for (const st of streams) {
    const queue = ddlQueueTable(st.group);
    await c.query('BEGIN');
    try {
      for (const sql of [...queueTableSql(queue), ...applyObjectsSql(queue, st.group, plan.fullLoad.ownership === 'keep')]) await c.query(sql);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}

/** Teardown: the event triggers (their functions and tables go with the control schema). */
export async function dropDdlCapture(c: pg.Client): Promise<string[]> {
  const r = await c.query<{ evtname: string }>(`SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'pgshift\\_ddl%'`);
  for (const t of r.rows) await c.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(t.evtname)}`);
  return r.rows.map((t) => t.evtname);
}

export type DdlState = 'applied' | 'in flight' | 'failed on target' | 'not carried';

export interface DdlEntry {
  id: number;
  at: string;
  /** The stream that carries it (null: every stream, or none). */
  stream: string | null;
  command: string;
  object: string;
  statement: string | null;
  state: DdlState;
  /** Why it is not carried, the target's error, or a note (run by another stream, created empty…). */
  detail: string | null;
  /** Where it is acknowledged once handled by hand. */
  acknowledge?: string;
}

export interface TableJoin {
  table: string;
  stream: string;
  state: 'waiting for its CREATE on the target' | 'copying' | 'refreshing';
}

export interface DdlReport {
  mode: DdlMode;
  entries: DdlEntry[];
  joins: TableJoin[];
  /** One line per DDL that needs a person (not carried, failed on the target), with the fix. */
  problems: Array<{ stream: string | null; problem: string }>;
}

const REASONS: Record<string, (detail: string | null, plan: Plan) => string> = {
  detected: (_d, plan) => (plan.cdc.engine === 'dms' ? 'the DMS tasks do not apply DDL' : 'cdc.ddl is detect: DDL is recorded, not replayed'),
  'in-function': () => 'it ran inside a function, procedure or DO block, whose text is not the DDL itself',
  'several-streams': (d) => `it concerns the rows of several streams (${d}), which reach the target at different moments`,
  'no-queue': (d) => `its rows travel on ${d}, a stream without a DDL queue (resynced tables)`,
  'no-identity': (d) => `table ${d} matches a group but has no primary key or replica identity, so its rows are not replicated (in a publication its UPDATE and DELETE would fail on the source); give it a primary key or REPLICA IDENTITY FULL and it joins`,
  'identity-lost': (d) =>
    `table ${d} lost its primary key or replica identity, so it left its stream at once (published, its UPDATE and DELETE would fail on the source) and its changes since are not replicated: give it a key or REPLICA IDENTITY FULL again, then copy it again with pgshift cdc resync -t ${d}`,
  'rows-differ': (d) =>
    `the rows that existed got values computed row by row on the source (a volatile default or an identity: ${d}), which the target cannot compute again: copy the table again with pgshift cdc resync -t <table>`,
  'capture-error': (d) => `pgshift could not capture it (${d}); the application's statement itself committed`,
};

const clip = (s: string | null, n = 300) => (s && s.length > n ? `${s.slice(0, n)}…` : s);

async function tableExists(c: pg.Client, name: string): Promise<boolean> {
  const r = await c.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [name]);
  return r.rows[0].ok;
}

/**
 * Every DDL recorded since the streams started, with its state: applied, in flight (queued on the
 * source, not yet on the target), failed on the target, or not carried; and the new tables on
 * their way into a subscription. Problems are what the cut-over must not pass.
 */
export async function ddlReport(plan: Plan, s: { source: pg.Client; target: pg.Client }, streams: StreamRecord[]): Promise<DdlReport> {
  const mode = ddlMode(plan);
  const report: DdlReport = { mode, entries: [], joins: [], problems: [] };
  if (!(await tableExists(s.source, 'pgshift.ddl_log'))) return report;
  await reportNotCarried(plan, s.source, report);
  if (mode !== 'follow') return report;
  reportQueued(await readQueues(s, streams), report);
  report.entries.sort((a, b) => a.id - b.id);
  report.joins = await pendingJoins(s, streams);
  return report;
}

/** The DDL log's unacknowledged entries: DDL that no stream carries, each a problem with its fix. */
async function reportNotCarried(plan: Plan, source: pg.Client, report: DdlReport): Promise<void> {
  const log = await source.query<{ id: string; at: string; command: string; object: string; statement: string | null; stream: string | null; reason: string; detail: string | null }>(
    `SELECT id::text, at::text, command, object, statement, stream, reason, detail FROM ${CONTROL}.ddl_log WHERE acknowledged_at IS NULL ORDER BY id`,
  );
  for (const l of log.rows) {
    // A table without a replica identity stops being a problem once it has joined a stream.
    // Both end once the table is in a stream again (it joined, or a resync copied it) or is gone.
    if ((l.reason === 'no-identity' || l.reason === 'identity-lost') && l.detail && (await joinedOrGone(source, l.detail))) continue;
    const why = (REASONS[l.reason] ?? ((d: string | null) => `${l.reason}${d ? `: ${d}` : ''}`))(l.detail, plan);
    const entry: DdlEntry = {
      id: Number(l.id),
      at: l.at,
      stream: l.stream,
      command: l.command,
      object: l.object,
      statement: l.statement,
      state: 'not carried',
      detail: why,
      acknowledge: `UPDATE pgshift.ddl_log SET acknowledged_at = now() WHERE id = ${l.id} (on the source)`,
    };
    report.entries.push(entry);
    report.problems.push({
      stream: l.stream,
      problem: `DDL #${l.id} on the source at ${l.at} was not carried to the target — ${why}: ${l.command} ${l.object}${l.statement ? `: ${clip(l.statement)}` : ''} — apply it on the target by hand (or fix the table), then acknowledge: ${entry.acknowledge}`,
    });
  }
}

/** A queued DDL row: the source's, or the target's copy with what its apply trigger made of it. */
type QueuedRow = { id: string; at: string; command: string; object: string; statement: string; apply: string | null; shared: boolean; note: string | null; applied_at: string | null; error: string | null; acknowledged_at: string | null };
/** One queued DDL (by id): the source's row, the streams that queued it, and each stream's outcome on the target. */
type Queued = Map<string, { row: QueuedRow; streams: string[]; outcomes: Array<{ stream: string; row?: QueuedRow }> }>;

/** Queued DDL: the source's rows and, for each, what the target's apply trigger made of it. */
async function readQueues(s: { source: pg.Client; target: pg.Client }, streams: StreamRecord[]): Promise<Queued> {
  const queued: Queued = new Map();
  for (const st of streams) {
    const q = `${CONTROL}.${quoteIdent(ddlQueueTable(st.group))}`;
    if (!(await tableExists(s.source, q))) continue;
    const src = await s.source.query<QueuedRow>(`SELECT id::text, at::text, command, object, statement, apply, shared, note, NULL AS applied_at, NULL AS error, NULL AS acknowledged_at FROM ${q} ORDER BY id`);
    const tgt = (await tableExists(s.target, q))
      ? new Map((await s.target.query<QueuedRow>(`SELECT id::text, at::text, command, object, statement, apply, shared, note, applied_at::text, error, acknowledged_at::text FROM ${q}`)).rows.map((r) => [r.id, r]))
      : new Map<string, QueuedRow>();
    for (const row of src.rows) {
      const e = queued.get(row.id) ?? { row, streams: [], outcomes: [] };
      e.streams.push(st.group);
      e.outcomes.push({ stream: st.group, row: tgt.get(row.id) });
      queued.set(row.id, e);
    }
  }
  return queued;
}

/** Each queued DDL's state: applied by one stream, failed on the target (a problem until acknowledged), or in flight. */
function reportQueued(queued: Queued, report: DdlReport): void {
  for (const [id, e] of queued) {
    const done = e.outcomes.find((o) => o.row?.applied_at && !o.row.error);
    const failed = e.outcomes.filter((o) => o.row?.error);
    const pending = e.outcomes.filter((o) => !o.row);
    const stream = e.row.shared ? null : e.streams[0];
    const base = { id: Number(id), at: e.row.at, stream, command: e.row.command, object: e.row.object, statement: e.row.apply ?? e.row.statement };
    if (done) {
      report.entries.push({ ...base, state: 'applied', detail: done.row!.note });
    } else if (failed.length && pending.length === 0) {
      const f = failed[0];
      const acknowledged = failed.every((o) => o.row!.acknowledged_at);
      const acknowledge = `UPDATE pgshift.${quoteIdent(ddlQueueTable(f.stream))} SET acknowledged_at = now() WHERE id = ${id} (on the target)`;
      report.entries.push({ ...base, state: 'failed on target', detail: f.row!.error, acknowledge });
      if (!acknowledged) {
        report.problems.push({
          stream,
          problem: `DDL #${id} failed on the target (${f.row!.error}): ${clip(base.statement)} — apply a working equivalent on the target by hand, then acknowledge: ${acknowledge}`,
        });
      }
    } else {
      report.entries.push({ ...base, state: 'in flight', detail: null });
    }
  }
}

async function joinedOrGone(c: pg.Client, table: string): Promise<boolean> {
  const r = await c.query(
    `SELECT to_regclass($1) IS NULL OR EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
              WHERE pr.prrelid = to_regclass($1) AND p.pubname LIKE 'pgshift\\_%') AS ok`,
    [table],
  );
  return r.rows[0].ok;
}

/** Tables in a stream's publication on the source that its subscription does not apply as ready. */
async function pendingJoins(s: { source: pg.Client; target: pg.Client }, streams: StreamRecord[]): Promise<TableJoin[]> {
  const out: TableJoin[] = [];
  for (const st of streams) {
    if (st.state !== 'streaming') continue;
    const published = await s.source.query<{ t: string }>(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = $1`, [st.publication]);
    const subscribed = new Map(
      (
        await s.target.query<{ t: string; state: string }>(
          `SELECT format('%I.%I', n.nspname, c.relname) AS t, sr.srsubstate::text AS state FROM pg_subscription_rel sr
             JOIN pg_subscription sub ON sub.oid = sr.srsubid JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE sub.subname = $1`,
          [st.subscription],
        )
      ).rows.map((r) => [r.t, r.state]),
    );
    if (subscribed.size === 0) continue; // no subscription yet (cdc not started)
    for (const { t } of published.rows) {
      const state = subscribed.get(t);
      if (state === 'r') continue;
      if (state) out.push({ table: t, stream: st.group, state: 'copying' });
      else out.push({ table: t, stream: st.group, state: (await tableExists(s.target, t)) ? 'refreshing' : 'waiting for its CREATE on the target' });
    }
  }
  return out;
}

/**
 * Tables that joined a stream's publication on the source join its subscription on the target:
 * ALTER SUBSCRIPTION … REFRESH PUBLICATION WITH (copy_data = true) copies their rows and hands them
 * over to the stream at a consistent point, so rows written before they joined are not lost. It
 * cannot run inside the apply worker (not in a transaction block since PostgreSQL 14), so cdc
 * status, verify and cdc start do it, once the apply worker has created the table. Returns what
 * was refreshed.
 */
export async function joinNewTables(plan: Plan, s: { source: pg.Client; target: pg.Client }, streams: StreamRecord[]): Promise<string[]> {
  if (ddlMode(plan) === 'off') return [];
  const refreshed: string[] = [];
  const joins = await pendingJoins(s, streams);
  for (const st of streams) {
    const mine = joins.filter((j) => j.stream === st.group);
    if (mine.length === 0 || mine.some((j) => j.state !== 'refreshing')) continue;
    const sub = await s.target.query(`SELECT 1 FROM pg_subscription WHERE subname = $1 AND subenabled`, [st.subscription]);
    if (!sub.rowCount) continue;
    await s.target.query(`ALTER SUBSCRIPTION ${quoteIdent(st.subscription)} REFRESH PUBLICATION WITH (copy_data = true)`);
    refreshed.push(...mine.map((j) => `${j.table} (${st.group})`));
  }
  return refreshed;
}

/**
 * The cut-over gate's DDL check: refused (exit 3) while any DDL is not carried, failed on the
 * target, or a new table's rows are still on their way.
 */
export async function refuseUncarriedDdl(plan: Plan, s: { source: pg.Client; target: pg.Client }, streams: StreamRecord[]): Promise<void> {
  const report = await ddlReport(plan, s, streams);
  const problems = [...report.problems, ...report.joins.map((j) => ({ stream: j.stream, problem: joinText(j) }))];
  if (problems.length === 0) return;
  throw gateRefused(
    'cutover.ddl',
    `${problems[0].problem}${problems.length > 1 ? ` (and ${problems.length - 1} more DDL problem(s))` : ''}`,
    'pgshift cdc status lists every one with its statement; handle them, then run cutover again',
  );
}

/** A table on its way into a subscription, in words. */
export function joinText(j: TableJoin): string {
  return j.state === 'waiting for its CREATE on the target'
    ? `table ${j.table} joined stream ${j.stream} on the source and waits for its CREATE TABLE to be applied on the target`
    : `table ${j.table} joined stream ${j.stream}: its rows are being copied into the target (${j.state})`;
}
