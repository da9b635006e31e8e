import { describe, expect, it } from 'vitest';
import { runCli } from '../harness/cli.js';

describe('pgshift demo', () => {
  it('migrates 13 → 17 with writes flowing and proves the target equal', async () => {
    const r = await runCli(['demo', '--json', '--scale', '0.3'], process.env);
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
  });
});
