import type pg from 'pg';
import { S } from '../journal/journal.js';

/**
 * DDL detection on the source (cdc.ddlTrigger): an event trigger records every DDL command into
 * pgshift's control schema on the source, so `cdc status` reports a schema change with the fix
 * (apply it on the target) before — or as soon as — it breaks the apply. Logical replication does
 * not carry DDL; this is how it is never silently skipped.
 */
export async function installDdlTrigger(source: pg.Client): Promise<void> {
  await source.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
  await source.query(`CREATE TABLE IF NOT EXISTS ${S}.ddl_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), command text NOT NULL, object text NOT NULL)`);
  await source.query(`CREATE OR REPLACE FUNCTION ${S}.record_ddl() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        IF r.schema_name IS DISTINCT FROM 'pgshift' THEN
          INSERT INTO pgshift.ddl_log (command, object) VALUES (r.command_tag, coalesce(r.object_identity, ''));
        END IF;
      END LOOP;
    END $$`);
  const exists = await source.query(`SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgshift_ddl'`);
  if (!exists.rowCount) await source.query(`CREATE EVENT TRIGGER pgshift_ddl ON ddl_command_end EXECUTE FUNCTION ${S}.record_ddl()`);
}

export async function dropDdlTrigger(source: pg.Client): Promise<void> {
  await source.query('DROP EVENT TRIGGER IF EXISTS pgshift_ddl');
}

export async function readDdlLog(s: { source: pg.Client }): Promise<Array<{ at: string; command: string; object: string }>> {
  const t = await s.source.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pgshift' AND c.relname = 'ddl_log'`);
  if (!t.rowCount) return [];
  const r = await s.source.query<{ at: string; command: string; object: string }>(`SELECT at::text, command, object FROM ${S}.ddl_log ORDER BY id`);
  return r.rows;
}
