import * as core from '@actions/core';
import { context } from '@actions/github';
import { githubClient } from '../github/client.js';
import { finishDeployment, startDeployment, type DeploymentContext } from '../github/deployment.js';
import { runCutover } from '../phases/cutover.js';
import { cutoverMarkdown } from '../report/markdown.js';
import { booleanInput, json, runAction } from './_runner.js';

await runAction('cutover', async (ctx) => {
  const dryRun = booleanInput('dry-run');
  const recover = booleanInput('recover');
  // The deployment record: opt in with `deployment-environment` (and a token with deployments: write).
  const environment = core.getInput('deployment-environment');
  let deployment: { octokit: ReturnType<typeof githubClient>; d: DeploymentContext; id: number } | undefined;
  if (environment && !dryRun && !recover) {
    const octokit = githubClient(process.env, core.getInput('github-token') || undefined);
    const d: DeploymentContext = {
      repo: context.repo,
      ref: context.sha,
      environment,
      logUrl: `${context.serverUrl}/${context.repo.owner}/${context.repo.repo}/actions/runs/${context.runId}`,
    };
    deployment = { octokit, d, id: await startDeployment(octokit, d, `pgshift cutover of ${ctx.plan.name}`) };
  }
  let r;
  try {
    // Should this process die inside the window, its watchdog runs this same action to recover.
    r = await runCutover(ctx, { dryRun, recover, recoveryCommand: { argv: [process.execPath, process.argv[1]], env: { INPUT_RECOVER: 'true', 'INPUT_DRY-RUN': 'false' } } });
  } catch (err) {
    if (deployment) await finishDeployment(deployment.octokit, deployment.d, deployment.id, false, (err as Error).message).catch(() => {});
    throw err;
  }
  if (deployment) await finishDeployment(deployment.octokit, deployment.d, deployment.id, true, `cut over: ${r.windowMs} ms without writes`, `postgresql://${r.endpoint}`);
  return {
    report: r,
    markdown: cutoverMarkdown(r),
    outputs: {
      'dry-run': r.dryRun,
      'window-ms': r.windowMs ?? '',
      endpoint: r.endpoint,
      'endpoint-url': `postgresql://${r.endpoint}`,
      steps: json(r.steps),
      sequences: r.sequences.length,
      'final-check': r.finalCheck,
      ...(deployment ? { 'deployment-id': deployment.id } : {}),
    },
  };
});
