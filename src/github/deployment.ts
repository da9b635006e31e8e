import { failure } from '../core/errors.js';
import type { Octokit, Repo } from './client.js';

/**
 * The cut-over's deployment record: created when the cut-over starts (in_progress, with a link to
 * the run), finished with success and the new endpoint, or failure with the reason. The workflow's
 * job sets `environment.deployment: false` so that GitHub does not record a second one.
 */
export interface DeploymentContext {
  repo: Repo;
  ref: string;
  environment: string;
  logUrl?: string;
}

export async function startDeployment(octokit: Octokit, d: DeploymentContext, description: string): Promise<number> {
  const r = await octokit.rest.repos.createDeployment({
    ...d.repo,
    ref: d.ref,
    environment: d.environment,
    task: 'pgshift:cutover',
    auto_merge: false,
    required_contexts: [],
    production_environment: true,
    transient_environment: false,
    description: description.slice(0, 140),
  });
  if (r.status !== 201 || !('id' in r.data)) throw failure('github.deployment', `GitHub did not create a deployment (${r.status})`, 'check that the token may write deployments (permissions: deployments: write), then run the cut-over again');
  const id = r.data.id;
  await octokit.rest.repos.createDeploymentStatus({ ...d.repo, deployment_id: id, state: 'in_progress', log_url: d.logUrl, description: 'cut-over running' });
  return id;
}

export async function finishDeployment(octokit: Octokit, d: DeploymentContext, id: number, ok: boolean, description: string, environmentUrl?: string): Promise<void> {
  await octokit.rest.repos.createDeploymentStatus({
    ...d.repo,
    deployment_id: id,
    state: ok ? 'success' : 'failure',
    log_url: d.logUrl,
    environment_url: environmentUrl,
    description: description.slice(0, 140),
  });
}
