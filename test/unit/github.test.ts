import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { githubClient } from '../../src/github/client.js';
import { finishDeployment, startDeployment } from '../../src/github/deployment.js';
import { runCli } from '../harness/cli.js';
import { startRecorder, type Recorded } from '../harness/github-recorder.js';

const api = (r: Recorded) => `${r.method} ${r.path}${r.query}`;

describe('pgshift github setup', () => {
  it('creates the three environments with the documented requests', async () => {
    const rec = await startRecorder((r) => {
      if (r.method === 'GET' && r.path === '/users/alice') return { status: 200, body: { id: 101, login: 'alice' } };
      if (r.method === 'GET' && r.path === '/orgs/acme/teams/dba') return { status: 200, body: { id: 7, slug: 'dba' } };
      if (r.method === 'GET' && r.path === '/repos/acme/calls') return { status: 200, body: { private: true } };
      if (r.method === 'PUT' && r.path.startsWith('/repos/acme/calls/environments/')) return { status: 200, body: {} };
      if (r.method === 'GET' && r.path.endsWith('/deployment-branch-policies')) return { status: 200, body: { total_count: 0, branch_policies: [] } };
      if (r.method === 'POST' && r.path.endsWith('/deployment-branch-policies')) return { status: 200, body: { id: 1, name: 'main' } };
      return undefined;
    });
    try {
      const out = await runCli(['github', 'setup', '--repo', 'acme/calls', '--reviewers', 'alice,acme/dba', '--wait-timer', '5', '--json'], {
        GITHUB_TOKEN: 'ghp_secret_token_value',
        GITHUB_API_URL: rec.url,
      });
      expect(out.code, out.stderr).toBe(0);
      expect(rec.requests.map(api)).toEqual([
        'GET /users/alice',
        'GET /orgs/acme/teams/dba',
        'GET /repos/acme/calls',
        'PUT /repos/acme/calls/environments/staging',
        'PUT /repos/acme/calls/environments/production',
        'PUT /repos/acme/calls/environments/production-cutover',
        'GET /repos/acme/calls/environments/production-cutover/deployment-branch-policies',
        'POST /repos/acme/calls/environments/production-cutover/deployment-branch-policies',
      ]);
      const body = (p: string) => rec.requests.find((r) => r.method === 'PUT' && r.path.endsWith(p))!.body;
      expect(body('/staging')).toEqual({ wait_timer: 0, reviewers: [], deployment_branch_policy: null });
      expect(body('/production')).toEqual({ wait_timer: 0, reviewers: [], deployment_branch_policy: { protected_branches: true, custom_branch_policies: false } });
      expect(body('/production-cutover')).toEqual({
        wait_timer: 5,
        prevent_self_review: true,
        reviewers: [
          { type: 'User', id: 101 },
          { type: 'Team', id: 7 },
        ],
        deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
      });
      expect(rec.requests.at(-1)!.body).toEqual({ name: 'main', type: 'branch' });
      // The plan limit that would silently disable the gate is said out loud.
      expect(out.stderr).toMatch(/private: GitHub enforces required reviewers and wait timers on private repositories only on GitHub Enterprise/);
      expect(out.stdout + out.stderr).not.toContain('ghp_secret_token_value');
    } finally {
      await rec.close();
    }
  });

  it('refuses without a token, exit 2', async () => {
    const out = await runCli(['github', 'setup', '--repo', 'acme/calls'], {});
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/no GitHub token: set GITHUB_TOKEN/);
  });
});

describe('the dry run failure issue', () => {
  it('opens an issue the first time and comments after', async () => {
    let open: unknown[] = [];
    const rec = await startRecorder((r) => {
      if (r.method === 'GET' && r.path === '/repos/acme/calls/issues') return { status: 200, body: open };
      if (r.method === 'POST' && r.path === '/repos/acme/calls/issues') {
        open = [{ number: 42 }];
        return { status: 201, body: { number: 42 } };
      }
      if (r.method === 'POST' && r.path === '/repos/acme/calls/issues/42/comments') return { status: 201, body: { id: 1 } };
      return undefined;
    });
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'issue-'));
      writeFileSync(path.join(dir, 'body.md'), 'verify failed: postgresql://app:hunter2secret@db/x');
      const env = { GITHUB_TOKEN: 't0ken-value', GITHUB_API_URL: rec.url, GITHUB_REPOSITORY: 'acme/calls' };
      const first = await runCli(['github', 'failure-issue', '--body-file', path.join(dir, 'body.md')], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain('Opened issue #42');
      const second = await runCli(['github', 'failure-issue', '--body-file', path.join(dir, 'body.md')], env);
      expect(second.stdout).toContain('Commented on issue #42');
      expect(rec.requests.map(api)).toEqual([
        'GET /repos/acme/calls/issues?state=open&labels=pgshift-dry-run&per_page=1',
        'POST /repos/acme/calls/issues',
        'GET /repos/acme/calls/issues?state=open&labels=pgshift-dry-run&per_page=1',
        'POST /repos/acme/calls/issues/42/comments',
      ]);
      expect(rec.requests[1].body).toEqual({ title: 'pgshift dry run failed', body: 'verify failed: postgresql://app:***@db/x', labels: ['pgshift-dry-run'] });
    } finally {
      await rec.close();
    }
  });
});

describe('the cut-over deployment', () => {
  it('records in_progress, then success with the endpoint', async () => {
    const rec = await startRecorder((r) => {
      if (r.method === 'POST' && r.path === '/repos/acme/calls/deployments') return { status: 201, body: { id: 9 } };
      if (r.method === 'POST' && r.path === '/repos/acme/calls/deployments/9/statuses') return { status: 201, body: { id: 1 } };
      return undefined;
    });
    try {
      const octokit = githubClient({ GITHUB_TOKEN: 'x-token', GITHUB_API_URL: rec.url });
      const d = { repo: { owner: 'acme', repo: 'calls' }, ref: 'abc123', environment: 'production-cutover', logUrl: 'https://github.com/acme/calls/actions/runs/1' };
      const id = await startDeployment(octokit, d, 'pgshift cutover of calls');
      await finishDeployment(octokit, d, id, true, 'cut over: 340 ms without writes', 'postgresql://db.new:5432/calls');
      expect(rec.requests.map((r) => [api(r), r.body])).toEqual([
        ['POST /repos/acme/calls/deployments', { ref: 'abc123', environment: 'production-cutover', task: 'pgshift:cutover', auto_merge: false, required_contexts: [], production_environment: true, transient_environment: false, description: 'pgshift cutover of calls' }],
        ['POST /repos/acme/calls/deployments/9/statuses', { state: 'in_progress', log_url: d.logUrl, description: 'cut-over running' }],
        ['POST /repos/acme/calls/deployments/9/statuses', { state: 'success', log_url: d.logUrl, environment_url: 'postgresql://db.new:5432/calls', description: 'cut over: 340 ms without writes' }],
      ]);
    } finally {
      await rec.close();
    }
  });
});
