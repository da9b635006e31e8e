import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { redact, registerSecret } from '../../src/core/secrets.js';
import { poolerLine, repointConfig, restoreConfigLine } from '../../src/pg/pgbouncer.js';

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
});
