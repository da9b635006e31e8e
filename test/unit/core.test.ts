import { describe, expect, it } from 'vitest';
import { parseSize, formatBytes } from '../../src/config/size.js';
import { assignGroups, describeEmptyGroup, describeUnmatched } from '../../src/core/groups.js';
import { displayName, parseQualifiedName, qualify, quoteIdent } from '../../src/core/ident.js';
import { formatLsn, lsnDistance, parseLsn } from '../../src/core/lsn.js';
import { slotName } from '../../src/core/names.js';
import { runPool } from '../../src/core/pool.js';
import { redact, redactDeep, registerSecret } from '../../src/core/secrets.js';

describe('LSN', () => {
  it('parses, formats and subtracts 64-bit positions', () => {
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('0/53FC198'))).toBe('0/53FC198');
    expect(lsnDistance(parseLsn('0/FFFFFFFF'), parseLsn('1/0'))).toBe(1n);
    expect(lsnDistance(parseLsn('1/0'), parseLsn('0/10'))).toBe(0n);
    expect(() => parseLsn('nope')).toThrow(/not an LSN/);
  });
});

describe('identifiers', () => {
  it('quotes every name so spaces, quotes, case, unicode and reserved words survive', () => {
    expect(quoteIdent('Audit Log')).toBe('"Audit Log"');
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(qualify({ schema: 'shop', name: 'select' })).toBe('"shop"."select"');
    expect(displayName({ schema: 'shop', name: 'Größe' })).toBe('shop."Größe"');
    expect(displayName({ schema: 'public', name: 'orders' })).toBe('public.orders');
  });

  it('parses plan names with quotes and dots', () => {
    expect(parseQualifiedName('shop.orders')).toEqual({ schema: 'shop', name: 'orders' });
    expect(parseQualifiedName('"My Schema"."a.b"')).toEqual({ schema: 'My Schema', name: 'a.b' });
    expect(parseQualifiedName('"x""y".t')).toEqual({ schema: 'x"y', name: 't' });
    expect(parseQualifiedName('orders')).toEqual({ schema: 'public', name: 'orders' });
    expect(() => parseQualifiedName('a.b.c')).toThrow();
  });
});

describe('sizes', () => {
  it('reads sizes as people write them', () => {
    expect(parseSize('10GB')).toBe(10 * 1024 ** 3);
    expect(parseSize('512 MB')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5kB')).toBe(1536);
    expect(parseSize(42)).toBe(42);
    expect(parseSize('ten')).toBeUndefined();
    expect(formatBytes(1536)).toBe('1.5 kB');
  });
});

describe('groups', () => {
  const t = (schema: string, name: string) => ({ schema, name });
  it('gives each table to the first matching group and reports patterns that match nothing', () => {
    const tables = [t('public', 'calls'), t('public', 'users'), t('shop', 'orders'), t('shop', 'items'), t('Odd Schema', 'X')];
    const r = assignGroups(tables, [
      { name: 'calls', tables: ['public.calls'], exclude: [] },
      { name: 'rest', tables: ['public.*', 'shop.*'], exclude: ['shop.orders'] },
      { name: 'typo', tables: ['pubic.*'], exclude: [] },
    ]);
    expect(r.groups.get('calls')).toEqual([t('public', 'calls')]);
    expect(r.groups.get('rest')).toEqual([t('public', 'users'), t('shop', 'items')]);
    expect(r.unassigned).toEqual([t('shop', 'orders'), t('Odd Schema', 'X')]);
    expect(r.unmatched).toEqual([{ group: 'typo', pattern: 'pubic.*', takenBy: [], excluded: 0 }]);
    expect(describeUnmatched(r.unmatched[0]).message).toBe('pattern pubic.* matches no table on the source');
  });

  it('reports a pattern whose tables an earlier group took as taken, not as matching nothing', () => {
    const tables = [t('public', 'calls'), t('public', 'users'), t('shop', 'orders')];
    const r = assignGroups(tables, [
      { name: 'everything', tables: ['*.*'], exclude: ['shop.orders'] },
      { name: 'calls', tables: ['public.calls'], exclude: [] },
      { name: 'orders', tables: ['shop.orders', 'shop.*'], exclude: ['shop.*'] },
    ]);
    expect(r.groups.get('calls')).toEqual([]);
    expect(r.unmatched).toEqual([
      { group: 'calls', pattern: 'public.calls', takenBy: ['everything'], excluded: 0 },
      { group: 'orders', pattern: 'shop.orders', takenBy: [], excluded: 1 },
      { group: 'orders', pattern: 'shop.*', takenBy: [], excluded: 1 },
    ]);
    const taken = describeUnmatched(r.unmatched[0]);
    expect(taken.message).toBe('pattern public.calls matches only tables already taken by group everything listed before it (a table belongs to the first group that matches it)');
    expect(taken.fix).toBe('remove the pattern from group calls, or move group calls before group everything in the plan');
    expect(describeUnmatched(r.unmatched[1]).message).toBe("pattern shop.orders matches only tables that the group's exclude leaves out");
    expect(describeEmptyGroup('calls', r.unmatched).message).toBe('group calls is left with no table: its pattern public.calls matches only tables already taken by group everything listed before it (a table belongs to the first group that matches it)');
    expect(describeEmptyGroup('nothing', r.unmatched).message).toBe('group nothing matches no table that holds rows on the source');
  });

  it('counts every pattern of the group that takes a table', () => {
    const r = assignGroups([t('public', 'calls')], [{ name: 'all', tables: ['public.*', 'public.calls'], exclude: [] }]);
    expect(r.unmatched).toEqual([]);
  });
});

describe('names', () => {
  it('keeps derived object names within 63 bytes, stable per input', () => {
    const long = slotName('m'.repeat(40), 'g'.repeat(40));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(slotName('m'.repeat(40), 'g'.repeat(40))).toBe(long);
    expect(slotName('shop', 'all')).toBe('pgshift_shop_all');
  });
});

describe('secrets', () => {
  it('masks registered secrets and credentials that were never registered', () => {
    registerSecret('s3cr3t/pw+x');
    expect(redact('password is s3cr3t/pw+x')).toBe('password is ***');
    expect(redact('url postgresql://u:s3cr3t%2Fpw%2Bx@h/db')).toBe('url postgresql://u:***@h/db');
    expect(redact('postgres://app:other@db:5432/x')).toBe('postgres://app:***@db:5432/x');
    expect(redact("host=a password='it''s' user=b")).toContain('password=***');
    expect(redactDeep({ a: ['s3cr3t/pw+x', 1] })).toEqual({ a: ['***', 1] });
  });
});

describe('runPool', () => {
  it('runs at most N tasks at once and rethrows the first failure', async () => {
    let running = 0;
    let peak = 0;
    await runPool([1, 2, 3, 4, 5], 2, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    });
    expect(peak).toBe(2);
    await expect(runPool([1, 2, 3], 2, async (i) => {
      if (i === 2) throw new Error('boom');
    })).rejects.toThrow('boom');
  });
});
