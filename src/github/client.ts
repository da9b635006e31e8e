import { getOctokit } from '@actions/github';
import { inputError } from '../core/errors.js';
import { registerSecret } from '../core/secrets.js';

/**
 * The GitHub REST client for pgshift's GitHub integration (environments, deployments, the dry
 * run's failure issue). The token comes from the environment (GITHUB_TOKEN or GH_TOKEN) and is
 * masked like every other secret; GITHUB_API_URL points it at GitHub Enterprise Server (or at a
 * recorder in tests).
 */
export type Octokit = ReturnType<typeof getOctokit>;

export interface Repo {
  owner: string;
  repo: string;
}

export function githubClient(env: Record<string, string | undefined>, token?: string): Octokit {
  const t = token ?? env.GITHUB_TOKEN ?? env.GH_TOKEN;
  if (!t) throw inputError('github.token', 'no GitHub token: set GITHUB_TOKEN (or GH_TOKEN)', 'environment setup needs a token with Administration: write on the repository');
  registerSecret(t);
  return getOctokit(t, { baseUrl: env.GITHUB_API_URL ?? 'https://api.github.com' });
}

export function parseRepo(text: string | undefined): Repo {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(text ?? '');
  if (!m) throw inputError('github.repo', `repository ${JSON.stringify(text ?? '')} is not owner/name`, 'pass --repo owner/name (in Actions GITHUB_REPOSITORY is used)');
  return { owner: m[1], repo: m[2] };
}
