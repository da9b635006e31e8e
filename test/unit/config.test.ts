import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPlanFile, parsePlan } from '../../src/config/load.js';
import { planJsonSchemaText } from '../../src/config/json-schema.js';
import { ddlMode } from '../../src/config/schema.js';
import { readFileSync } from 'node:fs';
import { isPgshiftError, type PgshiftError } from '../../src/core/errors.js';
import { requireCutoverSettings } from '../../src/config/phase-settings.js';

const env = { SOURCE_URL: 'postgresql://admin:pw-one@src.example:5432/app', TARGET_URL: 'postgresql://admin:pw-two@tgt.example/app' };
const minimal = `version: 1
name: calls_db
source:
  url: \${SOURCE_URL}
target:
  url: \${TARGET_URL}
cutover: { fence: database }
`;

function error(fn: () => unknown): PgshiftError {
  try {
    fn();
  } catch (err) {
    if (isPgshiftError(err)) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('plan file', () => {
  it("with the DMS engine, refuses a group named like another group's batch-apply stream, naming the line", () => {
    const text = `${minimal}groups:\n  - { name: orders, tables: [public.orders] }\n  - { name: orders_batch, tables: ["public.*"] }\ncdc: { engine: dms }\n`;
    const e = error(() => parsePlan(text, 'migration.yml', env));
    expect(e.message).toBe("migration.yml:10: groups: with cdc.engine dms the name orders_batch is taken by group orders's batch-apply stream");
    expect(e.exitCode).toBe(2);
    expect(() => parsePlan(text.replace('engine: dms', 'engine: native'), 'migration.yml', env)).not.toThrow();
  });

  it('interpolates the environment and fills every default', () => {
    const plan = parsePlan(minimal, 'migration.yml', env);
    expect(plan.source.url).toBe(env.SOURCE_URL);
    expect(plan.snapshot).toBe('exported');
    expect(plan.groups).toEqual([{ name: 'all', tables: ['*.*'], exclude: [] }]);
    expect(plan.fullLoad).toMatchObject({ jobs: 4, splitTablesLargerThan: 10 * 1024 ** 3, maxPartsPerTable: 16, ownership: 'keep' });
    expect(plan.cdc).toMatchObject({ engine: 'native', maxLagBytes: 64 * 1024 ** 2 });
    expect(plan.cutover).toMatchObject({ fence: 'database', maxLagBytes: 1024 ** 2, timeoutSeconds: 60 });
  });

  it('follows DDL by default on the native engine, detects it on DMS, and maps the older cdc.ddlTrigger', () => {
    const mode = (cdc: string) => ddlMode(parsePlan(`${minimal}cdc: ${cdc}\n`, 'migration.yml', env));
    expect(mode('{}')).toBe('follow');
    expect(mode('{ engine: dms }')).toBe('detect');
    expect(mode('{ ddl: off }')).toBe('off');
    expect(mode('{ ddlTrigger: true }')).toBe('detect');
    expect(mode('{ ddlTrigger: false }')).toBe('off');
    const dms = error(() => parsePlan(`${minimal}cdc: { engine: dms, ddl: follow }\n`, 'migration.yml', env));
    expect(dms.message).toBe('migration.yml:8: cdc.ddl: follow replays DDL through native logical replication; the DMS tasks do not carry it');
    expect(dms.hint).toMatch(/cdc\.ddl: detect/);
    expect(error(() => parsePlan(`${minimal}cdc: { ddl: detect, ddlTrigger: true }\n`, 'migration.yml', env)).message).toMatch(/set either cdc\.ddl or the older cdc\.ddlTrigger, not both/);
  });

  it('names file, line and key of an unknown key, and what is allowed', () => {
    const e = error(() => parsePlan(minimal.replace('cutover:', 'fullLoad: { jobz: 3 }\ncutover:'), 'plan.yml', env));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('plan.yml:7: fullLoad: unknown key jobz');
    expect(e.hint).toMatch(/schema\/migration.schema.json/);
  });

  it('names the line of a value outside its choices', () => {
    const e = error(() => parsePlan(minimal.replace('fence: database', 'fence: hope'), 'plan.yml', env));
    expect(e.message).toBe('plan.yml:7: cutover.fence: must be one of "roles", "database", "pgbouncer"');
  });

  it('refuses an unset ${VAR} with the key that needs it', () => {
    const e = error(() => parsePlan(minimal, 'plan.yml', { SOURCE_URL: env.SOURCE_URL }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('plan.yml:6: target.url: environment variable TARGET_URL is not set');
  });

  it('reports malformed YAML with its line', () => {
    const e = error(() => parsePlan('version: 1\nname: [unclosed\n', 'bad.yml', env));
    expect(e.message).toMatch(/^bad.yml:\d+: malformed YAML/);
    expect(e.exitCode).toBe(2);
  });

  it('reports a missing plan file with how to get one', () => {
    const e = error(() => loadPlanFile('/nonexistent/migration.yml', env));
    expect(e.message).toBe('/nonexistent/migration.yml: cannot read the plan file (ENOENT)');
    expect(e.exitCode).toBe(2);
  });

  it('checks rules across keys', () => {
    expect(error(() => parsePlan(minimal.replace('snapshot', 'x') + 'snapshot: paused-replica\n', 'p.yml', env)).message).toMatch(/replicaUrl/);
  });

  it('says the type it expected for a value of the wrong type, and the bound for one out of range', () => {
    const wrong = (extra: string) => error(() => parsePlan(`${minimal}${extra}\n`, 'p.yml', env));
    expect(wrong('fullLoad: { jobs: four }').message).toBe('p.yml:8: fullLoad.jobs: expected a number, got the text "four"');
    expect(wrong('fullLoad: { jobs: 2.5 }').message).toBe('p.yml:8: fullLoad.jobs: expected an integer, got 2.5');
    expect(wrong('cdc: { ddlTrigger: maybe }').message).toBe('p.yml:8: cdc.ddlTrigger: expected true or false, got the text "maybe"');
    expect(wrong('groups: { a: 1 }').message).toBe('p.yml:8: groups: expected a list, got a mapping');
    expect(wrong('fullLoad: { jobs: 100 }').message).toBe('p.yml:8: fullLoad.jobs: must be at most 64, got 100');
    expect(wrong('groups: []').message).toBe('p.yml:8: groups: must be at least 1 entry');
    // A key that is absent is still "required".
    expect(wrong('groups:\n  - { name: a }').message).toBe('p.yml:9: groups.0.tables: is required');
  });

  it('needs only version, name, source and target: the cut-over settings are required by cutover and rollback alone', () => {
    const bare = minimal.replace('cutover: { fence: database }\n', '');
    const plan = parsePlan(bare, 'p.yml', env);
    expect(plan.cutover.fence).toBe('roles');
    for (const command of ['cutover', 'rollback'] as const) {
      const e = error(() => requireCutoverSettings(plan, command));
      expect(e.exitCode).toBe(2);
      expect(e.message).toBe(`cutover.roles: pgshift ${command} fences writes by role (cutover.fence: roles) and the plan lists no application roles; the other phases run without it`);
      expect(e.hint).toMatch(/cutover: \{ roles: \[app_rw\] \}.*fence: database/);
    }
    expect(() => requireCutoverSettings(parsePlan(`${bare}cutover: { roles: [app_rw] }\n`, 'p.yml', env), 'cutover')).not.toThrow();
    expect(() => requireCutoverSettings(parsePlan(`${bare}cutover: { fence: database }\n`, 'p.yml', env), 'cutover')).not.toThrow();
    const bouncer = parsePlan(`${bare}cutover: { fence: pgbouncer }\n`, 'p.yml', env);
    expect(error(() => requireCutoverSettings(bouncer, 'cutover')).message).toMatch(/^cutover.pgbouncer: pgshift cutover fences writes at PgBouncer/);
    const hard = parsePlan(`${bare}cutover: { fence: pgbouncer, pgbouncer: { adminUrl: "postgresql://a@b/pgbouncer", database: app } }\n`, 'p.yml', env);
    expect(error(() => requireCutoverSettings(hard, 'rollback')).message).toMatch(/^cutover.roles: pgshift rollback also fences direct connections by role/);
  });

  it('rejects a URL that is not postgresql://', () => {
    const e = error(() => parsePlan(minimal, 'p.yml', { ...env, SOURCE_URL: 'mysql://x@y/z' }));
    expect(e.message).toBe('p.yml:4: source.url: unsupported scheme mysql');
  });

  it('loads from a file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'plan-'));
    writeFileSync(path.join(dir, 'm.yml'), minimal);
    expect(loadPlanFile(path.join(dir, 'm.yml'), env).plan.name).toBe('calls_db');
  });

  it('has its JSON Schema committed and up to date', () => {
    expect(readFileSync('schema/migration.schema.json', 'utf8')).toBe(planJsonSchemaText());
  });
});
