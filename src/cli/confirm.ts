import { createInterface } from 'node:readline/promises';
import { gateRefused } from '../core/errors.js';

/**
 * Confirmation of the destructive commands (cutover, rollback, teardown, full-load --restart,
 * cdc restart), the way the GitHub workflow's environment asks a reviewer: on a terminal the
 * operator types the migration's name — a name, not "y", so that a command recalled from the
 * shell history against the wrong plan stops. `--yes` skips the question; without a terminal
 * nothing is asked (CI and the Actions run as before).
 */
export interface Asker {
  ask?: (question: string) => Promise<string>;
}

export async function confirmDestructive(io: Asker, options: { yes?: boolean }, migration: string, what: string): Promise<void> {
  if (options.yes || !io.ask) return;
  const answer = await io.ask(`pgshift: ${what}.\nType the migration name (${migration}) to go on, anything else stops: `);
  if (answer.trim() !== migration) {
    throw gateRefused('confirm.declined', `not confirmed (the answer was not ${migration}): nothing was changed`, `type ${migration} at the question, or pass --yes`);
  }
}

/** A question on the terminal, when stdin and stderr are one; undefined otherwise. */
export function terminalAsk(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): ((question: string) => Promise<string>) | undefined {
  if (!input.isTTY || !output.isTTY) return undefined;
  return async (question) => {
    const rl = createInterface({ input, output, terminal: true });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  };
}
