// Runs a TypeScript benchmark: `node bench/run.mjs assess [args…]` bundles bench/<name>.ts with
// esbuild (same settings as the product bundles) and executes it.
import { build } from 'esbuild';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
if (!name) {
  console.error('usage: node bench/run.mjs <assess|…> [args]');
  process.exit(2);
}
const out = path.join(os.tmpdir(), `pgshift-bench-${name}-${process.pid}.mjs`);
await build({
  entryPoints: [path.join(root, 'bench', `${name}.ts`)],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  external: ['pg-native', 'pg13', 'pg17'],
  logLevel: 'warning',
});
process.argv.splice(2, 1);
process.chdir(root);
await import(pathToFileURL(out).href);
