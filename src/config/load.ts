import { batchStreamName } from '../core/names.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { inputError, isPgshiftError } from '../core/errors.js';
import { registerSecret } from '../core/secrets.js';
import { planSchema, type Plan } from './schema.js';
import { parseConninfo, parseServerUrl } from './url.js';

/**
 * Loading migration.yml: parse YAML keeping positions, interpolate ${VAR} from the environment,
 * validate against the schema, fill defaults, register secrets. Every error names the file, the
 * line and the key, and says what is allowed.
 */

export interface LoadedPlan {
  plan: Plan;
  file: string;
}

type Env = Record<string, string | undefined>;

export function loadPlanFile(file: string, env: Env = process.env): LoadedPlan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw inputError(
      'plan.unreadable',
      `${file}: cannot read the plan file (${code ?? 'error'})`,
      code === 'ENOENT' ? 'pgshift init writes one from your two servers; or pass --config with the path of your plan' : undefined,
    );
  }
  return { plan: parsePlan(text, file, env), file: path.resolve(file) };
}

export function parsePlan(text: string, file: string, env: Env = process.env): Plan {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line } = lineCounter.linePos(offset);
    return `${file}:${line}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw inputError('plan.yaml', `${where(e.pos[0])}: malformed YAML: ${e.message.split('\n')[0]}`, 'fix the YAML syntax');
  }
  if (!isMap(doc.contents)) {
    throw inputError('plan.yaml', `${file}: the plan must be a YAML mapping`, 'start from the example in the README');
  }

  interpolate(doc, env, where);

  const raw = doc.toJS();
  const parsed = planSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const node = nodeAt(doc, issue.path);
    throw inputError('plan.invalid', `${where(node?.range?.[0])}: ${describeIssue(issue, valueAt(raw, issue.path))}`, hintFor(issue));
  }
  const plan = parsed.data;
  const cross = crossCheck(plan);
  if (cross) {
    const node = nodeAt(doc, cross.path);
    throw inputError('plan.invalid', `${where(node?.range?.[0])}: ${cross.message}`, cross.hint);
  }
  for (const url of [plan.source.url, plan.source.replicaUrl, plan.target.url, plan.source.subscriptionConninfo, plan.cutover.pgbouncer?.adminUrl]) {
    if (!url) continue;
    registerSecret(url);
    const pw = url.startsWith('postgres') ? safePassword(url) : conninfoPassword(url);
    registerSecret(pw);
  }
  // Every connection string is read now, so that a bad one is refused before anything runs.
  const connections: Array<[string, string | undefined, (text: string) => unknown]> = [
    ['source.url', plan.source.url, parseServerUrl],
    ['source.replicaUrl', plan.source.replicaUrl, parseServerUrl],
    ['source.subscriptionConninfo', plan.source.subscriptionConninfo, parseConninfo],
    ['target.url', plan.target.url, parseServerUrl],
    ['cutover.pgbouncer.adminUrl', plan.cutover.pgbouncer?.adminUrl, parseServerUrl],
  ];
  for (const [key, text, parse] of connections) {
    if (text === undefined) continue;
    try {
      parse(text);
    } catch (err) {
      const node = nodeAt(doc, key.split('.'));
      throw inputError('plan.invalid', `${where(node?.range?.[0])}: ${key}: ${(err as Error).message}`, isPgshiftError(err) ? err.hint : 'write postgresql://user:password@host:port/dbname');
    }
  }
  return plan;
}

function conninfoPassword(conninfo: string): string | undefined {
  try {
    return parseConninfo(conninfo).password;
  } catch {
    return /password\s*=\s*(\S+)/.exec(conninfo)?.[1];
  }
}

function safePassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/** Replace ${VAR} and ${VAR:-default} in every string scalar; $$ stands for a literal $. */
function interpolate(doc: Document, env: Env, where: (offset?: number) => string): void {
  const visit = (node: unknown, keyPath: string[]) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        visit(pair.value, [...keyPath, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...keyPath, String(i)]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      node.value = node.value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (match, name, fallback) => {
        if (match === '$$') return '$';
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        throw inputError(
          'plan.env',
          `${where(node.range?.[0])}: ${keyPath.join('.')}: environment variable ${name} is not set`,
          `export ${name} before running pgshift (secrets come from the environment, never from the file)`,
        );
      });
    }
  };
  visit(doc.contents, []);
}

function nodeAt(doc: Document, issuePath: ReadonlyArray<PropertyKey>): Node | undefined {
  // Walk down as far as the document goes: an unknown or missing key points at its parent.
  let node: unknown = doc.contents;
  let found = node as Node | undefined;
  for (const key of issuePath) {
    if (isMap(node)) node = node.get(String(key), true);
    else if (isSeq(node)) node = node.get(Number(key), true);
    else break;
    if (node === undefined) break;
    found = node as Node;
  }
  return found;
}

/** The value the plan holds at a path (undefined where the key is absent). */
function valueAt(raw: unknown, issuePath: ReadonlyArray<PropertyKey>): unknown {
  let value = raw;
  for (const key of issuePath) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** How a value of the plan reads in a message: YAML's own words for what was written. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${JSON.stringify(value)}`;
  return JSON.stringify(value);
}

function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const key = issue.path.map(String).join('.') || '(top level)';
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = issue.keys.join(', ');
      return `${key === '(top level)' ? '' : `${key}: `}unknown key ${keys}`;
    }
    case 'invalid_value':
      return `${key}: ${issue.values.length === 1 ? `must be ${JSON.stringify(issue.values[0])}` : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}`;
    case 'invalid_type':
      return `${key}: ${value === undefined ? 'is required' : `expected ${expectedType(issue.expected)}, got ${describeValue(value)}`}`;
    case 'too_big':
    case 'too_small': {
      const bound = issue.code === 'too_big' ? issue.maximum : issue.minimum;
      const words = issue.origin === 'array' ? ['entries', 'entry'] : issue.origin === 'string' ? ['characters', 'character'] : undefined;
      const limit = `${issue.code === 'too_big' ? 'at most' : 'at least'} ${String(bound)}${words ? ` ${Number(bound) === 1 ? words[1] : words[0]}` : ''}`;
      return `${key}: must be ${limit}${words ? '' : `, got ${describeValue(value)}`}`;
    }
    default:
      return `${key}: ${issue.message}`;
  }
}

function expectedType(expected: string): string {
  const words: Record<string, string> = { number: 'a number', int: 'an integer', string: 'a text', boolean: 'true or false', array: 'a list', object: 'a mapping' };
  return words[expected] ?? expected;
}

function hintFor(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return 'remove it or check its spelling against schema/migration.schema.json';
  return 'see schema/migration.schema.json for what is allowed';
}

function crossCheck(plan: Plan): { path: string[]; message: string; hint: string } | undefined {
  const seen = new Set<string>();
  for (const [i, g] of plan.groups.entries()) {
    if (seen.has(g.name)) {
      return { path: ['groups', String(i), 'name'], message: `groups.${i}.name: group ${g.name} is named twice`, hint: 'give every group its own name' };
    }
    seen.add(g.name);
  }
  if (plan.cdc.engine === 'dms') {
    // A group split for batch apply streams its batch tables as <group>_batch (src/core/names.ts).
    const clash = plan.groups.findIndex((g) => seen.has(batchStreamName(g.name)));
    if (clash >= 0) {
      const g = plan.groups[clash].name;
      return {
        path: ['groups', String(plan.groups.findIndex((x) => x.name === batchStreamName(g))), 'name'],
        message: `groups: with cdc.engine dms the name ${batchStreamName(g)} is taken by group ${g}'s batch-apply stream`,
        hint: `rename group ${batchStreamName(g)}`,
      };
    }
  }
  if (plan.cdc.ddl && plan.cdc.ddlTrigger !== undefined) {
    return { path: ['cdc', 'ddlTrigger'], message: 'cdc.ddlTrigger: set either cdc.ddl or the older cdc.ddlTrigger, not both', hint: 'remove cdc.ddlTrigger (true is cdc.ddl: detect, false is cdc.ddl: off)' };
  }
  if (plan.cdc.engine === 'dms' && plan.cdc.ddl === 'follow') {
    return {
      path: ['cdc', 'ddl'],
      message: 'cdc.ddl: follow replays DDL through native logical replication; the DMS tasks do not carry it',
      hint: 'use cdc.ddl: detect with cdc.engine dms (each change is shown by cdc status and refuses the cut-over until applied on the target)',
    };
  }
  if (plan.snapshot === 'paused-replica' && !plan.source.replicaUrl) {
    return {
      path: ['source'],
      message: 'source.replicaUrl: snapshot: paused-replica needs the replica to copy from',
      hint: 'set source.replicaUrl or use snapshot: exported',
    };
  }
  return undefined;
}
