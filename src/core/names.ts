import { createHash } from 'node:crypto';

/**
 * Names of the objects pgshift creates on the servers. They are derived from the migration and
 * group names only, so that every run (and every job of a workflow matrix) finds the same objects
 * again, and they stay within PostgreSQL's 63-byte identifier limit.
 */
const MAX = 63;

function fit(name: string): string {
  if (name.length <= MAX) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX - 9)}_${hash}`;
}

export function slotName(migration: string, group: string): string {
  return fit(`pgshift_${migration}_${group}`);
}

export function publicationName(migration: string, group: string): string {
  return fit(`pgshift_${migration}_${group}`);
}

export function subscriptionName(migration: string, group: string): string {
  return fit(`pgshift_${migration}_${group}`);
}

/**
 * DMS: a group mixing tables that may and may not use batch apply runs as two tasks, and two tasks
 * cannot read one slot; the batch-apply tables get a stream of their own under this name (slot,
 * replication sets, heartbeat table), created before the group's snapshot and started at its LSN.
 */
export function batchStreamName(group: string): string {
  return `${group}_batch`;
}

/** The stream name of the n-th resync split from a group (`cdc resync`). */
export function resyncStreamName(group: string, n: number): string {
  return `${group}_r${n}`;
}

/** Whether a stream is a resync split from this group. */
export function isResyncOf(stream: string, group: string): boolean {
  return new RegExp(`^${group.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_r\\d+$`).test(stream);
}

/** One heartbeat table per group, in the control schema on both sides, published with the group. */
export function heartbeatTable(group: string): string {
  return fit(`heartbeat_${group}`);
}

/**
 * One DDL queue table per stream, in the control schema on both sides and in the stream's
 * publication: schema changes travel the stream that carries the rows they concern.
 */
export function ddlQueueTable(group: string): string {
  return fit(`ddl_${group}`);
}

/**
 * application_name of every target session of one group's load. A run that finds the group free
 * (its advisory lock not held) ends leftover sessions of that name: after a kill -9 the server may
 * still be building an index or restoring for the dead process.
 */
export function loadSessionName(migration: string, group: string): string {
  return fit(`pgshift load ${migration}/${group}`);
}

export function postDataSessionName(migration: string): string {
  return fit(`pgshift post-data ${migration}`);
}
