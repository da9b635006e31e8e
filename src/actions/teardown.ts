import { runTeardown } from '../phases/teardown.js';
import { teardownMarkdown } from '../report/markdown.js';
import { json, runAction } from './_runner.js';

await runAction('teardown', async (ctx) => {
  const r = await runTeardown(ctx);
  return { report: r, markdown: teardownMarkdown(r), outputs: { dropped: json(r.dropped) } };
});
