import { PgshiftError } from './errors.js';

/**
 * SIGINT and SIGTERM (Ctrl-C, a cancelled workflow: the runner sends SIGINT, then SIGTERM) abort
 * one process-wide signal that every phase receives in its context. The phase stops its work at
 * once, leaves a state the next run continues from, and returns; a phase that does not end within
 * `graceMs` is exited with 130, and a second signal exits at once — except while a phase holds
 * `critical` work (the cut-over's undo), during which further signals are noted and ignored.
 */
const controller = new AbortController();
let installed = false;
let critical = 0;

export const interruptSignal: AbortSignal = controller.signal;

export function installInterruptHandlers(o: { graceMs?: number; onMessage?: (line: string) => void } = {}): void {
  if (installed) return;
  installed = true;
  const graceMs = o.graceMs ?? 30_000;
  const handle = (name: NodeJS.Signals) => {
    if (!controller.signal.aborted) {
      o.onMessage?.(`${name}: stopping — the next run continues from here`);
      controller.abort(new PgshiftError('interrupted', `interrupted by ${name}`, { exitCode: 1, hint: 'run the same command again: it continues from where it stopped' }));
      setTimeout(() => {
        if (critical === 0) process.exit(130);
      }, graceMs).unref();
      return;
    }
    if (critical > 0) {
      o.onMessage?.(`${name}: still undoing; pgshift ends when that is done`);
      return;
    }
    process.exit(130);
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}

/** Run work that a second signal must not cut short (it runs to its end, then the process may exit). */
export async function uninterruptible<T>(work: () => Promise<T>): Promise<T> {
  critical++;
  try {
    return await work();
  } finally {
    critical--;
  }
}
