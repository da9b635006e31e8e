import { formatBytes } from '../config/size.js';
import { displayName } from '../core/ident.js';
import { majorOf } from '../pg/connect.js';
import { listSequences, setting } from '../pg/catalog.js';
import { findTool } from '../pg/tools.js';
import { openSessions, resolveGroups, type PhaseContext } from './context.js';

/**
 * Assess: read both servers and report what would block or endanger the migration, before the
 * first byte moves. Each finding names the object, why it matters and the fix.
 */
export type Severity = 'blocker' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  code: string;
  object: string;
  message: string;
  fix?: string;
}

export interface AssessResult {
  source: { label: string; version: string; major: number };
  target: { label: string; version: string; major: number };
  groups: Array<{ name: string; tables: number; bytes: number; rowEstimate: number }>;
  sequences: number;
  findings: Finding[];
  blockers: number;
}

export async function runAssess(ctx: PhaseContext): Promise<AssessResult> {
  const s = await openSessions(ctx);
  try {
    const findings: Finding[] = [];
    const add = (f: Finding) => findings.push(f);
    const sourceMajor = majorOf(s.sourceVersion);
    const targetMajor = majorOf(s.targetVersion);
    const [sv, tv] = await Promise.all([setting(s.source, 'server_version'), setting(s.target, 'server_version')]);

    if (targetMajor < sourceMajor) {
      add({ severity: 'blocker', code: 'target.version', object: ctx.target.label, message: `target PostgreSQL ${targetMajor} is older than source ${sourceMajor}`, fix: 'use a target of the same or a newer major' });
    }
    const walLevel = await setting(s.source, 'wal_level');
    if (walLevel !== 'logical') {
      add({ severity: 'blocker', code: 'source.wal_level', object: ctx.source.label, message: `wal_level is ${walLevel}`, fix: 'set wal_level = logical (RDS: rds.logical_replication = 1) and restart' });
    }
    const slots = await s.source.query<{ max: string; used: string; senders: string }>(
      `SELECT current_setting('max_replication_slots') AS max, (SELECT count(*) FROM pg_replication_slots)::text AS used, current_setting('max_wal_senders') AS senders`,
    );
    const freeSlots = Number(slots.rows[0].max) - Number(slots.rows[0].used);
    if (freeSlots < ctx.plan.groups.length) {
      add({ severity: 'blocker', code: 'source.slots', object: ctx.source.label, message: `${ctx.plan.groups.length} slot(s) needed, ${freeSlots} free`, fix: 'raise max_replication_slots or drop unused slots' });
    }
    try {
      const dump = await findTool('pg_dump', ctx.plan.fullLoad.pgBinDir);
      if (dump.major < sourceMajor) {
        add({ severity: 'blocker', code: 'tool.pg_dump', object: dump.path, message: `pg_dump ${dump.major} cannot dump a PostgreSQL ${sourceMajor} source`, fix: `install PostgreSQL ${sourceMajor} client tools and set fullLoad.pgBinDir` });
      }
    } catch (err) {
      add({ severity: 'blocker', code: 'tool.pg_dump', object: 'pg_dump', message: (err as Error).message, fix: 'install the PostgreSQL client tools' });
    }

    const groups = await resolveGroups(ctx, s.source, s.sourceVersion);
    for (const g of groups) {
      for (const t of g.tables) {
        if (t.primaryKey.length === 0 && t.replicaIdentity !== 'f' && t.replicaIdentity !== 'i') {
          add({
            severity: 'blocker',
            code: 'table.no-key',
            object: displayName(t),
            message: 'no primary key and no replica identity: UPDATE and DELETE on the source would fail once it is published',
            fix: `add a primary key, or ALTER TABLE ${displayName(t)} REPLICA IDENTITY FULL`,
          });
        }
      }
    }
    const sequences = await listSequences(s.source);
    const target = await s.target.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema','pgshift')`);
    if (target.rows[0].n > 0) {
      add({ severity: 'info', code: 'target.not-empty', object: ctx.target.label, message: `the target database already holds ${target.rows[0].n} table(s)`, fix: 'full-load needs an empty database unless it loaded these itself' });
    }
    return {
      source: { label: ctx.source.label, version: sv ?? '', major: sourceMajor },
      target: { label: ctx.target.label, version: tv ?? '', major: targetMajor },
      groups: groups.map((g) => ({
        name: g.name,
        tables: g.tables.length,
        bytes: g.tables.reduce((n, t) => n + t.bytes, 0),
        rowEstimate: g.tables.reduce((n, t) => n + t.rowEstimate, 0),
      })),
      sequences: sequences.length,
      findings,
      blockers: findings.filter((f) => f.severity === 'blocker').length,
    };
  } finally {
    await s.close();
  }
}

export function summarizeGroups(r: AssessResult): string {
  return r.groups.map((g) => `${g.name}: ${g.tables} tables, ${formatBytes(g.bytes)}`).join('; ');
}
