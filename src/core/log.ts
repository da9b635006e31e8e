import { redact } from './secrets.js';

/**
 * The logger every phase writes to. Lines are redacted before they leave the process. The CLI
 * sends logs to stderr (stdout is reserved for --json results); the Actions entry forwards them to
 * @actions/core so that warnings become annotations.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Progress lines: a bar on a terminal, a periodic line elsewhere. */
  progress(message: string): void;
  /**
   * Only on a terminal: lines redrawn in place (progress bars); an empty list clears them.
   * Absent elsewhere, where callers fall back to progress lines.
   */
  board?(lines: string[]): void;
}

export type Sink = (level: Level, line: string) => void;

export function createLogger(sink: Sink, options: { debug?: boolean } = {}): Logger {
  const emit = (level: Level, message: string) => sink(level, redact(message));
  return {
    debug: (m) => {
      if (options.debug) emit('debug', m);
    },
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    progress: (m) => emit('info', m),
  };
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  progress() {},
};
