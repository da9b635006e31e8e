import type pg from 'pg';
import { noteChange } from '../core/changes.js';
import { quoteIdent, type QualifiedName } from '../core/ident.js';
import { redact, redactDeep } from '../core/secrets.js';
import { CONTROL_SCHEMA } from '../pg/catalog.js';

/**
 * The journal: pgshift's control schema on the target. It records the migration, each phase's
 * state, each group's slot/publication/subscription and snapshot LSN, per-table copy progress and
 * events, so that any run (CLI, a workflow job on another runner, `pgshift status`) can see where
 * the migration stands and continue from there. Creating it is idempotent and serialised with an
 * advisory lock because matrix jobs may start at the same moment. Nothing secret is ever written.
 */
/** The control schema's name quoted for SQL text: `${CONTROL}.streams`. */
export const CONTROL = quoteIdent(CONTROL_SCHEMA);
const LOCK_KEY = 'pgshift.journal';

export type PhaseName = 'assess' | 'full-load' | 'cdc' | 'verify' | 'cutover' | 'teardown';
export type PhaseState = 'running' | 'partial' | 'done' | 'failed' | 'refused' | 'undone' | 'interrupted';

export interface StreamRecord {
  group: string;
  slot: string;
  publication: string;
  subscription: string;
  snapshotMode: string;
  snapshotLsn: string | null;
  state: string;
}

/**
 * Who runs a phase: the backend of the journal session of the process that started it. A phase
 * whose row says running while that session is gone was interrupted (the process died): `status`
 * says so, and the next run of the phase takes over.
 */
const PHASE_OWNER_COLUMNS = [
  `ALTER TABLE ${CONTROL}.phase ADD COLUMN IF NOT EXISTS owner_pid int`,
  `ALTER TABLE ${CONTROL}.phase ADD COLUMN IF NOT EXISTS owner_started timestamptz`,
];
const OWNER_NOW = `pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`;
/** SQL: the phase row p's owner session is still there (backend_start hidden from other roles counts as there). */
export const PHASE_OWNER_ALIVE = `EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = p.owner_pid AND (a.backend_start IS NULL OR a.backend_start = p.owner_started))`;

/**
 * The control schema, made if missing and marked as pgshift's (run before anything is made in it,
 * on either server): the mark is how pgshift tells its schema from a user's of the same name, which
 * it must never fill, take for its state or drop. One query string, so one implicit transaction:
 * a pgshift killed in between cannot leave an unmarked schema that its re-run would refuse.
 */
const CONTROL_MARK = 'pgshift control schema:';
export const CONTROL_SCHEMA_SQL = `CREATE SCHEMA IF NOT EXISTS ${CONTROL};
  COMMENT ON SCHEMA ${CONTROL} IS '${CONTROL_MARK} the migration''s state and journal, made by pgshift, dropped by pgshift teardown.'`;

export type ControlSchemaState = 'absent' | 'pgshift' | 'foreign';

/**
 * Whether the server has a schema of the control schema's name, and whose it is: pgshift's when
 * marked, or when it holds the tables an earlier pgshift made before the source's schema was marked.
 */
export async function controlSchemaState(c: pg.Client): Promise<ControlSchemaState> {
  const r = await c.query<{ marked: boolean; known: boolean }>(
    `SELECT coalesce(obj_description(n.oid, 'pg_namespace') LIKE $2 || '%', false) AS marked,
            EXISTS (SELECT 1 FROM pg_class t WHERE t.relnamespace = n.oid AND (t.relname IN ('migration', 'ddl_stream', 'ddl_log') OR t.relname LIKE 'heartbeat\\_%')) AS known
       FROM pg_namespace n WHERE n.nspname = $1`,
    [CONTROL_SCHEMA, CONTROL_MARK],
  );
  if (!r.rowCount) return 'absent';
  return r.rows[0].marked || r.rows[0].known ? 'pgshift' : 'foreign';
}

const DDL = [
  CONTROL_SCHEMA_SQL,
  `CREATE TABLE IF NOT EXISTS ${CONTROL}.migration (
     name text PRIMARY KEY,
     created_at timestamptz NOT NULL DEFAULT now(),
     source text NOT NULL,
     target text NOT NULL,
     source_version int NOT NULL,
     target_version int NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ${CONTROL}.phase (
     migration text NOT NULL REFERENCES ${CONTROL}.migration ON DELETE CASCADE,
     phase text NOT NULL,
     state text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz,
     detail jsonb,
     PRIMARY KEY (migration, phase))`,
  `CREATE TABLE IF NOT EXISTS ${CONTROL}.stream (
     migration text NOT NULL REFERENCES ${CONTROL}.migration ON DELETE CASCADE,
     group_name text NOT NULL,
     slot_name text NOT NULL,
     publication text NOT NULL,
     subscription text NOT NULL,
     snapshot_mode text NOT NULL,
     snapshot_lsn pg_lsn,
     state text NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (migration, group_name))`,
  `CREATE TABLE IF NOT EXISTS ${CONTROL}.copy_progress (
     migration text NOT NULL REFERENCES ${CONTROL}.migration ON DELETE CASCADE,
     group_name text NOT NULL,
     table_schema text NOT NULL,
     table_name text NOT NULL,
     part int NOT NULL DEFAULT 0,
     state text NOT NULL,
     rows bigint,
     bytes bigint,
     started_at timestamptz,
     finished_at timestamptz,
     PRIMARY KEY (migration, table_schema, table_name, part))`,
  // The part's WHERE condition: a resumed run skips a finished part only if it is the same range.
  `ALTER TABLE ${CONTROL}.copy_progress ADD COLUMN IF NOT EXISTS condition text`,
  ...PHASE_OWNER_COLUMNS,
  `CREATE TABLE IF NOT EXISTS ${CONTROL}.event (
     id bigserial PRIMARY KEY,
     migration text NOT NULL,
     at timestamptz NOT NULL DEFAULT now(),
     phase text NOT NULL,
     level text NOT NULL,
     message text NOT NULL,
     detail jsonb)`,
];

export class Journal {
  constructor(
    private readonly c: pg.Client,
    readonly migration: string,
  ) {}

  /** Create the control schema if needed and register the migration. */
  static async open(
    c: pg.Client,
    migration: string,
    info: { source: string; target: string; sourceVersion: number; targetVersion: number },
  ): Promise<Journal> {
    if (!(await Journal.find(c, migration))) noteChange(`pgshift journal of ${migration} on the target`);
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCK_KEY]);
      for (const statement of DDL) await c.query(statement);
      await c.query(
        `INSERT INTO ${CONTROL}.migration (name, source, target, source_version, target_version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source, target = EXCLUDED.target,
           source_version = EXCLUDED.source_version, target_version = EXCLUDED.target_version`,
        [migration, redact(info.source), redact(info.target), info.sourceVersion, info.targetVersion],
      );
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
    return new Journal(c, migration);
  }

  /** The journal if it exists, without creating anything (for status and teardown). */
  static async find(c: pg.Client, migration: string): Promise<Journal | undefined> {
    const r = await c.query(`SELECT 1 FROM pg_namespace n JOIN pg_class t ON t.relnamespace = n.oid WHERE n.nspname = $1 AND t.relname = 'migration'`, [CONTROL_SCHEMA]);
    if (r.rowCount === 0) return undefined;
    const m = await c.query(`SELECT 1 FROM ${CONTROL}.migration WHERE name = $1`, [migration]);
    if (!m.rowCount) return undefined;
    // A journal written by an earlier pgshift gets the columns this one records.
    const cols = await c.query(`SELECT 1 FROM pg_attribute WHERE attrelid = '${CONTROL_SCHEMA}.phase'::regclass AND attname = 'owner_pid'`);
    if (!cols.rowCount) for (const statement of PHASE_OWNER_COLUMNS) await c.query(statement);
    return new Journal(c, migration);
  }

  get client(): pg.Client {
    return this.c;
  }

  /**
   * A phase's row; `interrupted` when it says running but the process that runs it is gone.
   */
  async phaseState(phase: PhaseName | string): Promise<{ state: PhaseState; detail: unknown; finishedAt: Date | null; interrupted: boolean } | undefined> {
    const r = await this.c.query(
      `SELECT state, detail, finished_at, state = 'running' AND owner_pid IS NOT NULL AND NOT ${PHASE_OWNER_ALIVE} AS interrupted FROM ${CONTROL}.phase p WHERE migration = $1 AND phase = $2`,
      [this.migration, phase],
    );
    const row = r.rows[0];
    return row ? { state: row.state, detail: row.detail, finishedAt: row.finished_at, interrupted: row.interrupted } : undefined;
  }

  /**
   * Every phase row of the migration, oldest first, with `interrupted` as the state of one that
   * says running while its process is gone (killed, runner lost).
   */
  async phases(): Promise<Array<{ phase: string; state: PhaseState | 'interrupted'; startedAt: string; finishedAt: string | null; detail: unknown }>> {
    const r = await this.c.query(
      `SELECT phase, CASE WHEN state = 'running' AND owner_pid IS NOT NULL AND NOT ${PHASE_OWNER_ALIVE} THEN 'interrupted' ELSE state END AS state,
              started_at::text AS "startedAt", finished_at::text AS "finishedAt", detail
         FROM ${CONTROL}.phase p WHERE migration = $1 ORDER BY started_at, phase`,
      [this.migration],
    );
    return r.rows;
  }

  async startPhase(phase: PhaseName | string, detail: unknown = {}): Promise<void> {
    await this.c.query(
      `INSERT INTO ${CONTROL}.phase (migration, phase, state, detail, owner_pid, owner_started) VALUES ($1, $2, 'running', $3, ${OWNER_NOW})
       ON CONFLICT (migration, phase) DO UPDATE SET state = 'running', started_at = now(), finished_at = NULL, detail = EXCLUDED.detail,
         owner_pid = EXCLUDED.owner_pid, owner_started = EXCLUDED.owner_started`,
      [this.migration, phase, JSON.stringify(redactDeep(detail))],
    );
    await this.event(phase, 'info', `${phase} started`);
  }

  async finishPhase(phase: PhaseName | string, state: Exclude<PhaseState, 'running'>, detail: unknown = {}): Promise<void> {
    await this.c.query(
      `INSERT INTO ${CONTROL}.phase (migration, phase, state, finished_at, detail) VALUES ($1, $2, $3, now(), $4)
       ON CONFLICT (migration, phase) DO UPDATE SET state = EXCLUDED.state, finished_at = now(), detail = EXCLUDED.detail`,
      [this.migration, phase, state, JSON.stringify(redactDeep(detail))],
    );
    await this.event(phase, state === 'done' ? 'info' : 'error', `${phase} ${state}`);
  }

  /** Update a phase's state and detail without an event (progress snapshots every few seconds). */
  async setPhaseDetail(phase: string, state: PhaseState, detail: unknown): Promise<void> {
    await this.c.query(
      `INSERT INTO ${CONTROL}.phase (migration, phase, state, detail, owner_pid, owner_started) VALUES ($1, $2, $3, $4, ${OWNER_NOW})
       ON CONFLICT (migration, phase) DO UPDATE SET state = EXCLUDED.state, detail = EXCLUDED.detail,
         finished_at = CASE WHEN EXCLUDED.state = 'running' THEN NULL ELSE now() END,
         owner_pid = CASE WHEN EXCLUDED.state = 'running' THEN EXCLUDED.owner_pid ELSE ${CONTROL}.phase.owner_pid END,
         owner_started = CASE WHEN EXCLUDED.state = 'running' THEN EXCLUDED.owner_started ELSE ${CONTROL}.phase.owner_started END`,
      [this.migration, phase, state, JSON.stringify(redactDeep(detail))],
    );
  }

  async event(phase: PhaseName | string, level: 'info' | 'warn' | 'error', message: string, detail?: unknown): Promise<void> {
    await this.c.query(`INSERT INTO ${CONTROL}.event (migration, phase, level, message, detail) VALUES ($1, $2, $3, $4, $5)`, [
      this.migration,
      phase,
      level,
      redact(message),
      detail === undefined ? null : JSON.stringify(redactDeep(detail)),
    ]);
  }

  async saveStream(s: StreamRecord): Promise<void> {
    await this.c.query(
      `INSERT INTO ${CONTROL}.stream (migration, group_name, slot_name, publication, subscription, snapshot_mode, snapshot_lsn, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (migration, group_name) DO UPDATE SET slot_name = EXCLUDED.slot_name, publication = EXCLUDED.publication,
         subscription = EXCLUDED.subscription, snapshot_mode = EXCLUDED.snapshot_mode, snapshot_lsn = EXCLUDED.snapshot_lsn,
         state = EXCLUDED.state, updated_at = now()`,
      [this.migration, s.group, s.slot, s.publication, s.subscription, s.snapshotMode, s.snapshotLsn, s.state],
    );
  }

  async deleteStream(group: string): Promise<void> {
    await this.c.query(`DELETE FROM ${CONTROL}.stream WHERE migration = $1 AND group_name = $2`, [this.migration, group]);
  }

  async setStreamState(group: string, state: string): Promise<void> {
    await this.c.query(`UPDATE ${CONTROL}.stream SET state = $3, updated_at = now() WHERE migration = $1 AND group_name = $2`, [this.migration, group, state]);
  }

  async streams(): Promise<StreamRecord[]> {
    const r = await this.c.query(
      `SELECT group_name, slot_name, publication, subscription, snapshot_mode, snapshot_lsn::text, state FROM ${CONTROL}.stream WHERE migration = $1 ORDER BY group_name`,
      [this.migration],
    );
    return r.rows.map((row) => ({
      group: row.group_name,
      slot: row.slot_name,
      publication: row.publication,
      subscription: row.subscription,
      snapshotMode: row.snapshot_mode,
      snapshotLsn: row.snapshot_lsn,
      state: row.state,
    }));
  }

  async tableProgress(): Promise<Array<{ group: string; schema: string; name: string; part: number; state: string; rows: number | null; bytes: number | null; condition: string | null }>> {
    const r = await this.c.query(
      `SELECT group_name, table_schema, table_name, part, state, rows, bytes, condition FROM ${CONTROL}.copy_progress WHERE migration = $1 ORDER BY group_name, table_schema, table_name, part`,
      [this.migration],
    );
    return r.rows.map((row) => ({
      group: row.group_name,
      schema: row.table_schema,
      name: row.table_name,
      part: row.part,
      state: row.state,
      rows: row.rows === null ? null : Number(row.rows),
      bytes: row.bytes === null ? null : Number(row.bytes),
      condition: row.condition,
    }));
  }

  /** Forget the copy progress of these tables (a resume copies them again from a new snapshot). */
  async forgetTables(tables: Array<{ schema: string; name: string }>): Promise<void> {
    if (!tables.length) return;
    await this.c.query(`DELETE FROM ${CONTROL}.copy_progress WHERE migration = $1 AND (table_schema, table_name) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, [
      this.migration,
      tables.map((t) => t.schema),
      tables.map((t) => t.name),
    ]);
  }

  /**
   * Everything the journal holds about the migration, for a failure-state bundle: streams, every
   * phase with its detail, the last events and the copy progress.
   */
  async dump(eventLimit = 500): Promise<Record<string, unknown>> {
    const phases = await this.c.query(`SELECT phase, state, started_at, finished_at, detail FROM ${CONTROL}.phase WHERE migration = $1 ORDER BY started_at`, [this.migration]);
    return { streams: await this.streams(), phases: phases.rows, events: await this.events(eventLimit), copyProgress: await this.tableProgress() };
  }

  async events(limit = 50): Promise<Array<{ at: Date; phase: string; level: string; message: string }>> {
    const r = await this.c.query(`SELECT at, phase, level, message FROM ${CONTROL}.event WHERE migration = $1 ORDER BY id DESC LIMIT $2`, [this.migration, limit]);
    return r.rows.reverse();
  }
}

/** Statements (run by a copy worker inside its target transaction) that record a table's progress. */
export const progressSql = {
  upsert: `INSERT INTO ${CONTROL}.copy_progress (migration, group_name, table_schema, table_name, part, state, rows, bytes, condition, started_at, finished_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $6 = 'copying' THEN now() END, CASE WHEN $6 = 'done' THEN now() END)
           ON CONFLICT (migration, table_schema, table_name, part) DO UPDATE SET state = EXCLUDED.state, rows = EXCLUDED.rows, condition = EXCLUDED.condition,
             bytes = EXCLUDED.bytes, started_at = COALESCE(EXCLUDED.started_at, ${CONTROL}.copy_progress.started_at),
             finished_at = EXCLUDED.finished_at`,
};

/** Drops pgshift's control schema with everything in it; a user's schema of that name is never dropped. Returns what was there. */
export async function dropControlSchema(c: pg.Client): Promise<ControlSchemaState> {
  const state = await controlSchemaState(c);
  if (state === 'pgshift') await c.query(`DROP SCHEMA ${CONTROL} CASCADE`);
  return state;
}


/** One part (0: a whole table) loaded: written inside the target transaction that loaded it. */
export async function recordPartDone(
  c: pg.Client,
  migration: string,
  part: { group: string; table: QualifiedName; part: number; rows: number; bytes: number; where?: string | null },
): Promise<void> {
  await c.query(progressSql.upsert, [migration, part.group, part.table.schema, part.table.name, part.part, 'done', part.rows, part.bytes, part.where ?? null]);
}

/** A split table is done when all its parts are: record it as a whole (part 0). */
export async function recordSplitTableDone(c: pg.Client, migration: string, group: string, table: QualifiedName, parts: number): Promise<void> {
  await c.query(
    `INSERT INTO ${CONTROL}.copy_progress (migration, group_name, table_schema, table_name, part, state, rows, bytes, finished_at)
     SELECT $1, $2, $3, $4, 0, 'done', sum(rows), sum(bytes), now() FROM ${CONTROL}.copy_progress
      WHERE migration = $1 AND table_schema = $3 AND table_name = $4 AND part > 0 AND state = 'done' HAVING count(*) = $5
     ON CONFLICT (migration, table_schema, table_name, part) DO UPDATE SET state = 'done', rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, finished_at = now()`,
    [migration, group, table.schema, table.name, parts],
  );
}

/** Forget a table's loaded parts (inside the transaction that clears its rows). */
export async function forgetTableProgress(c: pg.Client, migration: string, table: QualifiedName): Promise<void> {
  await c.query(`DELETE FROM ${CONTROL}.copy_progress WHERE migration = $1 AND table_schema = $2 AND table_name = $3`, [migration, table.schema, table.name]);
}

/** Forget every loaded part of a group (it starts over). */
export async function forgetGroupProgress(c: pg.Client, migration: string, group: string): Promise<void> {
  await c.query(`DELETE FROM ${CONTROL}.copy_progress WHERE migration = $1 AND group_name = $2`, [migration, group]);
}
