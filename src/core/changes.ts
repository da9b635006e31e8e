/**
 * What this run has changed on either server, in the order it happened. The CLI contract promises
 * that exit 2 (bad input) and exit 3 (a gate refused) mean "nothing was changed"; every function
 * that creates or alters something on a server notes it here first, and the one place that turns
 * an error into an exit code (describeFailure in errors.ts) reads it, so the promise cannot be
 * broken by a check that runs too late: such a refusal is reported as a failure (exit 1) naming
 * what had been changed. One run per process (CLI, action); `resetChanges` starts a new one.
 */
const made: string[] = [];

/** Record that something was created or altered on a server (say which server and what). */
export function noteChange(what: string): void {
  if (!made.includes(what)) made.push(what);
}

export function changesMade(): readonly string[] {
  return made;
}

export function resetChanges(): void {
  made.length = 0;
}
