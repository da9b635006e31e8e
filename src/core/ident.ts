import { inputError } from './errors.js';

/**
 * The one place identifiers are quoted. Values never go through here: they are bound parameters.
 */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw inputError('name.nul', 'an identifier contains a NUL byte', 'PostgreSQL names cannot hold one: correct the name');
  return `"${name.replace(/"/g, '""')}"`;
}

export interface QualifiedName {
  schema: string;
  name: string;
}

export function qualify(t: QualifiedName): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** Human form used in reports and the journal: schema.name, quoted only where needed. */
export function displayName(t: QualifiedName): string {
  const part = (s: string) => (/^[a-z_][a-z0-9_$]*$/.test(s) ? s : quoteIdent(s));
  return `${part(t.schema)}.${part(t.name)}`;
}

/** A string literal for the rare places where a parameter cannot be bound (DDL options). */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw inputError('literal.nul', 'a value contains a NUL byte', 'PostgreSQL text cannot hold one: correct the value');
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Parse "schema.table" as written in the plan: either part may be double-quoted
 * ("My Schema"."Weird.Table"); unquoted parts keep their case as written, because plan authors
 * write the names they see in catalogs.
 */
export function parseQualifiedName(text: string): QualifiedName {
  const parts: string[] = [];
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      let j = i + 1;
      let part = '';
      for (;;) {
        if (j >= text.length) throw inputError('name.syntax', `unterminated quote in ${JSON.stringify(text)}`, 'write schema.table; quote a part that holds a dot or a quote: "My Schema"."a.b", doubling a quote inside it');
        if (text[j] === '"') {
          if (text[j + 1] === '"') {
            part += '"';
            j += 2;
            continue;
          }
          break;
        }
        part += text[j];
        j++;
      }
      parts.push(part);
      i = j + 1;
    } else {
      const dot = text.indexOf('.', i);
      const end = dot === -1 ? text.length : dot;
      parts.push(text.slice(i, end));
      i = end;
    }
    if (i >= text.length) break;
    if (text[i] !== '.') throw inputError('name.syntax', `unexpected character after quoted name in ${JSON.stringify(text)}`, 'write schema.table; quote a part that holds a dot or a quote: "My Schema"."a.b", doubling a quote inside it');
    i++;
  }
  if (parts.length === 1) return { schema: 'public', name: parts[0] };
  if (parts.length === 2 && parts[0] !== '' && parts[1] !== '') return { schema: parts[0], name: parts[1] };
  throw inputError('name.syntax', `expected schema.table, got ${JSON.stringify(text)}`, 'write schema.table; quote a part that holds a dot or a quote: "My Schema"."a.b", doubling a quote inside it');
}

/**
 * A table named on the command line or in a list of the plan, in the form reports print
 * (displayName): the same spellings the plan's groups take are accepted — public.café,
 * public."café", "public"."Weird.Name" — so the name printed by verify can be pasted back.
 */
export function canonicalTableName(text: string): string {
  try {
    return displayName(parseQualifiedName(text.trim()));
  } catch (err) {
    throw inputError('table.name', `table ${JSON.stringify(text)}: ${(err as Error).message}`, 'write schema.table; double-quote a part that holds a dot or a quote ("My Schema"."a.b")');
  }
}
