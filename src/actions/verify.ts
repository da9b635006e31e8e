import * as core from '@actions/core';
import { runVerify } from '../phases/verify.js';
import { verifyMarkdown } from '../report/markdown.js';
import { booleanInput, json, runAction } from './_runner.js';

await runAction('verify', async (ctx) => {
  const tables = core.getMultilineInput('tables');
  const r = await runVerify(ctx, { exact: booleanInput('exact'), tables: tables.length ? tables : undefined });
  for (const t of r.differences) core.error(`verify: ${t} differs between source and target`);
  return {
    markdown: verifyMarkdown(r),
    outputs: { verdict: r.verdict, differences: json(r.differences), unsettled: json(r.unsettled), tables: r.tables.length },
    exitCode: r.verdict === 'different' ? 1 : 0,
  };
});
