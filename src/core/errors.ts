/**
 * Typed errors. Every error pgshift reports carries a stable code, a one-line message that names
 * the object concerned, a hint for the fix, and the exit code of the CLI contract:
 *   1 failed, 2 bad input or configuration (nothing changed), 3 a gate refused (nothing changed).
 */
import { changesMade } from './changes.js';

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

/** Which server a database error came from (set by src/pg/connect.ts on every query error). */
export interface ServerTag {
  role: string;
  label: string;
}

const SERVER = Symbol('pgshift.server');

export function tagServer(err: unknown, server: ServerTag): unknown {
  if (err && typeof err === 'object' && !(SERVER in err)) Object.defineProperty(err, SERVER, { value: server, enumerable: false });
  return err;
}

export function serverOf(err: unknown): ServerTag | undefined {
  return err && typeof err === 'object' ? (err as { [SERVER]?: ServerTag })[SERVER] : undefined;
}

/** Fixes for the database errors an operator can act on, by SQLSTATE (or its class). */
function hintForSqlState(code: string | undefined, role: string): string {
  if (!code) return `check the ${role} server and its log, then run the same command again: it continues from where it stopped`;
  if (code === '42501') return `grant the missing privilege to the role pgshift connects to the ${role} as (pgshift assess lists what each phase needs), then run the same command again`;
  if (code === '53100') return `free disk space on the ${role}, then run the same command again`;
  if (code === '53200' || code === '53400') return `raise the ${role}'s limit named in the message, then run the same command again`;
  if (code === '57014') return 'the statement was cancelled (a timeout or an operator); run the same command again';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return `the connection to the ${role} was lost: check the server, then run the same command again (it continues)`;
  return `check the ${role} server log around this time, then run the same command again: it continues from where it stopped`;
}

export interface FailureReport {
  exitCode: ExitCode;
  code: string;
  message: string;
  hint?: string;
  /** The single line shown to people. */
  line: string;
}

/**
 * The one place that turns any error into the CLI contract's exit code and one-line message:
 *   - a pgshift error keeps its code, message and hint;
 *   - a database error names its server (source/target host:port/db), the SQLSTATE and a fix;
 *   - anything else is an unexpected error (exit 1);
 *   - exit 2 and 3 promise that nothing was changed: if this run changed something before the
 *     refusal, the refusal is reported as a failure (exit 1) that says what was changed.
 */
export function describeFailure(err: unknown): FailureReport {
  let report: FailureReport;
  if (isPgshiftError(err)) {
    report = { exitCode: err.exitCode, code: err.code, message: err.message, hint: err.hint, line: err.oneLine() };
  } else {
    const e = err as { message?: string; code?: string } | undefined;
    const text = (e?.message ?? String(err)).split('\n')[0];
    const server = serverOf(err);
    if (server) {
      const sqlState = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
      const message = `${server.role} ${server.label}: ${text}${sqlState ? ` (SQLSTATE ${sqlState})` : ''}`;
      const hint = hintForSqlState(sqlState, server.role);
      report = { exitCode: 1, code: sqlState ? `sql.${sqlState}` : 'sql.connection', message, hint, line: `${message} — ${hint}` };
    } else {
      report = { exitCode: 1, code: 'internal', message: text, line: `unexpected error: ${text}` };
    }
  }
  const changed = changesMade();
  if ((report.exitCode === 2 || report.exitCode === 3) && changed.length > 0) {
    const note = ` (this run had already changed: ${changed.join('; ')})`;
    report = { ...report, exitCode: 1, message: report.message + note, line: report.line + note };
  }
  return report;
}
