import * as core from '@actions/core';
import { inputError } from '../core/errors.js';
import { cdcStatus, setCdcPaused, startCdc, stopCdc } from '../phases/cdc.js';
import { resyncTables, restartCdc } from '../phases/resync.js';
import { cdcMarkdown } from '../report/markdown.js';
import { json, runAction } from './_runner.js';

await runAction('cdc', async (ctx) => {
  const operation = core.getInput('operation') || 'status';
  const waitMs = Number(core.getInput('wait-seconds') || '5') * 1000;
  let r;
  switch (operation) {
    case 'start':
      r = await startCdc(ctx);
      break;
    case 'status':
      r = await cdcStatus(ctx, waitMs);
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
      throw inputError('input.operation', `operation ${JSON.stringify(operation)} is not known`, 'use start, status, pause, resume, stop, resync, partial-restart or full-restart');
  }
  for (const g of r.groups) for (const p of g.problems) core.warning(`${g.group}: ${p}`);
  return {
    report: r,
    markdown: cdcMarkdown(r),
    outputs: {
      healthy: r.healthy,
      'max-lag-bytes': Math.max(0, ...r.groups.map((g) => g.lagBytes ?? 0)),
      'max-lag-seconds': Math.max(0, ...r.groups.map((g) => g.lagSeconds ?? 0)),
      status: json(r),
    },
    exitCode: r.healthy ? 0 : 1,
  };
});
