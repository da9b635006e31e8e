/**
 * The cut-over's write-ahead record and the rules that read it. Before pgshift does anything to
 * the servers or the pooler inside the window, it journals that it is about to (an intent); the
 * decision to switch is one journal write. Whoever finds the record of a cut-over whose process is
 * gone — the watchdog, a re-run of `pgshift cutover` — knows from it alone what to do:
 *
 *   not decided  undo what may have been done: RESUME the pooler if PAUSE was sent, turn the
 *                forward stream back on if it was stopped, drop reverse replication if it was
 *                started. The window fence needs nothing: the server ended it with the session.
 *   decided      complete it: seal the source, stop the forward stream, repoint and RESUME the
 *                pooler, repoint through AWS — each step idempotent — and record it done.
 *
 * The decision is taken only while the window fence is proven held (see WindowFence.requireHeld),
 * and nothing after it can make a write reach the source: the seal comes before any repointing,
 * and the fence is released only after the seal.
 */
export type CutoverAction =
  | 'pause-pooler'
  | 'lock-tables'
  | 'stop-forward'
  | 'start-reverse'
  | 'seal-source'
  | 'repoint-pooler'
  | 'resume-pooler'
  | 'repoint-aws';

export type CutoverStage = 'prepared' | 'window' | 'decided' | 'done' | 'undone';

export interface CutoverRecord<Seal = unknown, Dms = unknown> {
  stage: CutoverStage;
  /** Every action that was begun (journaled before it was sent), in order. */
  attempted: CutoverAction[];
  /** What the seal changes, read before the decision (the previous role or database settings). */
  seal?: Seal;
  /** The pooler's configuration line before the repoint, and after. */
  pooler?: { previous: string; next: string };
  /** DMS tasks asked to stop inside the window. */
  dmsStopping?: Dms[];
  /** When the window began (the write-unavailable time is measured from here). */
  windowStartedAt?: string;
}

export function isDecided(r: Pick<CutoverRecord, 'stage'>): boolean {
  return r.stage === 'decided' || r.stage === 'done';
}

/** What undoing a cut-over that was not decided takes, from what was attempted. */
export function undoActions(r: { attempted: readonly string[] }): Array<'resume-pooler' | 'restart-forward' | 'drop-reverse'> {
  const tried = new Set(r.attempted);
  const out: Array<'resume-pooler' | 'restart-forward' | 'drop-reverse'> = [];
  // RESUME whenever PAUSE may have been sent: an interrupted PAUSE can still take effect.
  if (tried.has('pause-pooler')) out.push('resume-pooler');
  if (tried.has('stop-forward')) out.push('restart-forward');
  if (tried.has('start-reverse')) out.push('drop-reverse');
  return out;
}

/** What completing a decided cut-over takes: every step after the decision, each idempotent. */
export function completeActions(o: { pooler: boolean; poolerConfig: boolean; aws: boolean }): CutoverAction[] {
  return [
    'seal-source',
    'stop-forward',
    ...(o.poolerConfig ? (['repoint-pooler'] as const) : []),
    ...(o.pooler ? (['resume-pooler'] as const) : []),
    ...(o.aws ? (['repoint-aws'] as const) : []),
  ];
}

/**
 * Rollback: the same window run backwards (phases/rollback.ts). Before the decision it pauses the
 * pooler and fences the target's tables, so undoing it is the cut-over's undo (RESUME the pooler);
 * after the decision it completes with its own steps, each idempotent.
 */
export type RollbackAction = 'pause-pooler' | 'lock-tables' | 'seal-target' | 'stop-reverse' | 'unseal-source' | 'restore-pooler' | 'resume-pooler' | 'repoint-aws';

export interface RollbackRecord<Seal = unknown> {
  stage: CutoverStage;
  attempted: RollbackAction[];
  /** What sealing the target changes, read before the window (the previous settings). */
  seal?: Seal;
  /** The cut-over's seal of the source, which the rollback lifts. */
  sourceSeal?: Seal;
  /** The pooler's configuration line before the cut-over repointed it. */
  poolerPrevious?: string;
  windowStartedAt?: string;
}

/**
 * What completing a decided rollback takes: the target sealed before anything points the
 * application back, then the reverse stream stopped and the source unsealed, then the pooler and
 * AWS pointed at the source.
 */
export function rollbackCompleteActions(o: { pooler: boolean; poolerConfig: boolean; aws: boolean }): RollbackAction[] {
  return [
    'seal-target',
    'stop-reverse',
    'unseal-source',
    ...(o.poolerConfig ? (['restore-pooler'] as const) : []),
    ...(o.pooler ? (['resume-pooler'] as const) : []),
    ...(o.aws ? (['repoint-aws'] as const) : []),
  ];
}
