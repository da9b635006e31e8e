import type { Octokit, Repo } from './client.js';

/**
 * The scheduled dry run's failure issue: one open issue labelled `pgshift-dry-run` collects the
 * failures — created the first time, commented on after — so a broken staging rehearsal is seen
 * without a new issue every night.
 */
export const DRY_RUN_LABEL = 'pgshift-dry-run';

export async function reportFailure(octokit: Octokit, repo: Repo, title: string, body: string): Promise<{ issue: number; created: boolean }> {
  const open = await octokit.rest.issues.listForRepo({ ...repo, state: 'open', labels: DRY_RUN_LABEL, per_page: 1 });
  if (open.data.length > 0) {
    const issue = open.data[0].number;
    await octokit.rest.issues.createComment({ ...repo, issue_number: issue, body });
    return { issue, created: false };
  }
  const r = await octokit.rest.issues.create({ ...repo, title, body, labels: [DRY_RUN_LABEL] });
  return { issue: r.data.number, created: true };
}
