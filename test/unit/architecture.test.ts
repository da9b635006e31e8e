import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules of docs/architecture.md, checked on the source text (the project's lint for
 * them): what each folder may import, where SQL may be written, and how errors are raised.
 */
const SRC = 'src';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = sourceFiles(SRC).map((file) => ({ file, folder: path.relative(SRC, file).split(path.sep)[0], text: readFileSync(file, 'utf8') }));

/** Which folders of src/ each folder may import from (besides itself). */
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  config: ['core'],
  pg: ['core', 'config', 'journal'],
  journal: ['core', 'config', 'pg'],
  aws: ['core', 'config'],
  github: ['core', 'config'],
  phases: ['core', 'config', 'pg', 'journal', 'aws', 'github'],
  report: ['core', 'config', 'pg', 'journal', 'phases'],
  local: ['core', 'config', 'pg', 'journal', 'phases', 'report'],
  cli: ['core', 'config', 'pg', 'journal', 'aws', 'github', 'phases', 'report', 'local'],
  actions: ['core', 'config', 'pg', 'journal', 'aws', 'github', 'phases', 'report'],
};

/** Comments are prose: a rule about code must not trip on a sentence that names SQL. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('architecture', () => {
  it('every folder of src/ is a known layer', () => {
    expect([...new Set(files.map((f) => f.folder))].filter((f) => !f.endsWith('.ts') && !(f in MAY_IMPORT))).toEqual([]);
  });

  it('each layer imports only the layers below it (core imports nothing of pgshift)', () => {
    const wrong = files.flatMap(({ file, folder, text }) =>
      [...text.matchAll(/from '\.\.\/([a-z-]+)\//g)].map((m) => m[1]).filter((to) => to !== folder && !(MAY_IMPORT[folder] ?? []).includes(to)).map((to) => `${file} imports ${to}`),
    );
    expect(wrong).toEqual([]);
  });

  it('no bare Error is thrown outside src/local: every error carries a code, an exit code and a fix', () => {
    const bare = files.filter((f) => f.folder !== 'local').flatMap(({ file, text }) => withoutComments(text).split('\n').flatMap((line, i) => (/\bthrow new Error\(/.test(line) ? [`${file}:${i + 1}`] : [])));
    expect(bare).toEqual([]);
  });

  it('no SQL is written in src/phases: phases read facts, call the rules, act through src/pg', () => {
    // A statement: a string that starts with SQL, or any query call. (Hints that tell an operator
    // which statement to run are prose and start otherwise.)
    const statement = /(['`])\s*(SELECT|INSERT|UPDATE|DELETE|ALTER|CREATE|DROP|LOCK|TRUNCATE|ANALYZE|BEGIN|COMMIT|ROLLBACK|SET|RESET|WITH|COPY|VACUUM|REINDEX)\b|\.query\(/;
    const found = files
      .filter((f) => f.folder === 'phases')
      .flatMap(({ file, text }) => withoutComments(text).split('\n').flatMap((line, i) => (statement.test(line) ? [`${file}:${i + 1}: ${line.trim().slice(0, 80)}`] : [])));
    expect(found).toEqual([]);
  });

  it('every wait goes through core/wait.ts (cancellable by a signal): no hand-made sleep', () => {
    const handMade = /new Promise[^;]*setTimeout|setTimeout\([^)]*\bres(olve)?\b/;
    const found = files
      .filter((f) => f.file !== path.join(SRC, 'core', 'wait.ts'))
      .flatMap(({ file, text }) => withoutComments(text).split('\n').flatMap((line, i) => (handMade.test(line) ? [`${file}:${i + 1}: ${line.trim().slice(0, 80)}`] : [])));
    expect(found).toEqual([]);
  });

  it('a function stays under about 60 lines, or says why in a "// Long on purpose:" line above it', () => {
    const MAX_LINES = 62;
    const long = files.flatMap(({ file, text }) => {
      const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
      const found: string[] = [];
      const visit = (node: ts.Node) => {
        if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node)) && node.body) {
          const lines = lineOf(node.end) - lineOf(node.getStart()) + 1;
          const statement = ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) ? node : node.parent;
          const justified = /\/\/ Long on purpose: \S/.test(text.slice(statement.getFullStart(), statement.getStart()));
          if (lines > MAX_LINES && !justified) found.push(`${file}:${lineOf(node.getStart()) + 1} (${lines} lines)`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
      return found;
    });
    expect(long).toEqual([]);
  });
});
