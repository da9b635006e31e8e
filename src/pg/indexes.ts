import type pg from 'pg';
import { qualify, quoteIdent, type QualifiedName } from '../core/ident.js';
import { restoreList, type SchemaDump } from './schema.js';
import type { PgTool } from './tools.js';
import { abandon } from './connect.js';

/**
 * Indexes built per table as soon as the table's rows have all landed, instead of all at the end
 * by pg_restore's post-data: a big table's index builds then overlap the copy of the others.
 *
 * Primary keys and unique constraints go through a unique index and `ADD CONSTRAINT … USING
 * INDEX`, so the expensive part is a plain index build; both run in one transaction, so a crash
 * leaves the constraint whole or absent. What pg_dump attaches to an index's entry (replica
 * identity, CLUSTER ON) is applied too, because that entry is then left out of post-data.
 *
 * Not built early, and left to post-data: indexes of partitions and partitioned tables (they are
 * attached to a parent index), exclusion constraints, indexes outside the default tablespace and
 * indexes with per-column statistics targets.
 */
export interface IndexBuild {
  table: QualifiedName;
  index: string;
  indexOid: number;
  definition: string;
  constraint?: { oid: number; name: string; kind: 'PRIMARY KEY' | 'UNIQUE'; deferrable: boolean; deferred: boolean };
  replicaIdentity: boolean;
  clustered: boolean;
}

/** ANALYZE of a loaded table, queued after its indexes so that it overlaps the other copies. */
export interface AnalyzeStep {
  table: QualifiedName;
  analyze: true;
}

/** What the queue runs once a table has landed. */
export type TableStep = IndexBuild | AnalyzeStep;

export function analyzeStep(table: QualifiedName): AnalyzeStep {
  return { table, analyze: true };
}

export const isAnalyze = (step: TableStep): step is AnalyzeStep => 'analyze' in step;

const tableKey = (t: QualifiedName) => `${t.schema}.${t.name}`;

/** The indexes of these tables that can be built as soon as each table is loaded (read on the source). */
export async function earlyIndexes(source: pg.Client, tables: QualifiedName[]): Promise<Map<string, IndexBuild[]>> {
  const r = await source.query<{
    schema: string;
    name: string;
    index: string;
    index_oid: string;
    definition: string;
    con_oid: string | null;
    con_name: string | null;
    con_type: string | null;
    deferrable: boolean | null;
    deferred: boolean | null;
    replident: boolean;
    clustered: boolean;
  }>(
    `SELECT n.nspname AS schema, t.relname AS name, ic.relname AS index, i.indexrelid::text AS index_oid,
            pg_get_indexdef(i.indexrelid) AS definition, con.oid::text AS con_oid, con.conname AS con_name,
            con.contype::text AS con_type, con.condeferrable AS deferrable, con.condeferred AS deferred,
            i.indisreplident AS replident, i.indisclustered AS clustered
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u', 'x')
      WHERE (n.nspname, t.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        AND t.relkind = 'r' AND NOT t.relispartition
        AND i.indisvalid AND ic.reltablespace = 0
        AND (con.contype IS NULL OR con.contype <> 'x')
        AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND coalesce(a.attstattarget, -1) > 0)
      ORDER BY n.nspname, t.relname, con.contype NULLS LAST, ic.relname`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  const byTable = new Map<string, IndexBuild[]>();
  for (const row of r.rows) {
    const table = { schema: row.schema, name: row.name };
    const build: IndexBuild = {
      table,
      index: row.index,
      indexOid: Number(row.index_oid),
      definition: row.definition,
      replicaIdentity: row.replident,
      clustered: row.clustered,
    };
    if (row.con_oid) {
      build.constraint = { oid: Number(row.con_oid), name: row.con_name!, kind: row.con_type === 'p' ? 'PRIMARY KEY' : 'UNIQUE', deferrable: !!row.deferrable, deferred: !!row.deferred };
    }
    const list = byTable.get(tableKey(table)) ?? [];
    list.push(build);
    byTable.set(tableKey(table), list);
  }
  return byTable;
}

export function indexesOf(early: Map<string, IndexBuild[]>, table: QualifiedName): IndexBuild[] {
  return early.get(tableKey(table)) ?? [];
}

/**
 * Build one index (and its constraint) on the target unless it is already there: a run resumed
 * after a crash builds only what is missing. The index is built in its own transaction, holding
 * only a SHARE lock, so several indexes of one table build side by side; the constraint, replica
 * identity and CLUSTER ON follow in a second, short transaction (their ACCESS EXCLUSIVE lock
 * taken inside the build's transaction would deadlock with a sibling build). A crash between the
 * two leaves the index without its constraint, which the next run adds. Returns false when there
 * was nothing to do.
 */
export async function buildIndex(target: pg.Client, b: IndexBuild): Promise<boolean> {
  const t = qualify(b.table);
  const state = await target.query<{ index: boolean; constraint: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $3) AS index,
            EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relname = $2 AND k.conname = $4) AS constraint`,
    [b.table.schema, b.table.name, b.index, b.constraint?.name ?? ''],
  );
  const needConstraint = b.constraint !== undefined && !state.rows[0].constraint;
  if (state.rows[0].index && !needConstraint) return false;
  if (!state.rows[0].index) await target.query(b.definition);
  if (!needConstraint && !b.replicaIdentity && !b.clustered) return true;
  await target.query('BEGIN');
  try {
    if (needConstraint) {
      const c = b.constraint!;
      const timing = c.deferrable ? (c.deferred ? ' DEFERRABLE INITIALLY DEFERRED' : ' DEFERRABLE') : '';
      await target.query(`ALTER TABLE ONLY ${t} ADD CONSTRAINT ${quoteIdent(c.name)} ${c.kind} USING INDEX ${quoteIdent(b.index)}${timing}`);
    }
    if (b.replicaIdentity) await target.query(`ALTER TABLE ONLY ${t} REPLICA IDENTITY USING INDEX ${quoteIdent(b.index)}`);
    if (b.clustered) await target.query(`ALTER TABLE ${t} CLUSTER ON ${quoteIdent(b.index)}`);
    await target.query('COMMIT');
    return true;
  } catch (err) {
    await target.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * A pg_restore list (`-L`) of the dump with the entries of early-built indexes and constraints
 * commented out. Entries are matched by the catalog OID pg_dump prints (`1259 <index oid>`,
 * `2606 <constraint oid>`), never by name, which may contain spaces.
 */
export async function postDataList(tool: PgTool, dump: SchemaDump, builtEarly: IndexBuild[]): Promise<string> {
  const skip = new Set<string>();
  for (const b of builtEarly) {
    skip.add(`1259 ${b.indexOid}`);
    if (b.constraint) skip.add(`2606 ${b.constraint.oid}`);
  }
  return restoreList(tool, dump, 'post-data', ({ classId, objectId }) => skip.has(`${classId} ${objectId}`));
}

/**
 * Index builds (and ANALYZE) queued as tables finish loading, at most `jobs` at once, each on its own target
 * session (maintenance_work_mem raised for the build). Failures are kept and rethrown by drain(),
 * so a copy in progress is not torn down by an index error; the run fails once the copies end.
 */
export class IndexQueue {
  private running = 0;
  private readonly waiting: TableStep[] = [];
  private readonly idle: pg.Client[] = [];
  private readonly all: pg.Client[] = [];
  private failed: unknown;
  private drained?: () => void;
  built = 0;

  constructor(
    private readonly open: () => Promise<pg.Client>,
    private readonly jobs: number,
    private readonly onBuilt: (step: TableStep, ms: number, built: boolean) => void,
  ) {}

  add(steps: TableStep[]): void {
    this.waiting.push(...steps);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.jobs && this.waiting.length > 0 && this.failed === undefined) {
      const b = this.waiting.shift()!;
      this.running++;
      void this.run(b).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && (this.waiting.length === 0 || this.failed !== undefined)) this.drained?.();
      });
    }
  }

  private async run(b: TableStep): Promise<void> {
    try {
      const c = this.idle.pop() ?? (await this.connect());
      const started = Date.now();
      let built = false;
      if (isAnalyze(b)) await c.query(`ANALYZE ${qualify(b.table)}`);
      else built = await buildIndex(c, b);
      if (built) this.built++;
      this.onBuilt(b, Date.now() - started, built);
      this.idle.push(c);
    } catch (err) {
      this.failed ??= err;
    }
  }

  private async connect(): Promise<pg.Client> {
    const c = await this.open();
    this.all.push(c);
    return c;
  }

  /** Wait for every queued build; rethrow the first failure. */
  async drain(): Promise<void> {
    if (this.running > 0 || (this.waiting.length > 0 && this.failed === undefined)) {
      await new Promise<void>((resolve) => (this.drained = resolve));
    }
    if (this.failed !== undefined) throw this.failed;
  }

  /** Stop at once (SIGINT/SIGTERM): nothing more starts, builds in flight are dropped with their sessions. */
  abandon(reason: unknown): void {
    this.failed ??= reason;
    this.waiting.length = 0;
    for (const c of this.all) abandon(c);
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((c) => c.end().catch(() => {})));
  }
}
