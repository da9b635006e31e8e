import { writeFileSync } from 'node:fs';
import type { Journal } from '../journal/journal.js';
import type { PhaseContext } from './context.js';

/**
 * A full restart first preserves the failure state as JSON — what an engineer needs to understand
 * what went wrong, uploaded by the workflow as an artifact: the journal's whole content plus the
 * engine's own state (the last status; for DMS the tasks, their statistics, the apply exceptions).
 * Secrets never reach it: the journal stores none and the engine state carries names only.
 */
export async function writeFailureBundle(ctx: PhaseContext, journal: Journal, file: string | undefined, engineState: Record<string, unknown>): Promise<string> {
  const path = file ?? `pgshift-${ctx.plan.name}-failure-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  const bundle = { migration: ctx.plan.name, takenAt: new Date().toISOString(), ...(await journal.dump()), ...engineState };
  writeFileSync(path, `${JSON.stringify(bundle, null, 2)}\n`);
  ctx.log.info(`failure state preserved in ${path}`);
  return path;
}
