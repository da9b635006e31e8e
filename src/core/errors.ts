/**
 * Typed errors. Every error pgshift reports carries a stable code, a one-line message that names
 * the object concerned, a hint for the fix, and the exit code of the CLI contract:
 *   1 failed, 2 bad input or configuration (nothing changed), 3 a gate refused (nothing changed).
 */
export type ExitCode = 0 | 1 | 2 | 3;

export class PgshiftError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, options: { hint?: string; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PgshiftError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }

  /** The single line shown to people: message, then the fix. */
  oneLine(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/** Bad input or configuration: nothing was changed. Exit 2. */
export function inputError(code: string, message: string, hint?: string, cause?: unknown): PgshiftError {
  return new PgshiftError(code, message, { hint, exitCode: 2, cause });
}

/** A gate refused: a precondition is not met, nothing was changed. Exit 3. */
export function gateRefused(code: string, message: string, hint?: string): PgshiftError {
  return new PgshiftError(code, message, { hint, exitCode: 3 });
}

/** The work started and failed. Exit 1. */
export function failure(code: string, message: string, hint?: string, cause?: unknown): PgshiftError {
  return new PgshiftError(code, message, { hint, exitCode: 1, cause });
}

export function isPgshiftError(err: unknown): err is PgshiftError {
  return err instanceof PgshiftError;
}

/** A numeric command-line or action input, refused (exit 2) when it is not a number of at least `min`. */
export function numberInput(value: string, name: string, min = 0): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw inputError(`input.${name.replace(/^-+/, '')}`, `${name} must be a number of at least ${min}, not ${JSON.stringify(value)}`, `pass ${name} with a number, e.g. ${name} ${Math.max(min, 5)}`);
  }
  return n;
}
