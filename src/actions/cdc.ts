import * as core from '@actions/core';
import { inputError, numberInput } from '../core/errors.js';
import { acknowledgeCdcErrors, cdcStatus, setCdcPaused, startCdc, statusLag, statusProblems, stopCdc, watchCdc } from '../phases/cdc.js';
import { resyncTables, restartCdc } from '../phases/resync.js';
import { cdcMarkdown } from '../report/markdown.js';
import { json, runAction } from './_runner.js';

await runAction('cdc', async (ctx) => {
  const operation = core.getInput('operation') || 'status';
  const waitMs = numberInput(core.getInput('wait-seconds') || '5', 'wait-seconds') * 1000;
  const watchSeconds = numberInput(core.getInput('watch-seconds') || '0', 'watch-seconds');
  let r;
  switch (operation) {
    case 'start':
      r = await startCdc(ctx);
      break;
    case 'status':
      r = watchSeconds > 0
        ? await watchCdc(ctx, { everyMs: watchSeconds * 1000, forMs: numberInput(core.getInput('watch-minutes') || '14', 'watch-minutes', 1) * 60_000, waitMs, onStatus: (x) => core.info(`cdc ${x.healthy ? 'healthy' : 'FAILING'}; lag ${statusLag(x).seconds.toFixed(1)} s`) })
        : await cdcStatus(ctx, waitMs);
      break;
    case 'pause':
      r = await setCdcPaused(ctx, true);
      break;
    case 'resume':
      r = await setCdcPaused(ctx, false);
      break;
    case 'stop':
      r = await stopCdc(ctx);
      break;
    case 'acknowledge':
      // The operator resolved the recorded apply errors; the status that follows shows the rest.
      await acknowledgeCdcErrors(ctx);
      r = await cdcStatus(ctx, waitMs);
      break;
    case 'resync':
      r = (await resyncTables(ctx, core.getMultilineInput('tables').flatMap((l) => l.split(',')).map((t) => t.trim()).filter(Boolean))).status;
      break;
    case 'partial-restart':
      r = (await restartCdc(ctx, { group: core.getInput('group', { required: true }) })).status;
      break;
    case 'full-restart':
      r = (await restartCdc(ctx, { bundleFile: core.getInput('bundle-file') || 'pgshift-failure-state.json' })).status;
      break;
    default:
      throw inputError('input.operation', `operation ${JSON.stringify(operation)} is not known`, 'use start, status, pause, resume, stop, acknowledge, resync, partial-restart or full-restart');
  }
  for (const p of statusProblems(r)) core.warning(`${p.where}: ${p.problem}`);
  const lag = statusLag(r);
  return {
    report: r,
    markdown: cdcMarkdown(r),
    outputs: {
      healthy: r.healthy,
      'max-lag-bytes': lag.bytes,
      'max-lag-seconds': lag.seconds,
      status: json(r),
    },
    exitCode: r.healthy ? 0 : 1,
  };
});
