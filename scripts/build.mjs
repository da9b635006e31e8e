// Bundles the CLI and every action with esbuild. `--check` rebuilds into a temporary directory and
// fails when a committed bundle differs (a stale dist/ would run old code on the runners).
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

export const entries = [
  { in: 'src/cli/index.ts', out: 'dist/cli/index.js' },
  ...readdirSync(path.join(root, 'src/actions'))
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
    .map((f) => ({ in: `src/actions/${f}`, out: `actions/${f.replace(/\.ts$/, '')}/dist/index.js` })),
];

const outRoot = check ? mkdtempSync(path.join(os.tmpdir(), 'pgshift-build-')) : root;

await Promise.all(
  entries.map((e) =>
    build({
      entryPoints: [path.join(root, e.in)],
      outfile: path.join(outRoot, e.out),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      // pg and parts of the AWS SDK are CommonJS and call require(); give the ESM bundle one.
      banner: { js: "import { createRequire as __pgshiftCreateRequire } from 'node:module'; const require = __pgshiftCreateRequire(import.meta.url);" },
      // pg's optional native binding is never used.
      external: ['pg-native'],
      legalComments: 'none',
      logLevel: 'warning',
    }),
  ),
);

if (check) {
  const stale = entries.filter((e) => {
    const committed = path.join(root, e.out);
    return !existsSync(committed) || readFileSync(committed, 'utf8') !== readFileSync(path.join(outRoot, e.out), 'utf8');
  });
  rmSync(outRoot, { recursive: true, force: true });
  if (stale.length) {
    console.error(`stale bundle(s): ${stale.map((e) => e.out).join(', ')} — run npm run build and commit the result`);
    process.exit(1);
  }
  console.log(`${entries.length} bundle(s) up to date`);
} else {
  console.log(`built ${entries.map((e) => e.out).join(', ')}`);
}
