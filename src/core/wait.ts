import { setTimeout as delay } from 'node:timers/promises';
import { PgshiftError } from './errors.js';

/**
 * Waiting, cancellably. Every wait in pgshift takes an AbortSignal: a budget that runs out, an
 * operator's Ctrl-C or a cancelled workflow (SIGINT/SIGTERM) ends it at once with the signal's
 * reason, instead of letting a loop run on after nobody wants its answer.
 */

/** The reason an aborted signal carries, as an error (AbortSignal.timeout gives a DOMException). */
export function abortReason(signal: AbortSignal): Error {
  const r = signal.reason as unknown;
  if (r instanceof Error && r.name !== 'TimeoutError' && r.name !== 'AbortError') return r;
  return new PgshiftError('interrupted', 'interrupted', { exitCode: 1 });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw abortReason(signal);
    throw err;
  }
}

/**
 * Ask `probe` every `everyMs` until it returns a value other than undefined, or `timeoutMs` has
 * passed (then undefined), or the signal aborts (then its reason is thrown).
 */
export async function pollUntil<T>(probe: () => Promise<T | undefined>, o: { everyMs: number; timeoutMs: number; signal?: AbortSignal }): Promise<T | undefined> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    throwIfAborted(o.signal);
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(o.everyMs, Math.max(0, deadline - Date.now())), o.signal);
  }
}

/**
 * The promise's value, or `fallback` once `ms` have passed without one — for a question whose
 * answer stops mattering (a process that must end promptly). The timer never keeps the process alive.
 */
export async function answerWithin<T>(answer: Promise<T>, ms: number, fallback: T): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([answer, delay(ms, fallback, { ref: false, signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}
