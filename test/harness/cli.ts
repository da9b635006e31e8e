import { main } from '../../src/cli/main.js';

/** Run the CLI in-process with captured output (the bundled binary is exercised in e2e tests). */
export async function runCli(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'pgshift', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env,
    isTTY: false,
  });
  return { code, stdout, stderr };
}
