import * as core from '@actions/core';
import { runCutover } from '../phases/cutover.js';
import { cutoverMarkdown } from '../report/markdown.js';
import { booleanInput, json, runAction } from './_runner.js';

await runAction('cutover', async (ctx) => {
  const r = await runCutover(ctx, { dryRun: booleanInput('dry-run') });
  return {
    markdown: cutoverMarkdown(r),
    outputs: {
      'dry-run': r.dryRun,
      'window-ms': r.windowMs ?? '',
      endpoint: r.endpoint,
      steps: json(r.steps),
      sequences: r.sequences.length,
      'final-check': r.finalCheck,
    },
  };
});
