import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { validate } from '@actions/languageservice';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Every workflow and action.yml checked by GitHub's own language service (the parser and schemas
 * behind the VS Code extension), then by the project's security rules.
 */
const workflowDir = '.github/workflows';
const workflows = readdirSync(workflowDir).filter((f) => f.endsWith('.yml')).map((f) => path.join(workflowDir, f));
const actions = readdirSync('actions').map((d) => path.join('actions', d, 'action.yml'));

async function diagnostics(file: string) {
  const doc = TextDocument.create(`file:///repo/${file}`, 'yaml', 1, readFileSync(file, 'utf8'));
  const found = await validate(doc);
  // Severity 1 is an error; 2 flags a context that may be invalid (a typo in inputs.* shows up so).
  return found.filter((d) => d.severity === 1 || d.severity === undefined || (d.severity === 2 && /inputs\./.test(String(d.message)))).map((d) => `${file}:${d.range.start.line + 1}: ${d.message}`);
}

type Step = { uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, unknown> };
type Job = { permissions?: unknown; steps?: Step[]; environment?: unknown; concurrency?: unknown; 'timeout-minutes'?: number; outputs?: Record<string, string> };

describe('workflows and actions', () => {
  it('the validator does catch mistakes (so a pass means something)', async () => {
    const bad = async (file: string, text: string) =>
      (await validate(TextDocument.create(`file:///repo/${file}`, 'yaml', 1, text))).filter((d) => d.severity === 1 || d.severity === undefined).map((d) => String(d.message));
    expect(await bad('.github/workflows/x.yml', 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n')).not.toEqual([]);
    expect(await bad('actions/x/action.yml', 'name: x\ndescription: x\nruns:\n  using: node18\n  main: index.js\n')).not.toEqual([]);
  });

  it('has the phase workflows', () => {
    expect(workflows.map((f) => path.basename(f)).sort()).toEqual(['cdc.yml', 'ci.yml', 'cutover.yml', 'dry-run.yml', 'full-load.yml', 'teardown.yml', 'verify.yml']);
  });

  for (const file of [...workflows, ...actions]) {
    it(`${file} passes GitHub's schema validation`, async () => {
      expect(await diagnostics(file)).toEqual([]);
    });
  }

  for (const file of actions) {
    it(`${file} runs on node24 from its bundle and documents every input and output`, () => {
      const a = parse(readFileSync(file, 'utf8'));
      expect(a.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
      for (const [name, input] of Object.entries<{ description?: string }>(a.inputs ?? {})) expect(input.description, name).toBeTruthy();
      for (const [name, output] of Object.entries<{ description?: string }>(a.outputs ?? {})) expect(output.description, name).toBeTruthy();
    });
  }

  it('pins third-party actions to the releases that run on Node 24, one commit per action, with the version beside it', () => {
    // The first major of each that runs on node24; older pins run on a Node the runners are retiring.
    const node24Major: Record<string, number> = { 'actions/checkout': 5, 'actions/setup-node': 5, 'actions/upload-artifact': 6, 'aws-actions/configure-aws-credentials': 5 };
    const pins = new Map<string, Set<string>>();
    for (const file of workflows) {
      for (const m of readFileSync(file, 'utf8').matchAll(/uses: ([\w.-]+\/[\w./-]+)@(\S+)(.*)$/gm)) {
        const [, action, ref, comment] = m;
        expect(Object.keys(node24Major), `${file}: ${action} is not classified`).toContain(action);
        const version = /^ # v(\d+)\.(\d+)\.(\d+)$/.exec(comment);
        expect(version, `${file}: ${action}@${ref} needs a "# vX.Y.Z" comment`).not.toBeNull();
        expect(Number(version![1]), `${file}: ${action} ${comment.trim()}`).toBeGreaterThanOrEqual(node24Major[action]);
        pins.set(action, (pins.get(action) ?? new Set()).add(`${ref}${comment}`));
      }
    }
    for (const [action, refs] of pins) expect([...refs], action).toHaveLength(1);
    expect([...pins.keys()].sort()).toEqual(Object.keys(node24Major).sort());
  });

  for (const file of workflows) {
    it(`${file} follows the security rules`, () => {
      const text = readFileSync(file, 'utf8');
      const w = parse(text);
      // Least privilege: nothing by default, the least per job.
      expect(w.permissions, 'top-level permissions').toEqual({});
      for (const [name, job] of Object.entries<Job>(w.jobs)) {
        expect(job.permissions, `${name}: job permissions`).toBeDefined();
        expect(job['timeout-minutes'], `${name}: timeout`).toBeGreaterThan(0);
        for (const step of job.steps ?? []) {
          // No expression inside a shell script: values go through env or action inputs.
          if (step.run) expect(step.run, `${name}: run script`).not.toMatch(/\$\{\{/);
          // Third-party actions pinned to a full commit SHA.
          if (step.uses && !step.uses.startsWith('./')) expect(step.uses, `${name}: pin`).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
          // AWS through OIDC only: no stored keys.
          if (step.uses?.startsWith('aws-actions/configure-aws-credentials')) {
            expect(step.with, `${name}: OIDC`).toHaveProperty('role-to-assume');
            expect(step.with).not.toHaveProperty('aws-access-key-id');
          }
        }
        // Connection strings never leave a job as outputs.
        for (const [key, value] of Object.entries(job.outputs ?? {})) expect(`${key}: ${value}`).not.toMatch(/secrets\.|_URL|url/i);
        if (/id-token: write/.test(JSON.stringify(job.permissions))) expect(text).toContain('configure-aws-credentials');
      }
      expect(text).not.toMatch(/aws-secret-access-key|AWS_SECRET_ACCESS_KEY/);
      // Secrets reach steps through env, and only the phase's own.
      for (const m of text.matchAll(/\$\{\{\s*secrets\.([A-Z_]+)\s*\}\}/g)) expect(['SOURCE_URL', 'TARGET_URL', 'PGBOUNCER_ADMIN_URL']).toContain(m[1]);
    });
  }

  it('cutover.yml: reviewers environment, a concurrency group per target that never cancels, a timeout, the deployment recorded once', () => {
    const w = parse(readFileSync('.github/workflows/cutover.yml', 'utf8'));
    expect(w.concurrency).toEqual({ group: 'pgshift-cutover-${{ inputs.environment }}', 'cancel-in-progress': false });
    expect(w.on.workflow_dispatch.inputs.environment).toMatchObject({ type: 'environment', default: 'production-cutover' });
    const job = w.jobs.cutover;
    expect(job.environment).toMatchObject({ name: '${{ inputs.environment }}', deployment: false });
    expect(job.permissions).toEqual({ contents: 'read', deployments: 'write', 'id-token': 'write' });
    const steps = job.steps.map((s: Step & { id?: string }) => s.id ?? s.uses);
    expect(steps.indexOf('preflight')).toBeLessThan(steps.indexOf('cutover'));
  });

  it('full-load.yml: the groups from assess feed a matrix that does not fail fast, then a report', () => {
    const w = parse(readFileSync('.github/workflows/full-load.yml', 'utf8'));
    expect(w.jobs.load.needs).toBe('assess');
    expect(w.jobs.load.strategy['fail-fast']).toBe(false);
    expect(w.jobs.load.strategy.matrix.group).toContain('needs.assess.outputs.groups');
    expect(w.jobs.report).toMatchObject({ needs: 'load', if: 'always()' });
  });

  it('dry-run.yml: scheduled, always tears down, reports a failure as an issue', () => {
    const w = parse(readFileSync('.github/workflows/dry-run.yml', 'utf8'));
    expect(w.on.schedule).toBeDefined();
    expect(w.jobs.teardown.if).toBe('always()');
    expect(w.jobs['report-failure']).toMatchObject({ if: 'failure()', permissions: { contents: 'read', issues: 'write' } });
    expect(JSON.stringify(w.jobs.rehearse.steps)).toContain('"dry-run":true');
  });
});
