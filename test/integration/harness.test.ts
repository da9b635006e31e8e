import { describe, expect, it } from 'vitest';
import { sql, startServer } from '../harness/servers.js';

describe('test harness', () => {
  it('starts a 13 and a 17 side by side with logical WAL', async () => {
    const [a, b] = await Promise.all([startServer(13, 'h13'), startServer(17, 'h17')]);
    const [va] = await sql<{ v: string; w: string }>(a.url(), "SELECT current_setting('server_version_num') v, current_setting('wal_level') w");
    const [vb] = await sql<{ v: string; w: string }>(b.url(), "SELECT current_setting('server_version_num') v, current_setting('wal_level') w");
    expect(Number(va.v)).toBeGreaterThanOrEqual(130000);
    expect(Number(va.v)).toBeLessThan(140000);
    expect(Number(vb.v)).toBeGreaterThanOrEqual(170000);
    expect(va.w).toBe('logical');
    expect(vb.w).toBe('logical');
    expect(a.port).not.toBe(b.port);
  });

  it('starts the system 15', async () => {
    const c = await startServer(15, 'h15');
    const [v] = await sql<{ v: string }>(c.url(), 'SELECT current_setting($$server_version_num$$) v');
    expect(Math.floor(Number(v.v) / 10000)).toBe(15);
  });
});
