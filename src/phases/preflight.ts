import { keywordsUnknownTo, parseConninfo, parseServerUrl, toConninfo } from '../config/url.js';
import { gateRefused, isPgshiftError } from '../core/errors.js';
import { displayName } from '../core/ident.js';
import { IDENTITY_PROBLEM_TEXT, planPublishing } from '../core/replica-identity.js';
import { currentRole, type TableInfo } from '../pg/catalog.js';
import { connect, endpointFromConninfo, majorOf } from '../pg/connect.js';
import { readPreconditions } from './assess.js';
import type { PhaseContext, ResolvedGroup, Sessions } from './context.js';

/**
 * The checks a phase runs before it creates anything on either server (exit 3, nothing changed):
 * the blockers assess reports for the servers and for the tables this run will publish, the
 * tables whose writes publishing would break, and, for the native engine, everything the target's
 * subscription will need (privilege, the conninfo's keywords, a working replication route) — so
 * that nothing fails after the slot was made and the copy done, and no CREATE SUBSCRIPTION fails
 * with its password in the target's log.
 */
export interface LoadPreflight {
  /** Tables the plan consents to have set to REPLICA IDENTITY FULL before they are published. */
  setReplicaIdentityFull: TableInfo[];
}

export async function preflightLoad(ctx: PhaseContext, s: Sessions, groups: ResolvedGroup[], streamsNeeded: number): Promise<LoadPreflight> {
  const pre = await readPreconditions(ctx, s, { streamsNeeded });
  const loaded = new Set(groups.flatMap((g) => g.tables.map(displayName)));
  // Table findings count for the tables this run loads; the other groups' tables wait for their run.
  const blockers = pre.findings.filter((f) => f.severity === 'blocker' && (!f.code.startsWith('table.') || loaded.has(f.object)));
  if (blockers.length) {
    const [first] = blockers;
    throw gateRefused(first.code, `${first.object}: ${first.message}${blockers.length > 1 ? ` (and ${blockers.length - 1} more blocker(s): pgshift assess lists them)` : ''}`, first.fix);
  }
  // assess reports these too; checked again here on the same rule in case the plan changed since.
  const setReplicaIdentityFull = requirePublishable(ctx, groups.flatMap((g) => g.tables), ctx.plan.cdc.replicaIdentityFull);
  await requireReplicationRoute(ctx);
  if (ctx.plan.cdc.engine === 'native') await preflightSubscription(ctx, s);
  return { setReplicaIdentityFull };
}

/**
 * Refused (exit 3) before a table is published whose UPDATE and DELETE would then fail on the
 * source (no key, no usable replica identity), unless `consent` (cdc.replicaIdentityFull, where the
 * phase can act on it) lets pgshift set REPLICA IDENTITY FULL first: those are returned.
 */
export function requirePublishable(ctx: PhaseContext, tables: TableInfo[], consent?: string[]): TableInfo[] {
  const publishing = planPublishing(
    tables.map((t) => ({ ...t, hasPrimaryKey: t.primaryKey.length > 0, identityIndexValid: t.replicaIdentityIndex })),
    ctx.plan.cdc.engine,
    consent ?? [],
  );
  if (publishing.refused.length) {
    const names = publishing.refused.map((r) => `${displayName(r.table)} (${IDENTITY_PROBLEM_TEXT[r.problem]})`);
    throw gateRefused(
      'table.no-replica-identity',
      `publishing ${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''} would make every UPDATE and DELETE on ${names.length > 1 ? 'them' : 'it'} fail on the source`,
      consent ? 'add a primary key or ALTER TABLE … REPLICA IDENTITY FULL, or list the tables under cdc.replicaIdentityFull for pgshift to set it' : 'add a primary key or ALTER TABLE … REPLICA IDENTITY FULL on the source first',
    );
  }
  return publishing.setFull;
}

/** A replication connection to the source works from here (the slots are made on one). */
export async function requireReplicationRoute(ctx: PhaseContext): Promise<void> {
  try {
    const c = await connect(ctx.source, { replication: true, applicationName: 'pgshift preflight' });
    await c.end().catch(() => {});
  } catch (err) {
    throw gateRefused(
      'source.replication-connection',
      `source ${ctx.source.label}: a replication connection is refused: ${isPgshiftError(err) ? err.message : (err as Error).message}`,
      'allow replication connections for this user in pg_hba.conf (a "host replication" or "host all" line with the database; on RDS: rds_replication) and reload',
    );
  }
}

/** The conninfo the target's subscriptions use to reach the source. */
export function subscriptionConninfo(ctx: PhaseContext): string {
  return ctx.plan.source.subscriptionConninfo ?? toConninfo(parseServerUrl(ctx.plan.source.url), { withPassword: true });
}

/**
 * Everything CREATE SUBSCRIPTION needs, checked from here: the statement carries the password, and
 * a server logs a failing statement with its text.
 */
export async function preflightSubscription(ctx: PhaseContext, s: Sessions): Promise<void> {
  const fields = parseConninfo(subscriptionConninfo(ctx));
  const targetMajor = majorOf(s.targetVersion);
  const unknown = keywordsUnknownTo(Object.keys(fields), targetMajor);
  if (unknown.length) {
    throw gateRefused('subscription.conninfo', `the subscription's connection parameter ${unknown[0]} is unknown to the target's PostgreSQL ${targetMajor}`, `remove ${unknown[0]} from ${ctx.plan.source.subscriptionConninfo ? 'source.subscriptionConninfo' : 'source.url'}`);
  }
  const role = await currentRole(s.target);
  if (targetMajor >= 16 && !role.superuser && !fields.password) {
    throw gateRefused('subscription.password', `target ${ctx.target.label}: a subscription owned by a role that is not superuser needs a password in its connection (PostgreSQL 16+)`, 'put the password in source.url (or in source.subscriptionConninfo)');
  }
  if (!ctx.plan.source.subscriptionConninfo) return;
  // Another route than ours: try it; when it fails from here it may still work from the target.
  const ep = endpointFromConninfo('source', fields, parseServerUrl(ctx.plan.source.url));
  try {
    const c = await connect(ep, { replication: true, applicationName: 'pgshift preflight' });
    await c.end().catch(() => {});
  } catch (err) {
    ctx.log.warn(`source.subscriptionConninfo: a replication connection to ${ep.label} fails from this machine (${isPgshiftError(err) ? err.message : (err as Error).message}); the target must reach the source that way`);
  }
}
