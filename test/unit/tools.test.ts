import { describe, expect, it } from 'vitest';
import { isPgshiftError } from '../../src/core/errors.js';
import { requireDumpForSource } from '../../src/pg/tools.js';

describe('pg_dump against the source major', () => {
  it('a pg_dump older than the source is refused, naming both versions and where to point pgshift', () => {
    const tool = { path: '/usr/lib/postgresql/15/bin/pg_dump', major: 15, version: 'pg_dump (PostgreSQL) 15.14' };
    expect(() => requireDumpForSource(tool, 12)).not.toThrow();
    expect(() => requireDumpForSource(tool, 15)).not.toThrow();
    let err: unknown;
    try {
      requireDumpForSource(tool, 18);
    } catch (e) {
      err = e;
    }
    expect(isPgshiftError(err) && [err.code, err.exitCode, err.message, err.hint]).toEqual([
      'tool.too-old',
      2,
      '/usr/lib/postgresql/15/bin/pg_dump is PostgreSQL 15 but the source server is PostgreSQL 18; pg_dump cannot dump a newer server',
      'install the PostgreSQL 18 (or newer) client tools and set fullLoad.pgBinDir or PGSHIFT_PG_BIN to their bin directory',
    ]);
  });
});
