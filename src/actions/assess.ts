import { proposalFrom, runAssess } from '../phases/assess.js';
import { assessMarkdown } from '../report/markdown.js';
import { json, runAction } from './_runner.js';

await runAction('assess', async (ctx) => {
  const r = await runAssess(ctx);
  return {
    report: r,
    markdown: assessMarkdown(r),
    outputs: { blockers: r.blockers, groups: json(r.groups.map((g) => g.name)), proposal: json(proposalFrom(r, ctx.plan.cdc.engine)), report: json(r) },
    exitCode: r.blockers > 0 ? 3 : 0,
  };
});
