import { main } from '../../src/cli/main.js';

/**
 * Run the CLI in-process with captured output (the bundled binary is exercised in e2e tests).
 * Without `ask` it runs as without a terminal; with it, as on one, answering its questions.
 */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  terminal: { ask?: (question: string) => Promise<string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'pgshift', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env,
    isTTY: false,
    ask: terminal.ask,
  });
  return { code, stdout, stderr };
}
