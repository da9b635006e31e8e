import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { redact, registerSecret } from '../../src/core/secrets.js';
import { connstrValue, findDatabaseEntry, parseConnstr } from '../../src/core/pgbouncer-ini.js';
import { poolerLine, repointConfig, requirePoolerEntry, restoreConfigLine } from '../../src/pg/pgbouncer.js';

function configWith(line: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgshift-ini-')), 'pgbouncer.ini');
  writeFileSync(file, `[databases]\nother = host=10.0.0.9 dbname=x\n${line}\n\n[pgbouncer]\nlisten_port = 6432\n`);
  return file;
}

describe('PgBouncer database entries', () => {
  it('the cut-over repoints host, port and dbname and keeps every other option', () => {
    const file = configWith('app = host=10.0.0.1 port=5432 dbname=shop user=shop_app password=s3cret pool_size=30');
    const r = repointConfig(file, 'app', { host: 'target.example', port: 5433, database: 'shop2' });
    expect(r.previous).toBe('app = host=10.0.0.1 port=5432 dbname=shop user=shop_app password=s3cret pool_size=30');
    expect(poolerLine(file, 'app')).toBe('app = host=target.example port=5433 dbname=shop2 user=shop_app password=s3cret pool_size=30');
    expect(poolerLine(file, 'other')).toBe('other = host=10.0.0.9 dbname=x');
  });

  it('rollback restores the line the journal kept, with its masked password taken from the file', () => {
    const original = 'app = host=10.0.0.1 port=5432 dbname=shop user=shop_app password=s3cret pool_size=30';
    const file = configWith(original);
    const { previous } = repointConfig(file, 'app', { host: 'target.example', port: 5433, database: 'shop2' });
    registerSecret('s3cret');
    const journaled = redact(previous);
    expect(journaled).not.toContain('s3cret');
    restoreConfigLine(file, 'app', journaled);
    expect(poolerLine(file, 'app')).toBe(original);
    expect(readFileSync(file, 'utf8')).toContain('[pgbouncer]\nlisten_port = 6432');
  });

  it('a quoted password, masked in the journal, comes back quoted as the file has it', () => {
    const file = configWith("app = host=t port=1 dbname=d password='p4ss'");
    restoreConfigLine(file, 'app', redact("app = host=s port=2 dbname=d password='p4ss'"));
    expect(poolerLine(file, 'app')).toBe("app = host=s port=2 dbname=d password='p4ss'");
  });

  it('a quoted connect_query with spaces and a doubled quote is kept as written, through the repoint and back', () => {
    const original = "app = host=10.0.0.1 port=5432 dbname=shop connect_query='SET search_path = app, public; SELECT ''ok''' pool_mode=transaction";
    const file = configWith(original);
    const { next } = repointConfig(file, 'app', { host: 'target.example', port: 5433, database: 'shop' });
    expect(next).toBe("app = host=target.example port=5433 dbname=shop connect_query='SET search_path = app, public; SELECT ''ok''' pool_mode=transaction");
    restoreConfigLine(file, 'app', original);
    expect(poolerLine(file, 'app')).toBe(original);
  });

  it('reads options the way PgBouncer does: spaces around =, quoted values, doubled quotes', () => {
    expect(parseConnstr(" host = 10.0.0.1  port=5432 password='it''s a secret' ")).toEqual([
      { key: 'host', value: '10.0.0.1', raw: '10.0.0.1' },
      { key: 'port', value: '5432', raw: '5432' },
      { key: 'password', value: "it's a secret", raw: "'it''s a secret'" },
    ]);
    expect(parseConnstr("host=a connect_query='SELECT 1")).toBe('unterminated quote in the value of connect_query');
    expect(parseConnstr("host='' port=1")).toBe('empty value of host');
    // As in PgBouncer, a bare value may follow `=` after spaces: this host is "port=1".
    expect(parseConnstr('host= port=1')).toEqual([{ key: 'host', value: 'port=1', raw: 'port=1' }]);
    expect(parseConnstr('host')).toMatch(/expected key=value/);
    expect(connstrValue('plain')).toBe('plain');
    expect(connstrValue("my db's")).toBe("'my db''s'");
  });

  it('a quoted password is masked whole in the journal, and the rollback takes it from the file', () => {
    const original = "app = host=10.0.0.1 port=5432 dbname=shop user=u password='it''s a secret'";
    const journaled = redact(original);
    expect(journaled).toBe('app = host=10.0.0.1 port=5432 dbname=shop user=u password=***');
    const file = configWith(original);
    repointConfig(file, 'app', { host: 't', port: 1, database: 'shop' });
    restoreConfigLine(file, 'app', journaled);
    expect(poolerLine(file, 'app')).toBe(original);
  });

  it('finds the entry PgBouncer uses: comments skipped, a quoted name, the last of two entries', () => {
    const lines = ['[databases]', ';app = host=commented', '# app = host=also', 'app = host=first', '"app" = host=second', '[pgbouncer]', 'app = host=not-a-database'];
    expect(findDatabaseEntry(lines, 'app')).toMatchObject({ index: 4, options: [{ key: 'host', value: 'second' }] });
    expect(findDatabaseEntry(['[databases]', '* = host=fallback'], 'app')).toBe('there is no [databases] entry for app, only the * fallback');
    expect(findDatabaseEntry(['[databases]', "app = host='x"], 'app')).toBe('the entry of app cannot be read: unterminated quote in the value of host');
  });

  it('a line the switch could not rewrite is refused before the window (exit 3), the file untouched', () => {
    const file = configWith("* = host=10.0.0.1\napp = host=10.0.0.1 connect_query='SELECT 1");
    const before = readFileSync(file, 'utf8');
    expect(() => requirePoolerEntry(file, 'app')).toThrow(expect.objectContaining({ code: 'pgbouncer.config', exitCode: 3, message: expect.stringContaining('unterminated quote') }));
    expect(() => requirePoolerEntry(file, 'shop')).toThrow(expect.objectContaining({ exitCode: 3, message: expect.stringContaining('only the * fallback') }));
    const good = configWith('app = host=10.0.0.1 dbname=shop');
    expect(() => requirePoolerEntry(good, 'app', 'app = host=10.0.0.1 dbname=shop password=***')).not.toThrow();
    expect(() => requirePoolerEntry(good, 'app', "app = host='10.0.0.1")).toThrow(expect.objectContaining({ exitCode: 3, message: expect.stringContaining('journaled PgBouncer line') }));
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('the file is replaced whole: a symlink stays a symlink, the mode is kept, no temporary file is left, CRLF endings survive', () => {
    const file = configWith('app = host=10.0.0.1 port=5432 dbname=shop');
    const dir = path.dirname(file);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'));
    chmodSync(file, 0o664);
    const link = path.join(dir, 'linked.ini');
    symlinkSync(file, link);
    repointConfig(link, 'app', { host: 'my host', port: 5433, database: 'shop' });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o664);
    expect(readFileSync(file, 'utf8')).toContain("other = host=10.0.0.9 dbname=x\r\napp = host='my host' port=5433 dbname=shop\r\n");
    expect(poolerLine(file, 'app')).toBe("app = host='my host' port=5433 dbname=shop");
    expect(readdirSync(dir).sort()).toEqual(['linked.ini', 'pgbouncer.ini']);
    expect(existsSync(file)).toBe(true);
  });
});
