import { quoteIdent, quoteLiteral } from '../core/ident.js';
import { CONTROL, CONTROL_SCHEMA_SQL } from '../journal/journal.js';

/**
 * The SQL of DDL following, kept apart from the code that decides when to run it (ddl.ts).
 *
 * Source: three event triggers (ddl_command_start for DROP INDEX, sql_drop, ddl_command_end) call
 * one SECURITY DEFINER function. It never raises: any error is caught and written to ddl_log, so
 * an application's DDL cannot fail because of pgshift. It finds the statement that fired it in
 * current_query() (a string may hold several statements), decides which stream carries the rows
 * the statement concerns (by the publications those tables are in), and inserts the statement into
 * that stream's queue table — itself in the stream's publication, so the row travels in commit
 * order with the data around it. A statement that concerns no replicated rows (types, functions,
 * views, tables of no group) is sent to every stream and run by the first to reach it. A new table
 * matching a group joins the group's publication in the same transaction.
 *
 * Target: the queue table's BEFORE INSERT trigger, ENABLE ALWAYS so that the apply worker fires it,
 * runs the statement with the source session's search_path and role, and records the outcome in
 * the row instead of raising (a failed statement is reported, the stream goes on).
 */

const SAFE_PATH = `SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on`;

/** Shared objects of the source side (idempotent; the event triggers are created by the caller). */
// Long on purpose: SQL and PL/pgSQL text, read as one script in the order the server runs it.
export function captureObjectsSql(): string[] {
  return [
    CONTROL_SCHEMA_SQL,
    `CREATE SEQUENCE IF NOT EXISTS ${CONTROL}.ddl_id`,
    // Which streams exist, their queue and the plan's patterns (regular expressions) for new tables.
    `CREATE TABLE IF NOT EXISTS ${CONTROL}.ddl_stream (
       publication text PRIMARY KEY,
       stream text NOT NULL,
       migration text NOT NULL,
       queue text,
       position int NOT NULL,
       include jsonb NOT NULL DEFAULT '[]',
       exclude jsonb NOT NULL DEFAULT '[]',
       mode text NOT NULL)`,
    // What is not carried (or, with cdc.ddl detect, every change), until acknowledged.
    `CREATE TABLE IF NOT EXISTS ${CONTROL}.ddl_log (
       id bigint PRIMARY KEY DEFAULT nextval('${CONTROL}.ddl_id'),
       at timestamptz NOT NULL DEFAULT now(),
       command text NOT NULL,
       object text NOT NULL)`,
    `ALTER TABLE ${CONTROL}.ddl_log ADD COLUMN IF NOT EXISTS statement text, ADD COLUMN IF NOT EXISTS stream text,
       ADD COLUMN IF NOT EXISTS reason text NOT NULL DEFAULT 'detected', ADD COLUMN IF NOT EXISTS detail text,
       ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz`,

    // The statement without its leading blanks and comments.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_head(s text) RETURNS text LANGUAGE plpgsql IMMUTABLE ${SAFE_PATH} AS $f$
     DECLARE i int; depth int;
     BEGIN
       LOOP
         s := ltrim(s, E' \\t\\r\\n\\f');
         IF left(s, 2) = '--' THEN
           i := strpos(s, E'\\n');
           IF i = 0 THEN RETURN ''; END IF;
           s := substr(s, i + 1);
         ELSIF left(s, 2) = '/*' THEN
           i := 3; depth := 1;
           WHILE depth > 0 AND i <= length(s) LOOP
             IF substr(s, i, 2) = '/*' THEN depth := depth + 1; i := i + 2;
             ELSIF substr(s, i, 2) = '*/' THEN depth := depth - 1; i := i + 2;
             ELSE i := i + 1; END IF;
           END LOOP;
           s := substr(s, i);
         ELSE
           RETURN s;
         END IF;
       END LOOP;
     END $f$`,

    // The first words of a statement, upper-cased: enough to match it with its command tag.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_words(s text) RETURNS text[] LANGUAGE sql IMMUTABLE ${SAFE_PATH} AS $f$
       SELECT array_agg(w ORDER BY n) FROM (
         SELECT w, n FROM regexp_split_to_table(upper(left(${CONTROL}.ddl_head(s), 400)), '[^A-Z_]+') WITH ORDINALITY AS t(w, n)
          WHERE w <> '' ORDER BY n LIMIT 12) words
     $f$`,

    // A query string split into statements at the semicolons outside literals, quoted names,
    // dollar quotes and comments: byte offsets (start, length) of each. Bytes, not characters:
    // positions in a bytea cost O(1), and every character that matters here is ASCII, which UTF-8
    // never uses inside a multibyte character.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_split(q text) RETURNS int[] LANGUAGE plpgsql STABLE ${SAFE_PATH} AS $f$
     DECLARE
       b bytea := convert_to(q, 'UTF8');
       n int := length(b);
       i int := 0; j int; k int; c int; depth int;
       start int := 0;
       esc boolean;
       legacy boolean := current_setting('standard_conforming_strings', true) = 'off';
       tag bytea;
       out int[] := '{}';
     BEGIN
       WHILE i < n LOOP
         c := get_byte(b, i);
         IF c = 39 THEN
           esc := legacy OR (i > 0 AND get_byte(b, i - 1) IN (69, 101) AND (i = 1 OR NOT (get_byte(b, i - 2) BETWEEN 48 AND 57 OR get_byte(b, i - 2) BETWEEN 65 AND 90 OR get_byte(b, i - 2) BETWEEN 97 AND 122 OR get_byte(b, i - 2) IN (95, 36) OR get_byte(b, i - 2) >= 128)));
           i := i + 1;
           WHILE i < n LOOP
             c := get_byte(b, i);
             IF esc AND c = 92 THEN i := i + 2;
             ELSIF c = 39 AND i + 1 < n AND get_byte(b, i + 1) = 39 THEN i := i + 2;
             ELSIF c = 39 THEN EXIT;
             ELSE i := i + 1; END IF;
           END LOOP;
           i := i + 1;
         ELSIF c = 34 THEN
           i := i + 1;
           WHILE i < n LOOP
             IF get_byte(b, i) = 34 AND i + 1 < n AND get_byte(b, i + 1) = 34 THEN i := i + 2;
             ELSIF get_byte(b, i) = 34 THEN EXIT;
             ELSE i := i + 1; END IF;
           END LOOP;
           i := i + 1;
         ELSIF c = 45 AND i + 1 < n AND get_byte(b, i + 1) = 45 THEN
           WHILE i < n AND get_byte(b, i) <> 10 LOOP i := i + 1; END LOOP;
         ELSIF c = 47 AND i + 1 < n AND get_byte(b, i + 1) = 42 THEN
           depth := 1; i := i + 2;
           WHILE i < n AND depth > 0 LOOP
             IF get_byte(b, i) = 47 AND i + 1 < n AND get_byte(b, i + 1) = 42 THEN depth := depth + 1; i := i + 2;
             ELSIF get_byte(b, i) = 42 AND i + 1 < n AND get_byte(b, i + 1) = 47 THEN depth := depth - 1; i := i + 2;
             ELSE i := i + 1; END IF;
           END LOOP;
         ELSIF c = 36 AND NOT (i > 0 AND (get_byte(b, i - 1) BETWEEN 48 AND 57 OR get_byte(b, i - 1) BETWEEN 65 AND 90 OR get_byte(b, i - 1) BETWEEN 97 AND 122 OR get_byte(b, i - 1) IN (95, 36) OR get_byte(b, i - 1) >= 128))
               AND NOT (i + 1 < n AND get_byte(b, i + 1) BETWEEN 48 AND 57) THEN
           -- $tag$ … $tag$ (a $ inside a name or a $1 parameter is not a quote)
           j := i + 1;
           WHILE j < n AND (get_byte(b, j) BETWEEN 48 AND 57 OR get_byte(b, j) BETWEEN 65 AND 90 OR get_byte(b, j) BETWEEN 97 AND 122 OR get_byte(b, j) = 95 OR get_byte(b, j) >= 128) LOOP j := j + 1; END LOOP;
           IF j < n AND get_byte(b, j) = 36 THEN
             tag := substring(b FROM i + 1 FOR j - i + 1);
             k := position(tag IN substring(b FROM j + 2));
             i := CASE WHEN k = 0 THEN n ELSE j + k + length(tag) END;
           ELSE
             i := i + 1;
           END IF;
         ELSIF c = 59 THEN
           out := out || ARRAY[start, i - start];
           i := i + 1;
           start := i;
         ELSE
           i := i + 1;
         END IF;
       END LOOP;
       IF start < n THEN out := out || ARRAY[start, n - start]; END IF;
       RETURN out;
     END $f$`,

    // The statement of the query string that fired the trigger: the next one (after those already
    // matched in this string, remembered per session) whose first words fit the command tag and
    // that names one of the objects. NULL when none does: DDL run by a function or a DO block. A
    // string is split once (cached for the session), however many statements it holds.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_statement(tag text, names text[], advance boolean) RETURNS text LANGUAGE plpgsql ${SAFE_PATH} AS $f$
     DECLARE
       q text := current_query();
       b bytea;
       bounds int[]; part text; words text[]; tw text[] := string_to_array(tag, ' ');
       key text; cached text; cur text; first int := 1; nm text; ok boolean;
     BEGIN
       IF q IS NULL THEN RETURN NULL; END IF;
       key := md5(q || statement_timestamp()::text);
       IF strpos(rtrim(q, E' \\t\\r\\n\\f;'), ';') = 0 THEN
         bounds := ARRAY[0, octet_length(q)];
       ELSE
         cached := current_setting('pgshift.ddl_split', true);
         IF cached LIKE key || ':%' THEN bounds := string_to_array(split_part(cached, ':', 2), ',')::int[];
         ELSE
           bounds := ${CONTROL}.ddl_split(q);
           PERFORM set_config('pgshift.ddl_split', key || ':' || array_to_string(bounds, ','), false);
         END IF;
       END IF;
       b := convert_to(q, 'UTF8');
       cur := current_setting('pgshift.ddl_cursor', true);
       IF cur LIKE key || '|%' THEN first := split_part(cur, '|', 2)::int + 1; END IF;
       FOR i IN first .. coalesce(array_length(bounds, 1), 0) / 2 LOOP
         part := rtrim(convert_from(substring(b FROM bounds[2 * i - 1] + 1 FOR bounds[2 * i]), 'UTF8'), E' \\t\\r\\n\\f');
         words := ${CONTROL}.ddl_words(part);
         CONTINUE WHEN words IS NULL OR words[1] IS DISTINCT FROM tw[1];
         CONTINUE WHEN array_length(tw, 1) > 1 AND tag <> 'SELECT INTO' AND NOT (tw[2] = ANY (words[1:6]));
         IF cardinality(names) > 0 THEN
           ok := false;
           -- A name with a double quote in it is written with the quote doubled.
           FOREACH nm IN ARRAY names || ARRAY(SELECT replace(x, '"', '""') FROM unnest(names) x WHERE strpos(x, '"') > 0) LOOP
             IF lower(part) ~ ('(^|[^[:alnum:]_$])' || regexp_replace(lower(nm), '([^[:alnum:]_ ])', '\\\\\\1', 'g') || '($|[^[:alnum:]_$])') THEN ok := true; EXIT; END IF;
           END LOOP;
           CONTINUE WHEN NOT ok;
         END IF;
         IF advance THEN PERFORM set_config('pgshift.ddl_cursor', key || '|' || i, false); END IF;
         RETURN rtrim(part, ';');
       END LOOP;
       RETURN NULL;
     END $f$`,

    // The relations a statement names (among its first \`words\` words), resolved as the
    // application's session resolves them: what DROP INDEX and ALTER TABLE will touch, known before
    // they run (at sql_drop the index is gone; at ddl_command_end the columns are already added).
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_named(stmt text, app_path text, words int) RETURNS oid[] LANGUAGE plpgsql ${SAFE_PATH} AS $f$
     DECLARE m text; found oid[] := '{}'; t regclass;
     BEGIN
       IF stmt IS NULL THEN RETURN '{}'; END IF;
       PERFORM pg_catalog.set_config('search_path', app_path, true);
       FOR m IN SELECT x[1] FROM pg_catalog.regexp_matches(${CONTROL}.ddl_head(stmt), '(?:"(?:[^"]|"")+"|[^\\s,;()"])+', 'g') AS x LIMIT words LOOP
         BEGIN
           t := pg_catalog.to_regclass(m);
         EXCEPTION WHEN OTHERS THEN
           t := NULL;
         END;
         IF t IS NOT NULL THEN found := pg_catalog.array_append(found, t::oid); END IF;
       END LOOP;
       PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
       RETURN found;
     END $f$`,

    // Before ALTER TABLE: each table it names (and their children) with its highest column number,
    // so that ddl_command_end knows which columns the statement added.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_columns_before(rels oid[]) RETURNS text LANGUAGE sql STABLE ${SAFE_PATH} AS $f$
       WITH RECURSIVE tree(oid) AS (SELECT unnest(rels) UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
       SELECT string_agg(c.oid || ':' || (SELECT coalesce(max(a.attnum), 0) FROM pg_attribute a WHERE a.attrelid = c.oid), ',')
         FROM tree JOIN pg_class c ON c.oid = tree.oid WHERE c.relkind = 'r'
     $f$`,

    // After ALTER TABLE: the columns it added to tables holding rows. A column filled from a
    // constant (a "missing value", PostgreSQL 11+) travels with the statement, so the target gives
    // its rows the source's value (DEFAULT now() is evaluated once, on each side at its own time);
    // one filled row by row (a volatile default, an identity) cannot be computed again.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_added_columns(before text, OUT fills jsonb, OUT differ text[]) LANGUAGE plpgsql ${SAFE_PATH} AS $f$
     DECLARE r record; has_rows boolean; expr text;
     BEGIN
       fills := '[]'; differ := '{}';
       FOR r IN
         SELECT format('%I.%I', n.nspname, c.relname) AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
                coalesce((to_jsonb(a) ->> 'atthasmissing')::boolean, false) AS has_missing, to_jsonb(a) -> 'attmissingval' ->> 0 AS missing,
                coalesce(to_jsonb(a) ->> 'attidentity', '') <> '' AS identity, pg_get_expr(d.adbin, d.adrelid) AS def
           FROM unnest(string_to_array(before, ',')) b(pair)
           JOIN pg_class c ON c.oid = split_part(b.pair, ':', 1)::oid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > split_part(b.pair, ':', 2)::int AND NOT a.attisdropped
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE coalesce(to_jsonb(a) ->> 'attgenerated', '') = ''
       LOOP
         -- A default without a function call (literals and casts only) gives the same value on both sides.
         expr := regexp_replace(regexp_replace(coalesce(r.def, ''), '''([^'']|'''')*''', '''''', 'g'), '::[[:alnum:]_ ."]+(\\([0-9, ]+\\))?(\\[\\])*', '', 'g');
         IF r.has_missing THEN
           fills := fills || jsonb_build_object('table', r.tbl, 'column', r.col, 'type', r.type, 'value', r.missing);
         ELSIF r.identity OR expr ~ '[[:alnum:]_"]\\s*\\(' OR expr ~* '\\m(current_[a-z]+|localtime|localtimestamp|session_user|user)\\M' THEN
           EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', r.tbl) INTO has_rows;
           IF has_rows THEN differ := differ || format('%s.%I', r.tbl, r.col); END IF;
         END IF;
       END LOOP;
     END $f$`,

    // Objects of replication machinery that is not the application's: AWS DMS creates its heartbeat
    // and DDL-capture objects (awsdms_*) on the source.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_foreign(identity text) RETURNS boolean LANGUAGE sql IMMUTABLE ${SAFE_PATH} AS $f$
       SELECT coalesce(identity ~ '(^|\.)"?awsdms_', false)
     $f$`,

    // Tables whose rows a command concerns, from one row of pg_event_trigger_ddl_commands().
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_tables_of(cls oid, obj oid) RETURNS oid[] LANGUAGE sql STABLE ${SAFE_PATH} AS $f$
       SELECT coalesce(CASE cls
         WHEN 'pg_class'::regclass THEN (SELECT CASE WHEN c.relkind IN ('r', 'p') THEN ARRAY[c.oid]
                                                     WHEN c.relkind IN ('i', 'I') THEN ARRAY(SELECT indrelid FROM pg_index WHERE indexrelid = c.oid) END
                                           FROM pg_class c WHERE c.oid = obj)
         WHEN 'pg_constraint'::regclass THEN (SELECT ARRAY[conrelid] FROM pg_constraint WHERE oid = obj AND conrelid <> 0)
         WHEN 'pg_trigger'::regclass THEN (SELECT ARRAY[tgrelid] FROM pg_trigger WHERE oid = obj)
         WHEN 'pg_policy'::regclass THEN (SELECT ARRAY[polrelid] FROM pg_policy WHERE oid = obj)
         WHEN 'pg_rewrite'::regclass THEN (SELECT ARRAY[ev_class] FROM pg_rewrite WHERE oid = obj)
         WHEN 'pg_attrdef'::regclass THEN (SELECT ARRAY[adrelid] FROM pg_attrdef WHERE oid = obj)
       END, '{}')
     $f$`,

    // CREATE TABLE AS / SELECT INTO replayed as an empty table: its rows come when it joins the stream.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_table_definition(t oid) RETURNS text LANGUAGE sql STABLE ${SAFE_PATH} AS $f$
       SELECT format('CREATE %sTABLE %I.%I (%s)%s%s%s',
         CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END, n.nspname, c.relname,
         (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
                   || coalesce((SELECT format(' COLLATE %I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                 WHERE co.oid = a.attcollation AND a.attcollation <> ty.typcollation), ''), ', ' ORDER BY a.attnum)
            FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
         (SELECT ' USING ' || quote_ident(am.amname) FROM pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap'),
         CASE WHEN c.reloptions IS NOT NULL THEN format(' WITH (%s)', array_to_string(c.reloptions, ', ')) ELSE '' END,
         (SELECT ' TABLESPACE ' || quote_ident(spcname) FROM pg_tablespace WHERE oid = c.reltablespace))
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t
     $f$`,

    // The stream (publication) whose patterns place a table, in plan order; NULL for no group.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_group_of(t oid) RETURNS text LANGUAGE sql STABLE ${SAFE_PATH} AS $f$
       SELECT s.publication FROM ${CONTROL}.ddl_stream s, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = t AND s.mode = 'follow'
          AND EXISTS (SELECT 1 FROM jsonb_array_elements(s.include) p WHERE n.nspname ~ (p->>'schema') AND c.relname ~ (p->>'name'))
          AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(s.exclude) p WHERE n.nspname ~ (p->>'schema') AND c.relname ~ (p->>'name'))
        ORDER BY s.position LIMIT 1
     $f$`,

    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_not_carried(tag text, objects text[], stmt text, stream text, reason text, detail text) RETURNS void LANGUAGE sql ${SAFE_PATH} AS $f$
       INSERT INTO ${CONTROL}.ddl_log (command, object, statement, stream, reason, detail)
       VALUES (tag, coalesce(array_to_string(objects, ', '), ''), coalesce(stmt, current_query()), stream, reason, detail)
     $f$`,

    // Published tables whose key or replica identity a command took away (DROP CONSTRAINT of the
    // primary key, DROP INDEX of the identity index, REPLICA IDENTITY NOTHING, a CASCADE): in a
    // publication, every UPDATE and DELETE of the application on them would now fail on the source.
    // They leave their streams in the command's own transaction, recorded as not carried until a
    // resync copies them again. Every published table is looked at, not only the command's: a
    // dropped index no longer names its table.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_protect_writes(tag text, stmt text) RETURNS void LANGUAGE plpgsql ${SAFE_PATH} AS $f$
     DECLARE
       t record; leaving text;
     BEGIN
       FOR t IN
         SELECT format('%I.%I', n.nspname, c.relname) AS name, array_agg(p.pubname::text ORDER BY p.pubname) AS published
           FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
           JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE p.pubname LIKE 'pgshift\\_%' AND (p.pubupdate OR p.pubdelete)
            AND NOT (c.relreplident = 'f' OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary AND x.indimmediate))
                     OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident)))
          GROUP BY n.nspname, c.relname
       LOOP
         PERFORM set_config('pgshift.ddl_busy', 'on', true);
         FOREACH leaving IN ARRAY t.published LOOP
           EXECUTE format('ALTER PUBLICATION %I DROP TABLE %s', leaving, t.name);
         END LOOP;
         PERFORM set_config('pgshift.ddl_busy', '', true);
         PERFORM ${CONTROL}.ddl_not_carried(tag, ARRAY[t.name], stmt, (SELECT stream FROM ${CONTROL}.ddl_stream WHERE publication = t.published[1]), 'identity-lost', t.name);
       END LOOP;
     END $f$`,

    recordFunction(),

    // The event trigger function. Captures the application's search_path before anything else,
    // then works under a safe one; never raises.
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_capture() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $f$
     DECLARE app_path text; code text; msg text;
     BEGIN
       app_path := pg_catalog.current_setting('search_path');
       BEGIN
         PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
         PERFORM ${CONTROL}.ddl_record(tg_event, tg_tag, app_path);
         PERFORM pg_catalog.set_config('search_path', app_path, true);
       EXCEPTION WHEN OTHERS THEN
         -- The subtransaction is undone (a table that joined a publication leaves it again).
         GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
         BEGIN
           PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
           INSERT INTO ${CONTROL}.ddl_log (command, object, statement, reason, detail)
           VALUES (tg_tag, '', pg_catalog.current_query(), 'capture-error', pg_catalog.concat(code, ': ', msg));
           PERFORM pg_catalog.set_config('search_path', app_path, true);
         EXCEPTION WHEN OTHERS THEN
           RAISE WARNING 'pgshift could not record a % statement for the migration: %', tg_tag, SQLERRM;
         END;
       END;
     END $f$`,
    `REVOKE ALL ON FUNCTION ${CONTROL}.ddl_record(text, text, text) FROM PUBLIC`,
    `REVOKE ALL ON FUNCTION ${CONTROL}.ddl_capture() FROM PUBLIC`,
  ];
}

// Long on purpose: one PL/pgSQL function, whose steps share its variables.
function recordFunction(): string {
  return `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_record(ev text, tag text, app_path text) RETURNS void LANGUAGE plpgsql ${SAFE_PATH} AS $f$
  DECLARE
    r record;
    touched oid[] := '{}';   -- tables whose rows the command concerns
    pubs text[] := '{}';     -- publications carrying those rows
    names text[] := '{}';    -- object names: the statement must mention one
    objects text[] := '{}';  -- identities, for reports
    created oid;             -- the table of CREATE TABLE AS / SELECT INTO
    seen int := 0; skipped int := 0;
    stmt text; apply text; note text; joins text[] := '{}';
    follow boolean;
    t record; pub text; q text; id bigint; who text;
    fills jsonb; differ text[];  -- columns the statement added (ddl_added_columns)
  BEGIN
    IF current_setting('pgshift.ddl_busy', true) = 'on' OR current_setting('application_name') LIKE 'pgshift%' THEN RETURN; END IF;
    IF tag IN ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION', 'CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION', 'REINDEX') THEN RETURN; END IF;
    IF NOT EXISTS (SELECT 1 FROM ${CONTROL}.ddl_stream) THEN RETURN; END IF;
    follow := EXISTS (SELECT 1 FROM ${CONTROL}.ddl_stream WHERE mode = 'follow');

    IF ev = 'ddl_command_start' THEN
      stmt := ${CONTROL}.ddl_statement(tag, NULL, false);
      IF tag = 'DROP INDEX' THEN
        -- Kept for the session: DROP INDEX CONCURRENTLY reaches sql_drop in a later transaction.
        PERFORM set_config('pgshift.ddl_index_tables',
          array_to_string(ARRAY(SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = ANY (${CONTROL}.ddl_named(stmt, app_path, NULL))), ','), false);
      ELSE
        PERFORM set_config('pgshift.ddl_columns', coalesce(${CONTROL}.ddl_columns_before(${CONTROL}.ddl_named(stmt, app_path, 8)), ''), false);
      END IF;
      RETURN;
    END IF;

    IF ev = 'sql_drop' THEN
      -- ALTER TABLE … DROP COLUMN and the like are recorded at ddl_command_end.
      IF tag NOT LIKE 'DROP %' THEN RETURN; END IF;
      PERFORM set_config('pgshift.ddl_dropped', 'on', true);
      FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        seen := seen + 1;
        IF r.is_temporary OR r.schema_name IN ('pgshift', 'pg_toast') OR (r.object_type = 'schema' AND r.object_name = 'pgshift') OR ${CONTROL}.ddl_foreign(r.object_identity) THEN
          skipped := skipped + 1;
          CONTINUE;
        END IF;
        IF r.object_type = 'publication relation' THEN
          pubs := pubs || r.address_args[1];
        ELSIF r.object_type IN ('table column', 'table constraint', 'trigger', 'policy', 'rule', 'default value') THEN
          touched := touched || (SELECT array_remove(ARRAY[to_regclass(format('%I.%I', r.address_names[1], r.address_names[2]))::oid], NULL));
        ELSIF r.object_type = 'index' AND coalesce(current_setting('pgshift.ddl_index_tables', true), '') <> '' THEN
          touched := touched || string_to_array(current_setting('pgshift.ddl_index_tables', true), ',')::oid[];
        END IF;
        IF r.original THEN
          objects := objects || r.object_identity;
          names := names || r.address_names[array_upper(r.address_names, 1)];
        END IF;
      END LOOP;
      PERFORM set_config('pgshift.ddl_index_tables', '', false);
    ELSE
      IF tag LIKE 'DROP %' THEN
        -- Recorded at sql_drop; a DROP that dropped nothing only moves past its statement.
        IF current_setting('pgshift.ddl_dropped', true) = 'on' THEN PERFORM set_config('pgshift.ddl_dropped', '', true);
        ELSE PERFORM ${CONTROL}.ddl_statement(tag, NULL, true);
        END IF;
        RETURN;
      END IF;
      FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        seen := seen + 1;
        IF r.in_extension OR r.schema_name IN ('pgshift', 'pg_toast') OR r.schema_name LIKE 'pg\\_temp%'
           OR (r.object_type = 'schema' AND r.object_identity = 'pgshift') OR ${CONTROL}.ddl_foreign(r.object_identity)
           OR (r.classid = 'pg_class'::regclass AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.objid AND c.relpersistence = 't')) THEN
          skipped := skipped + 1;
          CONTINUE;
        END IF;
        objects := objects || coalesce(r.object_identity, lower(r.object_type));
        IF r.objid IS NOT NULL AND r.objid <> 0 THEN
          names := names || (SELECT a.object_names[array_upper(a.object_names, 1)] FROM pg_identify_object_as_address(r.classid, r.objid, r.objsubid) a);
          touched := touched || ${CONTROL}.ddl_tables_of(r.classid, r.objid);
          IF r.command_tag IN ('CREATE TABLE AS', 'SELECT INTO') AND r.classid = 'pg_class'::regclass THEN created := r.objid; END IF;
        END IF;
      END LOOP;
    END IF;
    IF seen = 0 OR skipped = seen THEN
      -- Nothing happened (IF NOT EXISTS), or only to temporary objects or pgshift's own.
      PERFORM ${CONTROL}.ddl_statement(tag, NULL, true);
      RETURN;
    END IF;
    names := array_remove(names, NULL);
    stmt := ${CONTROL}.ddl_statement(tag, names, true);
    PERFORM ${CONTROL}.ddl_protect_writes(tag, stmt);

    IF NOT follow THEN
      PERFORM ${CONTROL}.ddl_not_carried(tag, objects, stmt, NULL, 'detected', NULL);
      RETURN;
    END IF;

    -- Tables (and their inheritance children: ALTER TABLE recurses) → the publications of their rows.
    FOR t IN
      WITH RECURSIVE tree(oid) AS (SELECT unnest(touched) UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
      SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name, c.relkind, c.relpersistence,
             (SELECT array_agg(p.pubname::text) FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
               WHERE pr.prrelid = c.oid AND p.pubname LIKE 'pgshift\\_%') AS published,
             c.relreplident = 'f' OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary AND x.indimmediate))
               OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident)) AS identity
        FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace
    LOOP
      IF t.published IS NOT NULL THEN
        pubs := pubs || t.published;
      ELSIF t.relkind = 'r' AND t.relpersistence = 'p' THEN
        -- A table of a group that no stream carries yet (new, renamed into a pattern, made LOGGED,
        -- given a key) joins its group's publication now; its rows are copied when the target's
        -- subscription is refreshed. Without a replica identity it waits: in a publication, its
        -- UPDATE and DELETE would fail on the source.
        pub := ${CONTROL}.ddl_group_of(t.oid);
        IF pub IS NOT NULL AND EXISTS (SELECT 1 FROM ${CONTROL}.ddl_log l WHERE l.reason = 'identity-lost' AND l.detail = t.name) THEN
          -- It left its stream when it lost its key, and the target holds its older rows: only a
          -- resync (cleared and copied at a new snapshot) brings it back.
          NULL;
        ELSIF pub IS NOT NULL AND t.identity THEN
          PERFORM set_config('pgshift.ddl_busy', 'on', true);
          EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s', pub, t.name);
          PERFORM set_config('pgshift.ddl_busy', '', true);
          pubs := pubs || pub;
          joins := joins || t.name;
        ELSIF pub IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${CONTROL}.ddl_log l WHERE l.reason = 'no-identity' AND l.detail = t.name AND l.acknowledged_at IS NULL) THEN
          PERFORM ${CONTROL}.ddl_not_carried(tag, ARRAY[t.name], stmt, (SELECT stream FROM ${CONTROL}.ddl_stream WHERE publication = pub), 'no-identity', t.name);
        END IF;
      END IF;
    END LOOP;
    pubs := ARRAY(SELECT DISTINCT unnest(pubs) ORDER BY 1);

    IF stmt IS NULL AND ev = 'sql_drop' AND current_query() ~* '\\m(CREATE|ALTER)\\s+EXTENSION\\M' THEN
      -- An extension's script dropping its own objects: the extension's statement carries it.
      RETURN;
    END IF;
    IF stmt IS NULL THEN
      PERFORM ${CONTROL}.ddl_not_carried(tag, objects, NULL, NULL, 'in-function', NULL);
      RETURN;
    END IF;
    IF cardinality(pubs) > 1 THEN
      PERFORM ${CONTROL}.ddl_not_carried(tag, objects, stmt, NULL, 'several-streams',
        (SELECT string_agg(coalesce(s.stream, p), ', ' ORDER BY p) FROM unnest(pubs) p LEFT JOIN ${CONTROL}.ddl_stream s ON s.publication = p));
      RETURN;
    END IF;
    IF cardinality(pubs) = 1 AND NOT EXISTS (SELECT 1 FROM ${CONTROL}.ddl_stream WHERE publication = pubs[1] AND queue IS NOT NULL) THEN
      PERFORM ${CONTROL}.ddl_not_carried(tag, objects, stmt, NULL, 'no-queue', pubs[1]);
      RETURN;
    END IF;

    IF tag = 'ALTER TABLE' AND coalesce(current_setting('pgshift.ddl_columns', true), '') <> '' THEN
      SELECT a.fills, a.differ INTO fills, differ FROM ${CONTROL}.ddl_added_columns(current_setting('pgshift.ddl_columns', true)) a;
      PERFORM set_config('pgshift.ddl_columns', '', false);
      IF cardinality(differ) > 0 THEN
        PERFORM ${CONTROL}.ddl_not_carried(tag, objects, stmt, (SELECT stream FROM ${CONTROL}.ddl_stream WHERE publication = pubs[1]), 'rows-differ', array_to_string(differ, ', '));
      END IF;
    END IF;

    -- What the target runs: the statement, inside the apply worker's transaction.
    apply := ${CONTROL}.ddl_head(stmt);
    IF tag = 'CREATE INDEX' THEN
      apply := regexp_replace(apply, '^(CREATE\\s+(UNIQUE\\s+)?INDEX\\s+)CONCURRENTLY\\M\\s*', '\\1', 'i');
    ELSIF tag = 'DROP INDEX' THEN
      apply := regexp_replace(apply, '^(DROP\\s+INDEX\\s+)CONCURRENTLY\\M\\s*', '\\1', 'i');
    ELSIF tag = 'ALTER TABLE' AND apply ~* '\\mDETACH\\s+PARTITION\\M' THEN
      IF apply ~* '\\mFINALIZE\\s*$' THEN
        apply := NULL;
        note := 'the target detached the partition at once';
      ELSE
        apply := regexp_replace(apply, '\\s+CONCURRENTLY\\s*$', '', 'i');
      END IF;
    ELSIF tag IN ('CREATE TABLE AS', 'SELECT INTO') AND created IS NOT NULL THEN
      apply := ${CONTROL}.ddl_table_definition(created);
      note := 'created empty: its rows are copied when it joins the stream';
    END IF;

    id := nextval('${CONTROL}.ddl_id');
    who := CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END;
    FOR q IN SELECT s.queue FROM ${CONTROL}.ddl_stream s
              WHERE s.queue IS NOT NULL AND s.mode = 'follow' AND (cardinality(pubs) = 0 OR s.publication = pubs[1]) LOOP
      EXECUTE format('INSERT INTO ${CONTROL}.%I (id, at, command, object, statement, apply, search_path, role, shared, joins, note, fills)
                      VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)', q)
        USING id, tag, array_to_string(objects, ', '), stmt, apply, app_path, who, cardinality(pubs) = 0, nullif(joins, '{}'), note, nullif(fills, '[]');
    END LOOP;
  END $f$`;
}

/** The DDL queue of one stream (same shape on both sides; the last columns are the target's). */
export function queueTableSql(queue: string): string[] {
  const q = `${CONTROL}.${quoteIdent(queue)}`;
  return [
    CONTROL_SCHEMA_SQL,
    `CREATE TABLE IF NOT EXISTS ${q} (
       id bigint PRIMARY KEY,
       at timestamptz NOT NULL,
       command text NOT NULL,
       object text NOT NULL,
       statement text NOT NULL,
       apply text,
       search_path text NOT NULL,
       role text,
       shared boolean NOT NULL DEFAULT false,
       joins text[],
       note text,
       fills jsonb,
       applied_at timestamptz,
       error text,
       acknowledged_at timestamptz)`,
    `ALTER TABLE ${q} ADD COLUMN IF NOT EXISTS fills jsonb`,
  ];
}

/** The source's event triggers (created once per database). */
export const EVENT_TRIGGERS: Array<{ name: string; sql: string }> = [
  { name: 'pgshift_ddl', sql: `CREATE EVENT TRIGGER pgshift_ddl ON ddl_command_end EXECUTE PROCEDURE ${CONTROL}.ddl_capture()` },
  { name: 'pgshift_ddl_drop', sql: `CREATE EVENT TRIGGER pgshift_ddl_drop ON sql_drop EXECUTE PROCEDURE ${CONTROL}.ddl_capture()` },
  { name: 'pgshift_ddl_start', sql: `CREATE EVENT TRIGGER pgshift_ddl_start ON ddl_command_start WHEN TAG IN ('DROP INDEX', 'ALTER TABLE') EXECUTE PROCEDURE ${CONTROL}.ddl_capture()` },
];

/** Target: the function that runs queued statements, and its trigger on one stream's queue. */
export function applyObjectsSql(queue: string, stream: string, keepOwnership: boolean): string[] {
  const q = `${CONTROL}.${quoteIdent(queue)}`;
  return [
    `CREATE TABLE IF NOT EXISTS ${CONTROL}.ddl_done (id bigint PRIMARY KEY, stream text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
    `CREATE OR REPLACE FUNCTION ${CONTROL}.ddl_apply() RETURNS trigger LANGUAGE plpgsql ${SAFE_PATH} AS $f$
     DECLARE me text := TG_ARGV[0]; keep boolean := TG_ARGV[1] = 'keep'; prior text; done_by text; code text; msg text; f record;
     BEGIN
       IF NEW.apply IS NULL THEN
         NEW.applied_at := clock_timestamp();
         RETURN NEW;
       END IF;
       IF NOT keep AND NEW.command IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES') THEN
         NEW.applied_at := clock_timestamp();
         NEW.note := concat_ws('; ', NEW.note, 'skipped: fullLoad.ownership is target-user');
         RETURN NEW;
       END IF;
       BEGIN
         IF NEW.shared THEN
           -- Sent to every stream: the first to reach it runs it; the others wait for that
           -- transaction here and move on once it committed.
           INSERT INTO ${CONTROL}.ddl_done (id, stream) VALUES (NEW.id, me) ON CONFLICT (id) DO NOTHING;
           IF NOT FOUND THEN
             SELECT d.stream INTO done_by FROM ${CONTROL}.ddl_done d WHERE d.id = NEW.id;
             NEW.applied_at := clock_timestamp();
             NEW.note := concat_ws('; ', NEW.note, 'run by stream ' || done_by);
             RETURN NEW;
           END IF;
         END IF;
         prior := current_setting('role');
         IF keep AND NEW.role IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = NEW.role) THEN
           BEGIN
             PERFORM set_config('role', NEW.role, true);
           EXCEPTION WHEN OTHERS THEN
             NEW.note := concat_ws('; ', NEW.note, 'run as ' || current_user || ': could not act as ' || NEW.role);
           END;
         END IF;
         PERFORM set_config('search_path', NEW.search_path, true);
         EXECUTE NEW.apply;
         PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
         PERFORM set_config('role', prior, true);
         -- Columns the statement added, whose rows the source filled with one value computed at
         -- its own time: the same value here, unless the target already computed it equal.
         FOR f IN SELECT * FROM jsonb_to_recordset(coalesce(NEW.fills, '[]')) AS x("table" text, "column" text, type text, value text) LOOP
           IF (SELECT to_jsonb(a) -> 'attmissingval' ->> 0 FROM pg_attribute a WHERE a.attrelid = to_regclass(f."table") AND a.attname = f."column") IS DISTINCT FROM f.value THEN
             EXECUTE format('UPDATE ONLY %s SET %I = %L::%s', f."table", f."column", f.value, f.type);
           END IF;
         END LOOP;
         NEW.applied_at := clock_timestamp();
       EXCEPTION WHEN OTHERS THEN
         GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
         NEW.error := code || ': ' || msg;
       END;
       RETURN NEW;
     END $f$`,
    `DROP TRIGGER IF EXISTS ddl_apply ON ${q}`,
    `CREATE TRIGGER ddl_apply BEFORE INSERT ON ${q} FOR EACH ROW EXECUTE PROCEDURE ${CONTROL}.ddl_apply(${quoteLiteral(stream)}, ${quoteLiteral(keepOwnership ? 'keep' : 'target-user')})`,
    `ALTER TABLE ${q} ENABLE ALWAYS TRIGGER ddl_apply`,
  ];
}
