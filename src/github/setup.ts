import { inputError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Octokit, Repo } from './client.js';

/**
 * `pgshift github setup`: the three environments the workflows use, created or updated through
 * the REST API (PUT /repos/{owner}/{repo}/environments/{name}):
 *
 *   staging             no reviewers: the scheduled dry run must never wait
 *   production          secrets for the phases before the cut-over; protected branches only
 *   production-cutover  required reviewers (at most 6; any one approval releases the job),
 *                       no self-review, a wait timer, and deployments from the main branch only
 *
 * Reviewers are named as people (login) or teams (org/slug) and resolved to the numeric ids the
 * API wants. GitHub only enforces reviewers and wait timers on public repositories unless the
 * account is on GitHub Enterprise: the command says so rather than letting a gate silently vanish.
 */
export interface SetupOptions {
  reviewers: string[];
  waitTimerMinutes: number;
  branch: string;
  isPrivate?: boolean;
}

export interface SetupResult {
  environments: Array<{ name: string; reviewers: number; waitTimer: number; branchPolicy: string }>;
  notes: string[];
}

async function reviewerIds(octokit: Octokit, names: string[]): Promise<Array<{ type: 'User' | 'Team'; id: number }>> {
  const out: Array<{ type: 'User' | 'Team'; id: number }> = [];
  for (const name of names) {
    const team = /^([^/]+)\/(.+)$/.exec(name);
    if (team) {
      const r = await octokit.rest.teams.getByName({ org: team[1], team_slug: team[2] });
      out.push({ type: 'Team', id: r.data.id });
    } else {
      const r = await octokit.rest.users.getByUsername({ username: name });
      out.push({ type: 'User', id: r.data.id });
    }
  }
  return out;
}

export async function setupEnvironments(octokit: Octokit, repo: Repo, options: SetupOptions, log: Logger): Promise<SetupResult> {
  if (options.reviewers.length > 6) throw inputError('github.reviewers', `GitHub allows at most 6 required reviewers per environment; ${options.reviewers.length} were given`, 'name at most 6 (a team counts as one)');
  const reviewers = await reviewerIds(octokit, options.reviewers);
  const repoInfo = await octokit.rest.repos.get({ ...repo });
  const isPrivate = options.isPrivate ?? repoInfo.data.private;
  const result: SetupResult = { environments: [], notes: [] };

  await octokit.rest.repos.createOrUpdateEnvironment({ ...repo, environment_name: 'staging', wait_timer: 0, reviewers: [], deployment_branch_policy: null });
  result.environments.push({ name: 'staging', reviewers: 0, waitTimer: 0, branchPolicy: 'any branch' });

  await octokit.rest.repos.createOrUpdateEnvironment({
    ...repo,
    environment_name: 'production',
    wait_timer: 0,
    reviewers: [],
    deployment_branch_policy: { protected_branches: true, custom_branch_policies: false },
  });
  result.environments.push({ name: 'production', reviewers: 0, waitTimer: 0, branchPolicy: 'protected branches' });

  await octokit.rest.repos.createOrUpdateEnvironment({
    ...repo,
    environment_name: 'production-cutover',
    wait_timer: options.waitTimerMinutes,
    prevent_self_review: true,
    reviewers,
    deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
  });
  const policies = await octokit.rest.repos.listDeploymentBranchPolicies({ ...repo, environment_name: 'production-cutover' });
  if (!policies.data.branch_policies.some((p) => p.name === options.branch)) {
    await octokit.rest.repos.createDeploymentBranchPolicy({ ...repo, environment_name: 'production-cutover', name: options.branch, type: 'branch' });
  }
  result.environments.push({ name: 'production-cutover', reviewers: reviewers.length, waitTimer: options.waitTimerMinutes, branchPolicy: `branch ${options.branch}` });

  if (reviewers.length === 0) result.notes.push('production-cutover has no required reviewers: anyone who can dispatch the workflow can cut over.');
  if (isPrivate) {
    result.notes.push(
      'This repository is private: GitHub enforces required reviewers and wait timers on private repositories only on GitHub Enterprise plans (Free, Pro and Team: public repositories only). Check the environment page shows the reviewers before relying on the gate.',
    );
  }
  result.notes.push('Put SOURCE_URL and TARGET_URL as environment secrets of staging, production and production-cutover; the cut-over job gets them only once approved.');
  for (const n of result.notes) log.warn(n);
  return result;
}
