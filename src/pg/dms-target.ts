import type pg from 'pg';

/**
 * What the DMS tasks leave on the target that pgshift reads: the apply-exceptions control table
 * (`awsdms_apply_exceptions`, created by DMS on its first exception). Reads only: acknowledging
 * exceptions is recorded in pgshift's journal, never by changing DMS's table.
 */
export interface ApplyException {
  task: string;
  owner: string;
  name: string;
  at: string;
  error: string;
}

/** Whether DMS's apply-exceptions control table exists on the target yet. */
export async function hasApplyExceptions(target: pg.Client): Promise<boolean> {
  return ((await target.query(`SELECT 1 FROM pg_class WHERE relname = 'awsdms_apply_exceptions' AND relkind = 'r'`)).rowCount ?? 0) > 0;
}

/** The exceptions recorded after `after` (an error_time; '-infinity' for all), oldest first. */
export async function applyExceptionsAfter(target: pg.Client, after: string, limit: number): Promise<ApplyException[]> {
  if (!(await hasApplyExceptions(target))) return [];
  const r = await target.query<ApplyException>(
    `SELECT task_name AS task, table_owner AS owner, table_name AS name, error_time::text AS at, error FROM awsdms_apply_exceptions WHERE error_time > $1::timestamp ORDER BY error_time LIMIT $2`,
    [after, limit],
  );
  return r.rows;
}

/** The newest exception's time, or undefined when there is none. */
export async function latestApplyException(target: pg.Client): Promise<string | undefined> {
  if (!(await hasApplyExceptions(target))) return undefined;
  const r = await target.query<{ at: string | null }>(`SELECT max(error_time)::text AS at FROM awsdms_apply_exceptions`);
  return r.rows[0]?.at ?? undefined;
}

/** Every exception row with its statement, newest first (the failure bundle). */
export async function recentApplyExceptions(target: pg.Client, limit: number): Promise<pg.QueryResultRow[]> {
  if (!(await hasApplyExceptions(target))) return [];
  return (await target.query(`SELECT task_name, table_owner, table_name, error_time::text, statement, error FROM awsdms_apply_exceptions ORDER BY error_time DESC LIMIT $1`, [limit])).rows;
}
