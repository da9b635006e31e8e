import type pg from 'pg';
import { displayName, qualify, type QualifiedName } from '../core/ident.js';

/**
 * Materialized views come from pg_dump without their rows; the ones populated on the source are
 * refreshed on the target after the load. One that fails (a privilege or a function missing on
 * the target, a view over another view not yet refreshed) is reported by name with its error and
 * the others still refreshed: the load's rows are never lost to it. A view over another view is
 * retried after the rest, in passes, while a pass makes progress.
 */
export interface MatviewRefresh {
  refreshed: string[];
  failed: Array<{ view: string; error: string }>;
}

export async function populatedMatviews(c: pg.Client): Promise<QualifiedName[]> {
  const r = await c.query<{ schema: string; name: string }>(
    `SELECT schemaname AS schema, matviewname AS name FROM pg_matviews WHERE ispopulated AND schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  return r.rows;
}

export async function refreshMatviews(target: pg.Client, views: QualifiedName[], onRefreshed?: (view: string) => void): Promise<MatviewRefresh> {
  const refreshed: string[] = [];
  let pending = views;
  let errors = new Map<string, string>();
  while (pending.length) {
    const next: QualifiedName[] = [];
    errors = new Map();
    for (const mv of pending) {
      try {
        await target.query(`REFRESH MATERIALIZED VIEW ${qualify(mv)}`);
        refreshed.push(displayName(mv));
        onRefreshed?.(displayName(mv));
      } catch (err) {
        next.push(mv);
        errors.set(displayName(mv), err instanceof Error ? err.message : String(err));
      }
    }
    if (next.length === pending.length) break;
    pending = next;
  }
  return { refreshed, failed: [...errors].map(([view, error]) => ({ view, error })) };
}
