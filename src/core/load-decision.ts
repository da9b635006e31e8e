/**
 * What a full-load run does with one group, given what an earlier run left in the journal. A pure
 * rule, so that every case can be enumerated by a test:
 *
 *   no record                                   fresh     objects, slot, snapshot, copy
 *   loaded, streaming, … (not in flight)        skip      nothing to do (unless --restart)
 *   preparing or loading, paused-replica plan   continue  copy what is left at the replica's LSN
 *                                                         (pauseOrAdoptReplica checks the LSN)
 *   preparing, or loading with nothing copied   reset     drop what was made, start clean
 *   loading, exported snapshot gone, rows kept  resume    keep what was committed at the group's
 *                                                         snapshot; the rest is carried by a resume
 *                                                         stream from a newer snapshot (bridge)
 *   loading, exported, paused-replica plan      refuse    a resume stream takes an exported snapshot
 *   loading, exported, engine cannot bridge     refuse    (canBridge false: a DMS task of the group exists and
 *                                                         has applied changes a bridge cannot take back)
 *   loading from a replica, plan now exported   refuse    its rows are at the replica's LSN, which
 *                                                         this plan cannot take again
 *   any, with --restart                         reset     drop the group's stream, load again
 *   cut over or rolled back, with --restart     refuse    the target is the live database now:
 *                                                         reloading would clear the application's rows
 */
export type GroupLoadAction = 'fresh' | 'skip' | 'reset' | 'continue' | 'resume' | 'refuse-interrupted' | 'refuse-cut-over';

export interface PriorStream {
  state: string;
  snapshotMode: string;
}

export interface LoadDecisionOptions {
  restart: boolean;
  pausedReplicaPlan: boolean;
  /** Whether the journal holds a finished table or part of the group (committed at its snapshot). */
  copied?: boolean;
  /**
   * Whether the group's tables can be carried from a second, newer slot (default true): always on
   * native (the bridge drains), on DMS while no task of the group exists (nothing was applied).
   */
  canBridge?: boolean;
}

export function decideGroupLoad(prior: PriorStream | undefined, options: LoadDecisionOptions): GroupLoadAction {
  if (!prior) return 'fresh';
  if (options.restart) return prior.state === 'cut-over' || prior.state === 'rolled-back' ? 'refuse-cut-over' : 'reset';
  const inFlight = prior.state === 'preparing' || prior.state === 'loading';
  if (!inFlight) return 'skip';
  if (options.pausedReplicaPlan && prior.snapshotMode === 'paused-replica') return 'continue';
  if (prior.state === 'preparing') return 'reset';
  // Nothing to keep: a new slot and snapshot cost less than a bridge.
  if (!options.copied) return 'reset';
  if (prior.snapshotMode === 'exported' && !options.pausedReplicaPlan && options.canBridge !== false) return 'resume';
  return 'refuse-interrupted';
}
