import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/config/load.js';
import { runCli } from '../harness/cli.js';
import { sql, startPair, type Pair } from '../harness/servers.js';

/**
 * A new user's first hour on two servers of their own (PostgreSQL 13 → 17), through the CLI only:
 * `pgshift init` writes the plan, every phase before the cut-over runs on it as written, and each
 * message says what the state it describes needs next.
 */
let pair: Pair;
let env: Record<string, string>;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-first-hour-'));
const plan = path.join(dir, 'migration.yml');

const cli = async (...args: string[]) => runCli([...args, '-c', plan], env);

beforeAll(async () => {
  pair = await startPair(13, 17, 'shop');
  env = { SOURCE_URL: pair.sourceUrl, TARGET_URL: pair.targetUrl };
  await sql(
    pair.sourceUrl,
    `CREATE TABLE public.orders (id bigserial PRIMARY KEY, note text);
     INSERT INTO public.orders (note) SELECT repeat('o', 200) FROM generate_series(1, 20000);
     CREATE TABLE public."café" (id serial PRIMARY KEY, v text);
     INSERT INTO public."café" (v) SELECT 'latte ' || g FROM generate_series(1, 5000) g;
     CREATE TABLE public.items (id int PRIMARY KEY, name text);
     INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 1000) g;
     CREATE TABLE public.notes (id int PRIMARY KEY, body text);
     INSERT INTO public.notes VALUES (1, 'small');
     ANALYZE;`,
  );
});

describe('the first hour', () => {
  it('init: writes a commented plan that passes the schema, with $schema, the assessed groups and the URLs as ${VARS}', async () => {
    // URLs given as flags, nothing in the environment: the plan still reads them from there.
    const r = await runCli(['init', '-c', plan, '--source-url', pair.sourceUrl, '--target-url', pair.targetUrl], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`wrote ${plan.replace(/[.]/g, '\\.')}`));
    expect(r.stdout).toMatch(/Migration shop: .* \(PostgreSQL 13\) → .* \(PostgreSQL 17\), 4 table\(s\) in 4 group\(s\): orders \(public\.orders\); caf \(public\."café"\); items \(public\.items\); rest \(\*\.\*\)/);
    expect(r.stdout).toMatch(/Assess found 0 blocker\(s\)/);
    expect(r.stdout).toMatch(/export SOURCE_URL and TARGET_URL/);
    const text = readFileSync(plan, 'utf8');
    expect(text).toMatch(/^# yaml-language-server: \$schema=\S+migration\.schema\.json$/m);
    const schemaRef = /^\$schema: (\S+)$/m.exec(text)?.[1];
    expect(schemaRef && existsSync(path.resolve(dir, schemaRef))).toBe(true);
    expect(text).toContain('url: ${SOURCE_URL}');
    expect(text).toContain('url: ${TARGET_URL}');
    expect(text).not.toContain(pair.sourceUrl);
    expect(text).toMatch(/^# cutover:$/m); // the cut-over settings are offered, commented out
    const parsed = parsePlan(text, plan, env);
    expect(parsed.name).toBe('shop');
    expect(parsed.groups.map((g) => [g.name, g.tables])).toEqual([
      ['orders', ['public.orders']],
      ['caf', ['public."café"']],
      ['items', ['public.items']],
      ['rest', ['*.*']],
    ]);
    expect(parsed.tables).toEqual({}); // nothing to say per table to a native migration
  });

  it('init: never overwrites the plan', async () => {
    const before = readFileSync(plan, 'utf8');
    const r = await runCli(['init', '-c', plan], env);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`pgshift: ${plan} already exists; pgshift init never overwrites a plan — edit it, remove it first, or pass --config with another file name`);
    expect(readFileSync(plan, 'utf8')).toBe(before);
  });

  it('the plan as init wrote it runs assess; only the cut-over asks for its fence settings', async () => {
    const assess = await cli('assess');
    expect(assess.code, assess.stdout + assess.stderr).toBe(0);
    const cutover = await cli('cutover');
    expect(cutover.code).toBe(2);
    expect(cutover.stderr.trim()).toBe(
      'pgshift: cutover.roles: pgshift cutover fences writes by role (cutover.fence: roles) and the plan lists no application roles; the other phases run without it — list the roles the application writes with (cutover: { roles: [app_rw] }) or choose cutover.fence: database',
    );
  });

  it('a pattern whose tables an earlier group took is reported as taken', async () => {
    const late = path.join(dir, 'late.yml');
    writeFileSync(late, readFileSync(plan, 'utf8').replace('groups:\n', 'groups:\n  - { name: first, tables: ["public.*"] }\n'));
    const r = await runCli(['assess', '--json', '-c', late], env);
    const findings = JSON.parse(r.stdout).result.findings as Array<{ code: string; object: string; message: string; fix?: string }>;
    expect(findings.find((f) => f.code === 'group.pattern' && f.object === 'group orders')).toMatchObject({
      message: 'pattern public.orders matches only tables already taken by group first listed before it (a table belongs to the first group that matches it)',
      fix: 'remove the pattern from group orders, or move group orders before group first in the plan',
    });
    expect(findings.find((f) => f.code === 'group.empty' && f.object === 'group orders')?.message).toMatch(/^group orders is left with no table: its pattern public\.orders matches only tables already taken by group first/);
    expect(findings.some((f) => /matches no table/.test(f.message) && f.object === 'group orders')).toBe(false);
  });

  it('verify and resync take a table as the plan spells it: public.café, public."café"', async () => {
    expect((await cli('full-load')).code).toBe(0);
    expect((await cli('cdc', 'start')).code).toBe(0);
    for (const name of ['public.café', 'public."café"', '"public"."café"', 'café']) {
      const r = await runCli(['verify', '--json', '-t', name, '-c', plan], env);
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).result.tables.map((t: { table: string }) => t.table)).toEqual(['public."café"']);
    }
    const resync = await cli('cdc', 'resync', '-t', 'public.café');
    expect(resync.code, resync.stderr).toBe(0);
    expect(resync.stdout).toMatch(/^Resynced public\."café": 5000 rows/);
    const bad = await cli('verify', '-t', 'public."café');
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^pgshift: table "public\.\\"café": unterminated quote .* — write schema\.table; double-quote a part/);
  });

  it('after cdc stop: a plain verify is equal with a note for a sequence behind, and does not claim writes were stopped', async () => {
    expect((await cli('cdc', 'stop')).code).toBe(0);
    // The application took a value without writing a row: only the sequence moved.
    await sql(pair.sourceUrl, `SELECT nextval('public.orders_id_seq')`);
    const json = await runCli(['verify', '--json', '-c', plan], env);
    expect(json.code, json.stderr).toBe(0);
    const r = JSON.parse(json.stdout).result;
    expect(r).toMatchObject({ verdict: 'equal', exact: false, streaming: false, differences: [] });
    expect(r.notes).toEqual(['1 sequence(s) behind the source: expected before the cut-over, which sets every sequence from the source']);
    const text = await cli('verify');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^### pgshift verify — equal$/m);
    expect(text.stdout).toMatch(/one pass, no stream applying \(writes to the source are not fenced\)/);
    expect(text.stdout).not.toMatch(/exact \(writes stopped\)/);
    expect(text.stdout).toMatch(/Note: 1 sequence\(s\) behind the source/);
    // Only the operator's --exact says that writes are stopped.
    const exact = await cli('verify', '--exact');
    expect(exact.stdout).toMatch(/exact \(writes stopped\)/);
  });

  it('after cdc stop, cdc start and cdc resume stream again (the slots kept the changes)', async () => {
    await sql(pair.sourceUrl, `INSERT INTO public.notes VALUES (2, 'written while stopped')`);
    const start = await runCli(['cdc', 'start', '--json', '-c', plan], env);
    expect(start.code, start.stderr).toBe(0);
    expect(JSON.parse(start.stdout).result.groups.map((g: { health: string }) => g.health)).not.toContain('stopped');
    expect((await cli('cdc', 'stop')).code).toBe(0);
    const resume = await runCli(['cdc', 'resume', '--json', '-c', plan], env);
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stderr).not.toMatch(/finish (pgshift )?full-load/);
    expect(JSON.parse(resume.stdout).result.groups.map((g: { health: string }) => g.health)).not.toContain('stopped');
    // The row written while stopped arrives.
    const deadline = Date.now() + 30_000;
    let rows: unknown[] = [];
    while (Date.now() < deadline && rows.length === 0) {
      rows = await sql(pair.targetUrl, `SELECT 1 FROM public.notes WHERE id = 2`);
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows).toHaveLength(1);
  });

  it('teardown cleans up', async () => {
    const r = await cli('teardown');
    expect(r.code, r.stderr).toBe(0);
  });
});
