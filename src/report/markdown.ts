import { formatBytes } from '../config/size.js';
import type { AssessResult } from '../phases/assess.js';
import type { CdcStatus } from '../phases/cdc.js';
import type { CutoverResult, RollbackResult } from '../phases/cutover.js';
import type { FullLoadResult } from '../phases/full-load.js';
import type { TeardownResult } from '../phases/teardown.js';
import type { MigrationStatus } from '../phases/status.js';
import type { VerifyResult } from '../phases/verify.js';

/**
 * Markdown renderings of each phase's result: the job summary in Actions and the human output of
 * the CLI. Pure functions of the typed results, so the CLI, the actions and the README examples
 * show the same thing.
 */
function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function assessMarkdown(r: AssessResult): string {
  const out = [
    `### pgshift assess — ${r.blockers ? `${r.blockers} blocker(s)` : 'no blockers'}`,
    `Source ${r.source.label} (PostgreSQL ${r.source.version}) → target ${r.target.label} (PostgreSQL ${r.target.version}); ${r.tables.length} tables, ${r.sequences} sequence(s); read in ${r.seconds.toFixed(1)} s.`,
    '',
    table(['group', 'tables', 'size', 'rows (estimate)'], r.groups.map((g) => [g.name, g.tables, formatBytes(g.bytes), Math.round(g.rowEstimate)])),
    '',
  ];
  if (r.findings.length === 0) out.push('No findings: nothing blocks this migration.');
  else out.push(table(['severity', 'object', 'finding', 'fix'], r.findings.map((f) => [f.severity, f.object, f.message, f.fix ?? ''])));
  const lob = r.tables.filter((t) => t.lob);
  out.push(
    '',
    `#### LOB columns`,
    `${r.lobScan.tables} table(s) with LOB columns: ${r.lobScan.exactTables} measured exactly, ${r.lobScan.sampledTables} from a TABLESAMPLE sample; ${r.lobScan.rowsScanned} rows read in ${(r.lobScan.ms / 1000).toFixed(1)} s.`,
  );
  if (lob.length) {
    out.push('', table(['table', 'largest value', 'measured', 'limit to use (KB)', 'mode'], lob.map((t) => [t.table, formatBytes(t.lob!.maxBytes), t.lob!.exact ? 'exact' : `${t.lob!.samplePercent.toFixed(2)}% sample`, t.lob!.limitKb, t.lob!.mode])));
  }
  const noBatch = r.tables.filter((t) => !t.batchApply).map((t) => t.table);
  out.push('', `#### Batch apply`, noBatch.length ? `Not eligible (no key, or another unique constraint): ${noBatch.join(', ')}.` : 'Every table is eligible.');
  const proposed = r.proposal[r.proposal.rule];
  out.push(
    '',
    `#### Proposed groups (${r.proposal.rule} rule)`,
    table(['group', 'tables', 'size'], proposed.map((g) => [g.name, g.tables.join(', '), formatBytes(g.bytes)])),
    '',
    `#### WAL headroom`,
    `Source WAL rate ${formatBytes(r.wal.bytesPerSecond)}/s; full load estimated at ${r.wal.loadHours.toFixed(2)} h; ` +
      (r.wal.maxSlotWalKeepSize === null ? 'max_slot_wal_keep_size unlimited.' : `max_slot_wal_keep_size ${formatBytes(r.wal.maxSlotWalKeepSize)} lasts ${r.wal.headroomHours === null ? 'indefinitely (no WAL written)' : `${r.wal.headroomHours.toFixed(1)} h`}.`),
  );
  return out.join('\n').trim() + '\n';
}

export function fullLoadMarkdown(r: FullLoadResult): string {
  const shown = r.tables.filter((t) => t.state !== 'skipped').slice(0, 30);
  return [
    `### pgshift full-load`,
    `${r.rows} rows (${formatBytes(r.bytes)}) in ${r.seconds.toFixed(1)} s — ${r.rowsPerSecond} rows/s; ${r.indexesBuiltEarly} index(es) built as tables landed; post-data: ${r.postData}; ${r.sequences} sequence(s) set.`,
    '',
    table(
      ['group', 'slot', 'snapshot LSN', 'tables', 'rows', 'bytes', 'skipped (already loaded)'],
      r.groups.map((g) => [g.group, g.slot, g.snapshotLsn, g.tables, g.rows, formatBytes(g.bytes), g.skipped]),
    ),
    '',
    ...(shown.length
      ? [
          `Tables copied${r.tables.length > shown.length ? ` (the ${shown.length} largest)` : ''}:`,
          '',
          table(
            ['table', 'group', 'parts', 'rows', 'COPY bytes', 'copy s', 'MB/s', 'indexes'],
            shown.map((t) => [t.table, t.group, t.parts, t.rows, formatBytes(t.bytes), t.seconds.toFixed(1), t.seconds > 0 ? (t.bytes / 1048576 / t.seconds).toFixed(1) : '–', `${t.indexes}/${t.indexesExpected}`]),
          ),
        ]
      : []),
  ].join('\n') + '\n';
}

export function cdcMarkdown(r: CdcStatus): string {
  return [
    `### pgshift cdc status (${r.engine}) — ${r.healthy ? 'healthy' : 'FAILING'}`,
    '',
    table(
      ['group', 'health', 'lag', 'lag (s)', 'source LSN', 'confirmed LSN', 'applied LSN', 'retained WAL', 'wal_status', 'tables', 'apply errors'],
      r.groups.map((g) => [
        g.group,
        g.health,
        g.lagBytes === null ? '–' : formatBytes(g.lagBytes),
        g.lagSeconds === null ? '–' : g.lagSeconds.toFixed(2),
        g.sourceLsn,
        g.confirmedFlushLsn ?? '–',
        g.appliedLsn ?? '–',
        g.retainedBytes === null ? '–' : formatBytes(g.retainedBytes),
        g.walStatus ?? '–',
        Object.entries(g.tables).map(([k, n]) => `${n} ${k}`).join(', ') || '–',
        g.applyErrors ?? '–',
      ]),
    ),
    ...r.groups.flatMap((g) => g.problems.map((p) => `- **${g.group}**: ${p}`)),
  ].join('\n') + '\n';
}

export function verifyMarkdown(r: VerifyResult): string {
  const rows = r.tables.map((t) => [t.table, t.verdict, t.method, t.sourceRows, t.targetRows, `${t.mismatchedChunks}/${t.chunks}`, t.differenceCount, t.unsettledKeys]);
  const out = [
    `### pgshift verify — ${r.verdict}`,
    `${r.tables.length} table(s), ${r.mode} mode, ${r.exact ? 'exact (writes stopped)' : 'while changes flow'}, in ${r.seconds.toFixed(1)} s.` +
      (r.differences.length ? ` **Different: ${r.differences.join(', ')}.**` : '') +
      (r.unsettled.length ? ` Still changing under every check (re-check within the cut-over window): ${r.unsettled.join(', ')}.` : ''),
    '',
    table(['table', 'verdict', 'method', 'source rows', 'target rows', 'mismatched chunks', 'differing rows', 'unsettled keys'], rows),
  ];
  const diffs = r.tables.flatMap((t) => t.differences.map((d) => ({ t: t.table, d })));
  if (diffs.length) {
    out.push('', '#### Differing rows', table(['table', 'key', 'kind', 'source', 'target'], diffs.slice(0, 200).map(({ t, d }) => [t, JSON.stringify(d.key), d.kind, d.source ? short(d.source) : '–', d.target ? short(d.target) : '–'])));
    if (diffs.length > 200) out.push(`… and ${diffs.length - 200} more in the JSON report.`);
  }
  if (r.schema.length) out.push('', '#### Schema differences', table(['kind', 'object', 'problem', 'source', 'target'], r.schema.map((d) => [d.kind, d.object, d.problem, d.source ?? '–', d.target ?? '–'])));
  const behind = r.sequences.filter((q) => q.behind);
  if (behind.length) out.push('', '#### Sequences behind the source (expected while CDC runs: the cut-over sets them)', table(['sequence', 'source', 'target'], behind.map((q) => [q.sequence, q.source, q.target])));
  if (r.repairSql) out.push('', `Repair SQL: ${r.repairSql.statements} statement(s) in ${r.repairSql.file}${r.repairSql.applied ? ' — **applied to the target**' : ' (not applied)'}.`);
  return out.join('\n') + '\n';
}

function short(row: Record<string, unknown>): string {
  const text = JSON.stringify(row);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

export function cutoverMarkdown(r: CutoverResult): string {
  if (r.dryRun) {
    return [`### pgshift cutover — dry run`, 'The gate passed. The cut-over would run, in order:', '', ...r.plannedSteps.map((s, i) => `${i + 1}. ${s}`)].join('\n') + '\n';
  }
  return [
    `### pgshift cutover — done`,
    `Write-unavailable window (fence → switch): **${r.windowMs} ms**. The application now writes to ${r.endpoint}.`,
    `Fence: ${r.fence?.strategy}, ${r.fence?.terminated ?? 0} session(s) ended. ${r.sequences.length} sequence(s) set. Final check: ${r.finalCheck}.` +
      (r.reverse ? ` Reverse replication ${r.reverse.subscription} is running: \`pgshift rollback\` moves back without loss.` : '') +
      (r.repointed.length ? ` Repointed: ${r.repointed.map((x) => `${x.kind} ${x.target}`).join(', ')}.` : ''),
    '',
    table(['step', 'ms', 'budget (ms)'], r.steps.map((s) => [s.step, s.ms, s.budgetMs ?? ''])),
  ].join('\n') + '\n';
}

export function rollbackMarkdown(r: RollbackResult): string {
  return [
    `### pgshift rollback — done`,
    `Back on ${r.endpoint} after ${r.windowMs} ms of write pause; ${r.sequences.length} sequence(s) carried back. The target stays fenced.`,
    '',
    table(['step', 'ms'], r.steps.map((s) => [s.step, s.ms])),
  ].join('\n') + '\n';
}

export function teardownMarkdown(r: TeardownResult): string {
  return [`### pgshift teardown`, r.dropped.length ? r.dropped.map((d) => `- dropped ${d}`).join('\n') : 'Nothing left to remove.'].join('\n') + '\n';
}

export function statusMarkdown(r: MigrationStatus): string {
  if (!r.found) return `### pgshift status — ${r.migration}\nNo journal on the target: nothing has run yet (or teardown removed it).\n`;
  return [
    `### pgshift status — ${r.migration}`,
    `${r.tables.done} table(s) loaded, ${r.tables.rows} rows, ${formatBytes(r.tables.bytes)}.`,
    '',
    table(['phase', 'state', 'started', 'finished'], r.phases.map((p) => [p.phase, p.state, p.startedAt, p.finishedAt ?? '–'])),
    '',
    ...(r.loads.length
      ? [
          table(
            ['full load (job)', 'state', 'tables', 'copied', 'of ≤', 'rate', 'ETA ≤', 'in flight', 'as of'],
            r.loads.map((l) => [
              l.scope === '*' ? 'all groups' : l.scope,
              l.state,
              `${l.tablesDone}/${l.tables}`,
              formatBytes(l.bytes),
              formatBytes(l.estimatedBytes),
              `${formatBytes(l.bytesPerSecond)}/s`,
              l.state === 'running' && l.etaSeconds !== null ? `${l.etaSeconds} s` : '–',
              l.active.map((a) => `${a.table}${a.parts > 1 ? ` (${a.partsDone}/${a.parts})` : ''}`).join(', ') || '–',
              l.at,
            ]),
          ),
          '',
        ]
      : []),
    table(['group', 'state', 'slot', 'snapshot', 'LSN'], r.streams.map((s) => [s.group, s.state, s.slot, s.snapshotMode, s.snapshotLsn ?? '–'])),
    '',
    ...r.events.slice(-10).map((e) => `- ${e.at} ${e.phase} ${e.level}: ${e.message}`),
  ].join('\n') + '\n';
}
