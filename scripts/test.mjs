// `npm test`: type-check, then every test (unit, integration on real servers, e2e), then one plain
// closing line "N passed, N failed" that any CI log reader understands.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const extra = process.argv.slice(2);
const tsc = spawnSync('npx', ['--no-install', 'tsc', '--noEmit'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.log('typecheck: 0 passed, 1 failed');
  process.exit(1);
}
const report = path.join(os.tmpdir(), `pgshift-vitest-${process.pid}.json`);
const run = spawnSync('npx', ['--no-install', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra], { stdio: 'inherit' });
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  rmSync(report);
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);
}
process.exit(run.status ?? 1);
