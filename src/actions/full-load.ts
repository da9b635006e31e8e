import * as core from '@actions/core';
import { runFullLoad } from '../phases/full-load.js';
import { migrationStatus } from '../phases/status.js';
import { fullLoadMarkdown, statusMarkdown } from '../report/markdown.js';
import { booleanInput, json, runAction } from './_runner.js';

await runAction('full-load', async (ctx) => {
  const r = await runFullLoad(ctx, { group: core.getInput('group') || undefined, restart: booleanInput('restart') });
  return {
    report: r,
    markdown: fullLoadMarkdown(r),
    outputs: {
      rows: r.rows,
      bytes: r.bytes,
      seconds: r.seconds.toFixed(1),
      'post-data': r.postData,
      'snapshot-lsns': json(Object.fromEntries(r.groups.map((g) => [g.group, g.snapshotLsn]))),
      slots: json(Object.fromEntries(r.groups.map((g) => [g.group, g.slot]))),
    },
  };
}, async (ctx) => `${statusMarkdown(await migrationStatus(ctx))}\nRe-run this job: the load resumes from here (finished tables are kept).\n`);
