import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { phaseContext, type PhaseContext } from '../../src/phases/context.js';
import { runVerify } from '../../src/phases/verify.js';
import { testPlan } from '../harness/plan.js';
import { sql, startPair, type Pair } from '../harness/servers.js';

/**
 * The row hash (each column by its own hash function where that is safe, XOR-combined): a 15 source
 * and a 17 target with the same rows agree, and a change in any one column of any type is found — including the changes a type's own hash would miss (a numeric's
 * scale, a float's sign of zero, '1 day' against '24 hours', text equal only under a
 * case-insensitive collation), which is why those types are hashed as text. Domains hash as the
 * type they are over.
 */
let pair: Pair;
let ctx: PhaseContext;

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TYPE pair_t AS (a int, b text);
  CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
  CREATE DOMAIN pos AS int CHECK (VALUE > 0);
  CREATE DOMAIN code AS varchar(10);
  CREATE TABLE k (
    id int PRIMARY KEY, i2 smallint, i8 bigint, ok boolean, d date, t timestamp, tz timestamptz, u uuid, b bytea,
    j jsonb, tx text, vc varchar(20), ch char(5), ci text COLLATE ci, ia int[], ta text[],
    n numeric, f8 double precision, f4 real, iv interval, js json, m mood, ma mood[], p pair_t, ip inet, dp pos, dc code);`;
const ROW = `(%s, 2, 3000000000, true, '2026-01-02', '2026-01-02 03:04:05.678901', '2026-01-02 03:04:05+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '\\xdeadbeef', '{"a": [1, 2.50], "b": null}', 'Äpfel', 'zebra', 'ab', 'Straße', '{1,NULL,3}', '{"x y",NULL}',
  1.10, 0, '-0', '1 day', '{"a":1}', 'ok', '{sad,happy}', '(1,"x")', '10.0.0.1/32', 7, 'AB')`;

/** One change per row on the target, in the column named, to a value that differs only subtly. */
const CHANGES: Array<[string, string]> = [
  ['i2', '3'], ['i8', '3000000001'], ['ok', 'false'], ['d', "'2026-01-03'"], ['t', "'2026-01-02 03:04:05.678902'"],
  ['tz', "'2026-01-02 03:04:06+02'"], ['u', "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"], ['b', "'\\xdeadbeee'"],
  ['j', `'{"a": [1, 2.51], "b": null}'`], ['tx', "'äpfel'"], ['vc', "'Zebra'"], ['ch', "'ab '"], ['ci', "'STRASSE'"],
  ['ia', "'{1,NULL,4}'"], ['ta', `'{"x y",""}'`], ['n', '1.1'], ['f8', "'-0'"], ['f4', '0'], ['iv', "'24 hours'"],
  ['js', `'{"a": 1}'`], ['m', "'sad'"], ['ma', "'{sad,ok}'"], ['p', `'(1,"X")'`], ['ip', "'10.0.0.1/24'"],
  ['dp', '8'], ['dc', "'Ab'"],
];

beforeAll(async () => {
  pair = await startPair(15, 17);
  for (const url of [pair.sourceUrl, pair.targetUrl]) {
    await sql(url, SCHEMA);
    await sql(url, `INSERT INTO k VALUES ${Array.from({ length: CHANGES.length + 5 }, (_, i) => ROW.replace('%s', String(i + 1))).join(', ')}`);
  }
  ctx = phaseContext(testPlan(pair.sourceUrl, pair.targetUrl, 'verify: { chunkRows: 100 }'), silentLogger);
});

describe('row hashes across majors', () => {
  it('the same rows on 15 and 17 are equal', async () => {
    const r = await runVerify(ctx, { exact: true });
    expect(r.schema).toEqual([]);
    expect(r.verdict).toBe('equal');
  });

  it('a change in any single column is found, the subtle ones included', async () => {
    // ch: char(5) compares without trailing blanks — 'ab' and 'ab ' are the same value, not a change.
    const real = CHANGES.filter(([col]) => col !== 'ch');
    for (const [i, [col, value]] of CHANGES.entries()) await sql(pair.targetUrl, `UPDATE k SET ${col} = ${value} WHERE id = ${i + 1}`);
    const r = await runVerify(ctx, { exact: true });
    const found = r.tables.find((t) => t.table === 'public.k')!.differences.map((d) => Number(d.key.id)).sort((a, b) => a - b);
    const expected = CHANGES.map(([col], i) => ({ col, id: i + 1 })).filter(({ col }) => real.some(([c]) => c === col)).map(({ id }) => id);
    expect(found).toEqual(expected);
  });
});
