import * as core from '@actions/core';
import { runVerify } from '../phases/verify.js';
import { verifyMarkdown } from '../report/markdown.js';
import { booleanInput, json, runAction } from './_runner.js';

await runAction('verify', async (ctx) => {
  const tables = core.getMultilineInput('tables');
  const mode = core.getInput('mode') === 'quick' ? 'quick' : 'full';
  const r = await runVerify(ctx, { exact: booleanInput('exact'), mode, tables: tables.length ? tables : undefined });
  for (const t of r.differences) core.error(`verify: ${t} differs between source and target`);
  return {
    report: r,
    markdown: verifyMarkdown(r),
    outputs: {
      verdict: r.verdict,
      differences: json(r.differences),
      unsettled: json(r.unsettled),
      tables: r.tables.length,
      'differing-rows': r.tables.reduce((n, t) => n + t.differenceCount, 0),
      'schema-differences': r.schema.length,
      report: json(r),
    },
    exitCode: r.verdict === 'different' ? 1 : 0,
  };
});
