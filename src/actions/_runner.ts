import { writeFileSync } from 'node:fs';
import * as core from '@actions/core';
import { loadPlanFile } from '../config/load.js';
import { describeFailure, type ExitCode } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { onSecretRegistered, redact, redactDeep } from '../core/secrets.js';
import { phaseContext, type PhaseContext } from '../phases/context.js';
import { installInterruptHandlers, interruptSignal } from '../core/interrupt.js';

/**
 * What every action shares: read the plan named by the `config` input (secrets come from the
 * step's environment through ${VAR}), mask every secret in the runner's log, forward warnings as
 * annotations, run the phase, write the job summary and the outputs. Outputs carry names, LSNs
 * and figures — never a connection string, which the runner would drop between jobs anyway.
 */
export interface ActionOutcome {
  markdown: string;
  outputs: Record<string, string | number | boolean>;
  exitCode?: ExitCode;
  /** The phase's whole result, written to the `report-file` input's path (for upload-artifact). */
  report?: unknown;
}

export async function runAction(
  name: string,
  phase: (ctx: PhaseContext) => Promise<ActionOutcome>,
  /** More for the job summary when the phase fails (a full load: where it stands, what a re-run resumes). */
  onFailure?: (ctx: PhaseContext) => Promise<string>,
): Promise<void> {
  // A cancelled workflow: the runner sends SIGINT, then SIGTERM; the phase stops and leaves a resumable state.
  installInterruptHandlers({ onMessage: (line) => core.warning(line) });
  onSecretRegistered((secret) => core.setSecret(secret));
  const log = createLogger(
    (level, line) => {
      if (level === 'warn') core.warning(line);
      else if (level === 'error') core.error(line);
      else if (level === 'debug') core.debug(line);
      else core.info(line);
    },
    { debug: core.isDebug() },
  );
  let ctx: PhaseContext | undefined;
  try {
    const configPath = core.getInput('config') || 'migration.yml';
    const { plan } = loadPlanFile(configPath, process.env);
    ctx = phaseContext(plan, log, interruptSignal);
    const outcome = await phase(ctx);
    for (const [key, value] of Object.entries(outcome.outputs)) core.setOutput(key, redact(String(value)));
    core.setOutput('exit-code', String(outcome.exitCode ?? 0));
    await core.summary.addRaw(redact(outcome.markdown)).write();
    const reportFile = core.getInput('report-file');
    if (reportFile) writeFileSync(reportFile, `${JSON.stringify(redactDeep(outcome.report ?? outcome.outputs), null, 2)}\n`);
    if (outcome.exitCode) core.setFailed(`pgshift ${name}: exit ${outcome.exitCode} (see the job summary)`);
  } catch (err) {
    const { exitCode, line: message } = describeFailure(err);
    core.setOutput('exit-code', String(exitCode));
    const more = ctx && onFailure && exitCode === 1 ? await onFailure(ctx).catch(() => '') : '';
    await core.summary
      .addRaw(`### pgshift ${name} — ${exitCode === 3 ? 'refused' : exitCode === 2 ? 'bad input' : 'failed'}\n\n${redact(message)}\n${more ? `\n${redact(more)}` : ''}`)
      .write()
      .catch(() => {});
    core.setFailed(redact(message));
  }
}

export function json(value: unknown): string {
  return JSON.stringify(redactDeep(value));
}

/** A boolean input; empty means false (the runner fills defaults from action.yml, tests may not). */
export function booleanInput(name: string): boolean {
  return core.getInput(name) === '' ? false : core.getBooleanInput(name);
}
