// `npm test`: type-check, then every test (unit, integration on real servers, e2e), then one plain
// closing line "N passed, N failed" that any CI log reader understands.
// The tests run on the Node.js 24 binary of the `node24` devDependency — the runtime GitHub runs
// the actions on — whatever Node runs npm (`--current-node` runs them on that one instead).
// Arguments after `--` go to vitest (`npm test -- test/unit`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const current = args.includes('--current-node');
const extra = args.filter((a) => a !== '--current-node' && a !== '--node24');
const node = current ? process.execPath : path.join(root, 'node_modules/node24/bin/node');
if (!existsSync(node)) {
  console.error(`${node} is missing: run npm ci first`);
  process.exit(2);
}
// Children that start `node` themselves (bin scripts, the CLI in e2e tests) get the same runtime.
const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` };
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`runtime: Node.js ${version} (${node})`);
const run = (script, scriptArgs) => spawnSync(node, [path.join(root, script), ...scriptArgs], { stdio: 'inherit', env, cwd: root });

const tsc = run('node_modules/typescript/bin/tsc', ['--noEmit']);
if (tsc.status !== 0) {
  console.log('typecheck: 0 passed, 1 failed');
  process.exit(1);
}
const report = path.join(os.tmpdir(), `pgshift-vitest-${process.pid}.json`);
const tests = run('node_modules/vitest/vitest.mjs', ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra]);
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  rmSync(report);
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);
}
process.exit(tests.status ?? 1);
