import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { NEXT_COMMANDS } from '../../src/local/demo.js';
import { runCli } from '../harness/cli.js';

describe('pgshift demo', () => {
  it('migrates 13 → 17 with writes flowing and proves the target equal', async () => {
    const planFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-demo-')), 'pgshift-demo.yml');
    const r = await runCli(['demo', '--json', '--scale', '0.3', '--plan-file', planFile], process.env);
    expect(r.code, r.stderr).toBe(0);
    const { ok, result } = JSON.parse(r.stdout);
    expect(ok).toBe(true);
    expect(result.source).toBe('PostgreSQL 13');
    expect(result.target).toBe('PostgreSQL 17');
    expect(result.verify).toBe('equal');
    expect(result.independentCheck.equal).toBe(true);
    expect(result.writes.committedBeforeCutover).toBeGreaterThan(0);
    expect(result.writes.committedOnTarget).toBeGreaterThan(0);
    expect(result.writes.ordersMissingOnTarget).toBe(0);
    expect(result.cutoverWindowMs).toBeGreaterThan(0);
    expect(result.phases.map((p: { phase: string }) => p.phase)).toEqual([
      'sample data', 'assess', 'full-load', 'cdc start', 'cdc catch-up', 'cdc status', 'verify (writes flowing)', 'cutover',
      'verify (exact, fenced)', 'independent check', 'teardown',
    ]);
    // It leads on: the plan it ran, in a file it names, and the commands for one's own servers.
    expect(result.planFile).toBe(planFile);
    const plan = readFileSync(planFile, 'utf8');
    expect(plan).toMatch(/^# The plan pgshift demo ran \(PostgreSQL 13 → 17/);
    expect(plan).toContain('url: "${SOURCE_URL}"');
    expect(parsePlan(plan, planFile, { SOURCE_URL: 'postgresql://u@h/d', TARGET_URL: 'postgresql://u@h/e' }).groups.map((g) => g.name)).toEqual(['orders', 'rest']);
    expect(result.markdown).toContain(`The plan this demo ran is in ${planFile}.`);
    expect(result.markdown.trimEnd().split('\n').slice(-NEXT_COMMANDS.length - 1, -1)).toEqual(NEXT_COMMANDS);
  });
});
