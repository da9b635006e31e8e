/**
 * LOB limits in the DMS sense (pure). DMS converts LOBs to a binary form before sizing them, so
 * "to specify the largest LOB you need to replicate, multiply its size by three"; limited LOB mode
 * truncates anything above the limit; LobMaxSize above 100 MB is not recommended, so beyond that a
 * table must use unlimited (full) LOB mode, which never truncates.
 */
export const MAX_LIMITED_LOB_KB = 102400;

export interface LobAdvice {
  maxBytes: number;
  /** bulk-max-size to use for this table in limited mode (KB, 3× the largest value). */
  limitKb: number;
  mode: 'limited' | 'unlimited';
  /** Whether the task-level limit would truncate this table's largest value. */
  truncatedAtTaskLimit: boolean;
}

export function lobAdvice(maxBytes: number, taskLimitKb: number): LobAdvice {
  const limitKb = Math.max(1, Math.ceil((maxBytes * 3) / 1024));
  return {
    maxBytes,
    limitKb,
    mode: limitKb > MAX_LIMITED_LOB_KB ? 'unlimited' : 'limited',
    truncatedAtTaskLimit: limitKb > taskLimitKb,
  };
}
