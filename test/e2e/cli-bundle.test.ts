import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

describe('the committed bundles', () => {
  it('are fresh: rebuilding changes nothing', async () => {
    const { stdout } = await exec(process.execPath, ['scripts/build.mjs', '--check']);
    expect(stdout).toMatch(/bundle\(s\) up to date/);
  });

  it('bin/pgshift runs from the bundle: --help lists the commands', async () => {
    const { stdout } = await exec(process.execPath, ['bin/pgshift.js', '--help']);
    for (const cmd of ['assess', 'full-load', 'cdc', 'verify', 'cutover', 'teardown', 'demo']) expect(stdout).toContain(cmd);
  });

  it('bin/pgshift exits 2 on a missing plan with one line', async () => {
    const err = await exec(process.execPath, ['bin/pgshift.js', 'verify', '-c', '/nonexistent.yml']).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr.trim()).toBe('pgshift: /nonexistent.yml: cannot read the plan file (ENOENT) — pgshift init writes one from your two servers; or pass --config with the path of your plan');
  });
});
