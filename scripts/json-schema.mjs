// Writes schema/migration.schema.json from the zod schema (`npm run schema`); `--check` fails
// when the committed file is stale.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = path.join(os.tmpdir(), `pgshift-schema-${process.pid}.mjs`);
await build({ entryPoints: [path.join(root, 'src/config/json-schema.ts')], bundle: true, platform: 'node', format: 'esm', outfile: tmp, logLevel: 'warning' });
const { planJsonSchemaText } = await import(pathToFileURL(tmp).href);
const file = path.join(root, 'schema/migration.schema.json');
const text = planJsonSchemaText();
if (process.argv.includes('--check')) {
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) {
    console.error('schema/migration.schema.json is stale: run npm run schema and commit it');
    process.exit(1);
  }
  console.log('schema/migration.schema.json is up to date');
} else {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${path.relative(root, file)}`);
}
