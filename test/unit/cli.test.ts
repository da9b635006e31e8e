import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from '../harness/cli.js';

/**
 * The command line's conventions, checked without a server: the version, help that shows the
 * global options everywhere, usage errors in pgshift's own one-line (or JSON) form with exit 2,
 * the confirmation of destructive commands on a terminal, and shell completion.
 */
const exec = promisify(execFile);
const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-cli-'));
// Nothing listens on port 1: a command that goes past its confirmation fails to connect (exit 2).
const unreachable = { SOURCE_URL: 'postgresql://admin:pw@127.0.0.1:1/app', TARGET_URL: 'postgresql://admin:pw@127.0.0.1:1/app2' };
const plan = path.join(dir, 'migration.yml');
writeFileSync(plan, 'version: 1\nname: shop\nsource: { url: "${SOURCE_URL}" }\ntarget: { url: "${TARGET_URL}" }\ncutover: { fence: database }\n');

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => l.startsWith('pgshift: '));
  expect(lines).toHaveLength(1);
  return lines[0];
}

/** Every command path, read from the help itself (so a new command is covered without edits). */
async function commandPaths(prefix: string[] = []): Promise<string[][]> {
  const { stdout } = await runCli([...prefix, '--help'], {});
  const section = stdout.split(/^Commands:$/m)[1] ?? '';
  const names = [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((n) => n !== 'help');
  const out: string[][] = [];
  for (const name of names) {
    out.push([...prefix, name]);
    out.push(...(await commandPaths([...prefix, name])));
  }
  return out;
}

describe('pgshift command line', () => {
  it('--version prints the package version', async () => {
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag], {});
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`pgshift ${version}\n`);
    }
  });

  it('bare pgshift exits 2 with the usage; --help exits 0 and says where the plan is read from', async () => {
    const bare = await runCli([], {});
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^Usage: pgshift \[options\] \[command\]/);
    expect(oneLine(bare.stderr)).toBe('pgshift: no command given — choose one of the commands listed above (pgshift --help shows them)');
    const group = await runCli(['cdc'], {});
    expect(group.code).toBe(2);
    expect(oneLine(group.stderr)).toMatch(/^pgshift: cdc needs a command — /);
    const help = await runCli(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/read from \.\/migration\.yml unless --config names another file/);
    expect(help.stdout).toMatch(/pgshift init --source-url URL --target-url URL/);
  });

  it("every subcommand's --help shows the global options", async () => {
    const paths = await commandPaths();
    expect(paths.map((p) => p.join(' '))).toEqual(expect.arrayContaining(['init', 'assess', 'cdc resync', 'verify', 'cutover', 'completion', 'github setup']));
    for (const p of paths) {
      const r = await runCli([...p, '--help'], {});
      expect(r.code, p.join(' ')).toBe(0);
      const globals = r.stdout.split('Global Options:')[1];
      expect(globals, `pgshift ${p.join(' ')} --help`).toBeDefined();
      for (const flag of ['--config <file>', '--json', '--debug']) expect(globals).toContain(flag);
    }
  });

  it('usage errors are one pgshift: line with a hint and exit 2, or a JSON document under --json', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['full-load', '--frobnicate'], /^pgshift: unknown option '--frobnicate' — pgshift full-load --help shows its usage$/],
      [['verify', '-t'], /^pgshift: option '-t, --table <name\.\.\.>' argument missing — pgshift verify --help shows its usage$/],
      [['verify', '--mode', 'fast'], /^pgshift: option '--mode <mode>' argument 'fast' is invalid\. Allowed choices are full, quick — pgshift verify --help shows its usage$/],
      [['cdc', 'resync'], /^pgshift: required option '-t, --table <name\.\.\.>' not specified — pgshift cdc resync --help shows its usage$/],
      [['completion'], /^pgshift: missing required argument 'shell' — pgshift completion --help shows its usage$/],
      [['migrate'], /^pgshift: unknown command 'migrate' — pgshift --help lists the commands$/],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(args, {});
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toMatch(/^error:/m);
      expect(oneLine(r.stderr)).toMatch(line);
      const json = await runCli(['--json', ...args], {});
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stdout)).toEqual({ ok: false, exitCode: 2, error: { code: expect.stringMatching(/^usage\./), message: expect.any(String), hint: expect.stringMatching(/--help/) } });
    }
    // --json after the mistake counts too.
    const late = await runCli(['verify', '--mode', 'fast', '--json'], {});
    expect(JSON.parse(late.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { code: 'usage.invalidArgument' } });
  });

  it('demo: a scale that is not a number is an input error before anything starts', async () => {
    for (const scale of ['abc', '0', '-1', '']) {
      const r = await runCli(['demo', '--scale', scale], {});
      expect(r.code, scale).toBe(2);
      expect(oneLine(r.stderr)).toMatch(/^pgshift: --scale must be a number of at least 0\.001, not ".*" — pass --scale with a number/);
      expect(r.stderr).not.toMatch(/starting PostgreSQL/);
    }
  });

  it('demo: refuses to overwrite a plan file it did not write, before any server starts', async () => {
    const mine = path.join(dir, 'mine.yml');
    writeFileSync(mine, 'version: 1\n');
    const r = await runCli(['demo', '--plan-file', mine], {});
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(`pgshift: ${mine} exists and was not written by pgshift demo; the demo does not overwrite it — pass --plan-file with another path`);
    expect(readFileSync(mine, 'utf8')).toBe('version: 1\n');
    expect(r.stderr).not.toMatch(/starting PostgreSQL/);
  });

  it('init: needs both URLs and never overwrites a file, before connecting anywhere', async () => {
    const fresh = path.join(dir, 'fresh.yml');
    const noUrl = await runCli(['init', '-c', fresh], { TARGET_URL: unreachable.TARGET_URL });
    expect(noUrl.code).toBe(2);
    expect(oneLine(noUrl.stderr)).toBe('pgshift: pgshift init needs both servers: neither --source-url nor SOURCE_URL is set — export SOURCE_URL=postgresql://user@host:5432/dbname (the plan reads it from there), or pass --source-url');
    const exists = await runCli(['init', '-c', plan], unreachable);
    expect(exists.code).toBe(2);
    expect(oneLine(exists.stderr)).toBe(`pgshift: ${plan} already exists; pgshift init never overwrites a plan — edit it, remove it first, or pass --config with another file name`);
  });
});

describe('destructive commands', () => {
  const destructive: string[][] = [['cutover'], ['rollback'], ['teardown'], ['full-load', '--restart'], ['cdc', 'restart'], ['cdc', 'acknowledge']];

  it('ask on a terminal for the migration name; any other answer stops them with nothing changed (exit 3)', async () => {
    for (const args of destructive) {
      const questions: string[] = [];
      const r = await runCli([...args, '-c', plan], unreachable, { ask: async (q) => (questions.push(q), 'y') });
      expect(r.code, args.join(' ')).toBe(3);
      expect(questions).toHaveLength(1);
      expect(questions[0]).toMatch(/^pgshift: .*127\.0\.0\.1:1\/app.*\.\nType the migration name \(shop\) to go on, anything else stops: $/s);
      expect(oneLine(r.stderr)).toBe('pgshift: not confirmed (the answer was not shop): nothing was changed — type shop at the question, or pass --yes');
    }
  });

  it('go on when the name is typed, with --yes, or without a terminal (CI, the Actions)', async () => {
    for (const args of destructive) {
      // Going on means connecting: the unreachable server then ends the command with exit 2.
      const typed = await runCli([...args, '-c', plan], unreachable, { ask: async () => ' shop ' });
      expect(typed.code, args.join(' ')).toBe(2);
      expect(oneLine(typed.stderr)).toMatch(/127\.0\.0\.1:1\/app.? is unreachable/);
      let asked = false;
      const yes = await runCli([...args, '--yes', '-c', plan], unreachable, { ask: async () => ((asked = true), '') });
      expect(yes.code).toBe(2);
      expect(asked).toBe(false);
      const ci = await runCli([...args, '-c', plan], unreachable);
      expect(ci.code).toBe(2);
    }
  });

  it('the other commands never ask', async () => {
    for (const args of [['cutover', '--dry-run'], ['full-load'], ['verify'], ['cdc', 'stop'], ['assess']]) {
      let asked = false;
      const r = await runCli([...args, '-c', plan], unreachable, { ask: async () => ((asked = true), '') });
      expect(r.code, args.join(' ')).toBe(2);
      expect(asked, args.join(' ')).toBe(false);
    }
  });
});

describe('shell completion', () => {
  const script = async (shell: string) => {
    const r = await runCli(['completion', shell], {});
    expect(r.code).toBe(0);
    const file = path.join(dir, `completion.${shell}`);
    writeFileSync(file, r.stdout);
    return file;
  };
  // Each case: the words typed so far (the last one being completed) and the words offered.
  const cases: Array<[string[], string[]]> = [
    [['pgshift', ''], ['init', 'assess', 'full-load', 'cdc', 'verify', 'cutover', 'status', 'rollback', 'teardown', 'github', 'demo', 'completion']],
    [['pgshift', 'cdc', ''], ['start', 'status', 'pause', 'resume', 'stop', 'acknowledge', 'resync', 'restart']],
    [['pgshift', '-c', 'cdc', 'cdc', 're'], ['resume', 'resync', 'restart']],
    [['pgshift', 'verify', '--mode', ''], ['full', 'quick']],
    [['pgshift', 'cutover', '--'], ['--dry-run', '--recover', '--yes', '--version', '--config', '--json', '--debug', '--help']],
    [['pgshift', 'completion', ''], ['bash', 'zsh']],
  ];

  it('bash: completes commands, subcommands, options and their choices', async () => {
    const file = await script('bash');
    for (const [words, offered] of cases) {
      const line = words.map((w) => `'${w}'`).join(' ');
      const { stdout } = await exec('bash', ['-c', `source '${file}'; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _pgshift; printf '%s\\n' "\${COMPREPLY[@]}"`]);
      expect(stdout.trim().split('\n'), words.join(' ')).toEqual(offered);
    }
    const { stdout } = await exec('bash', ['-c', `source '${file}'; complete -p pgshift`]);
    expect(stdout.trim()).toBe('complete -F _pgshift pgshift');
  });

  it('zsh: the same function through bashcompinit (zsh matches the typed prefix itself)', async () => {
    const file = await script('zsh');
    for (const [words, offered] of cases) {
      const line = words.map((w) => `'${w}'`).join(' ');
      // What zsh's _bash_complete does: set the bash variables, run compgen -F, then match the prefix.
      const { stdout } = await exec('zsh', ['-f', '-c', `source '${file}'; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; compgen -F _pgshift -- '${words.at(-1)}'`]);
      const prefix = words.at(-1)!;
      expect(stdout.trim().split('\n').filter((w) => w.startsWith(prefix)), words.join(' ')).toEqual(offered);
    }
    const { stdout } = await exec('zsh', ['-f', '-c', `source '${file}'; print -r -- \${_comps[pgshift]}`]);
    expect(stdout.trim()).toBe('_bash_complete -F _pgshift');
  });
});
