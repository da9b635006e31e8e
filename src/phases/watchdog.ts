import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../core/log.js';

/**
 * The cut-over's watchdog: a small process of its own (its own session and process group, so that
 * a SIGKILL of pgshift's whole process group, an OOM kill or a lost terminal leaves it running),
 * started just before the window. It holds one end of a pipe whose other end is pgshift's: when
 * pgshift ends without having said "done" — killed at any instant — the pipe closes and the
 * watchdog runs the recovery command (`pgshift cutover --recover`, or the cutover action with its
 * `recover` input), which takes the cut-over lease once the dead process's sessions are gone and
 * undoes the window (not decided) or completes it (decided). What it did goes to the journal and
 * to a log file.
 *
 * It covers the death of the process, not of the machine: then the server ends the window fence by
 * itself (idle_in_transaction_session_timeout), and a paused PgBouncer waits for the next
 * `pgshift cutover` (which recovers first) — said in the README.
 */
export interface RecoveryCommand {
  /** The program and its arguments: the same pgshift, told to recover. */
  argv: string[];
  /** Environment additions (the plan's secrets come from the environment pgshift itself has). */
  env?: Record<string, string>;
}

export interface Watchdog {
  /** The window ended one way or the other, in this process: the watchdog exits without acting. */
  stand(): void;
  logFile: string;
}

// CommonJS run by `node -e`: no imports of pgshift's own, so it starts in milliseconds.
const WATCHDOG = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [command, logFile, window] = [JSON.parse(process.argv[1]), process.argv[2], process.argv[3]];
let heard = '';
process.stdin.on('data', (d) => { heard += d; });
process.stdin.on('error', () => {});
process.stdin.on('end', () => {
  if (heard.includes('stand down')) process.exit(0);
  const out = fs.openSync(logFile, 'a');
  fs.writeSync(out, new Date().toISOString() + ' pgshift exited inside the ' + window + ' window; recovering\\n');
  const child = spawn(command.argv[0], command.argv.slice(1), { stdio: ['ignore', out, out], env: { ...process.env, ...command.env } });
  child.on('exit', (code) => { fs.writeSync(out, new Date().toISOString() + ' recovery exited with ' + code + '\\n'); process.exit(code ?? 1); });
  child.on('error', (err) => { fs.writeSync(out, 'cannot start the recovery: ' + err.message + '\\n'); process.exit(1); });
});
`;

export function startWatchdog(command: RecoveryCommand, migration: string, log: Logger, window: 'cutover' | 'rollback' = 'cutover'): Watchdog {
  const logFile = path.join(os.tmpdir(), `pgshift-${migration}-${window}-recovery.log`);
  // The runner kills, at the end of a job, every process that carries its tracking id; the
  // watchdog must outlive a cancelled job long enough to recover, so it does not carry it.
  const env = { ...process.env, RUNNER_TRACKING_ID: '' };
  const child = spawn(process.execPath, ['-e', WATCHDOG, JSON.stringify(command), logFile, window], { detached: true, stdio: ['pipe', 'ignore', 'ignore'], env });
  child.on('error', (err) => log.warn(`the ${window} watchdog did not start (${err.message}): if pgshift dies inside the window, run pgshift ${window} to finish or undo it`));
  child.stdin!.on('error', () => {});
  child.unref();
  // The pipe must not keep this process alive either; it closes when this process ends.
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  log.debug(`${window} watchdog started (pid ${child.pid}); should pgshift die in the window, it recovers and logs to ${logFile}`);
  return {
    logFile,
    stand() {
      child.stdin!.end('stand down\n');
    },
  };
}
