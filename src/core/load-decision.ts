/**
 * What a full-load run does with one group, given what an earlier run left in the journal. A pure
 * rule, so that every case can be enumerated by a test:
 *
 *   no record                                   fresh     objects, slot, snapshot, copy
 *   loaded, streaming, … (not in flight)        skip      nothing to do (unless --restart)
 *   preparing or loading, paused-replica plan   continue  copy what is left at the replica's LSN
 *                                                         (pauseOrAdoptReplica checks the LSN)
 *   preparing (no row was copied yet)           reset     drop what was made, start clean
 *   loading, exported snapshot gone             refuse    its snapshot ended with that process
 *   any, with --restart                         reset     drop the group's stream, load again
 *   cut over or rolled back, with --restart     refuse    the target is the live database now:
 *                                                         reloading would clear the application's rows
 */
export type GroupLoadAction = 'fresh' | 'skip' | 'reset' | 'continue' | 'refuse-interrupted' | 'refuse-cut-over';

export interface PriorStream {
  state: string;
  snapshotMode: string;
}

export function decideGroupLoad(prior: PriorStream | undefined, options: { restart: boolean; pausedReplicaPlan: boolean }): GroupLoadAction {
  if (!prior) return 'fresh';
  if (options.restart) return prior.state === 'cut-over' || prior.state === 'rolled-back' ? 'refuse-cut-over' : 'reset';
  const inFlight = prior.state === 'preparing' || prior.state === 'loading';
  if (!inFlight) return 'skip';
  if (options.pausedReplicaPlan && prior.snapshotMode === 'paused-replica') return 'continue';
  if (prior.state === 'preparing') return 'reset';
  return 'refuse-interrupted';
}
