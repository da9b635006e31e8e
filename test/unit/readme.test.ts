import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NEXT_COMMANDS } from '../../src/local/demo.js';

/** What a new user reads first: two commands, then where their own migration starts. */
const readme = readFileSync('README.md', 'utf8');

describe('README', () => {
  it('its first screen holds exactly the two commands: the demo and the tests', () => {
    const first = /```sh\n([\s\S]*?)```/.exec(readme)![1].trim().split('\n');
    expect(first.map((l) => l.replace(/\s+#.*$/, ''))).toEqual(['npm ci && npx pgshift demo', 'npm ci && npm test']);
  });

  it('then says how to start on your own servers: init, assess, and the guide', () => {
    const own = readme.split('## Your own migration')[1]?.split('\n## ')[0];
    expect(own).toBeDefined();
    expect(own).toMatch(/^export SOURCE_URL=.* TARGET_URL=/m);
    expect(own).toMatch(/^npx pgshift init /m);
    expect(own).toMatch(/^npx pgshift assess /m);
    expect(own).toContain('(docs/guide.md)');
    // The demo ends with the same three commands.
    expect(own!.split('\n').filter((l) => /^(export|npx) /.test(l))).toEqual(NEXT_COMMANDS);
  });
});
