import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { seedSample, startPair, type Pair } from '../harness/servers.js';

/**
 * docs/guide.md, run as written against two local servers (PostgreSQL 13 → 17) so that it cannot
 * rot: every ```sh block, in order, in one working directory, with `pgshift` being this clone's
 * bin/pgshift.js. The one block that holds the reader's own values (```sh your-servers) may only
 * export SOURCE_URL and TARGET_URL; the test's servers take their place. Blocks marked
 * ```sh if-needed (rollback) are not run, but every pgshift command in them must exist. In the
 * ```text block that shows what a command prints, every heading line (### …) must be printed.
 *
 * PGSHIFT_GUIDE_OUTPUT=<dir> keeps each block's output there, to refresh the guide's examples.
 */
const exec = promisify(execFile);
const repo = process.cwd();
const guide = readFileSync(path.join(repo, 'docs/guide.md'), 'utf8');

interface Block {
  info: string;
  body: string;
  line: number;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const re = /^```([^\n`]*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push({ info: m[1].trim(), body: m[2], line: markdown.slice(0, m.index).split('\n').length });
  return out;
}

const all = blocks(guide);
const shell = all.filter((b) => b.info === 'sh' || b.info.startsWith('sh '));

let pair: Pair;
let work: string;
let env: Record<string, string>;

beforeAll(async () => {
  pair = await startPair(13, 17, 'shop');
  await seedSample(pair.sourceUrl, 0.05);
  work = mkdtempSync(path.join(os.tmpdir(), 'pgshift-guide-'));
  const bin = path.join(work, '.bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'pgshift'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(repo, 'bin/pgshift.js')}" "$@"\n`);
  chmodSync(path.join(bin, 'pgshift'), 0o755);
  env = { PATH: `${bin}:${process.env.PATH}`, HOME: work, SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl };
});

describe('docs/guide.md', () => {
  it('marks its commands: runnable ```sh blocks, one your-servers block, if-needed blocks', () => {
    const kinds = new Set(shell.map((b) => b.info));
    expect([...kinds].sort()).toEqual(['sh', 'sh if-needed', 'sh your-servers']);
    const yours = shell.filter((b) => b.info === 'sh your-servers');
    expect(yours).toHaveLength(1);
    const lines = yours[0].body.trim().split('\n');
    expect(lines.map((l) => /^export (SOURCE_URL|TARGET_URL)=/.exec(l)?.[1])).toEqual(['SOURCE_URL', 'TARGET_URL']);
    expect(shell.filter((b) => b.info === 'sh').length).toBeGreaterThan(8);
  });

  it('runs as written, printing what it shows', async () => {
    const keep = process.env.PGSHIFT_GUIDE_OUTPUT;
    let previous: { block: Block; output: string } | undefined;
    for (const block of all) {
      if (block.info === 'text' && previous) {
        for (const heading of block.body.split('\n').filter((l) => l.startsWith('### '))) {
          expect(previous.output, `docs/guide.md:${block.line} shows "${heading}" after the command at line ${previous.block.line}`).toContain(heading);
        }
        previous = undefined;
        continue;
      }
      if (block.info === 'sh if-needed') {
        for (const cmd of block.body.split('\n').filter((l) => l.startsWith('pgshift '))) {
          const words = cmd.split(/\s+/).slice(1).filter((w) => !w.startsWith('-'));
          const r = await exec('bash', ['--norc', '--noprofile', '-c', `pgshift ${words.join(' ')} --help`], { cwd: work, env });
          expect(r.stdout, cmd).toMatch(/^Usage: pgshift /);
        }
        continue;
      }
      if (block.info !== 'sh') continue;
      const r = await exec('bash', ['--norc', '--noprofile', '-euo', 'pipefail', '-c', block.body], { cwd: work, env, maxBuffer: 64 * 1024 * 1024 }).catch((err) => err);
      const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
      if (keep) writeFileSync(path.join(keep, `line-${block.line}.txt`), `$ ${block.body}\n${output}`);
      expect(r.code ?? 0, `docs/guide.md:${block.line}:\n${block.body}\n${output}`).toBe(0);
      previous = { block, output: r.stdout ?? '' };
    }
  });
});
