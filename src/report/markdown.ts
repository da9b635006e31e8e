import { formatBytes } from '../config/size.js';
import type { AssessResult } from '../phases/assess.js';
import type { AnyCdcStatus } from '../phases/cdc.js';
import { joinText, type DdlEntry, type TableJoin } from '../pg/ddl.js';
import type { DmsStatus } from '../phases/cdc-dms.js';
import type { CutoverResult } from '../phases/cutover.js';
import type { RollbackResult } from '../phases/rollback.js';
import type { FullLoadResult } from '../phases/full-load.js';
import type { ResumeSummary } from '../phases/load-resume.js';
import { formatSeconds } from '../phases/load-progress.js';
import type { TeardownResult } from '../phases/teardown.js';
import type { MigrationStatus } from '../phases/status.js';
import type { VerifyResult } from '../phases/verify.js';
import type { InitResult } from '../phases/init.js';

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
  if (r.extensions.length) {
    out.push(
      '',
      '#### Extensions',
      table(
        ['extension', 'source', 'target default', 'target offers', 'the load installs'],
        r.extensions.map((e) => [e.name, e.source, e.targetDefault ?? '–', e.available ? e.available.join(', ') || 'nothing' : 'unknown', e.install === null ? '–' : `${e.install}${e.relation === 'same' ? " (the source's)" : e.relation === 'newer' ? ` (newer${e.newerAccepted ? ', accepted' : ', not accepted: extensions.acceptNewer'})` : e.relation === 'older' ? ' (older)' : ''}`]),
      ),
    );
  }
  if (r.roles.missing.length) {
    out.push('', `#### Roles missing on the target (roles: ${r.roles.mode}${r.roles.mode === 'copy' ? ' — the full load creates them' : ''})`, table(['role', 'needed as'], r.roles.missing.map((m) => [m.role, m.neededAs.replace(/^[^ ]+ \((.*)\)$/, '$1')])));
  }
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
    ...(r.failedViews?.length
      ? [
          `**Materialized views not refreshed on the target** (the load is complete; fix the cause, then \`REFRESH MATERIALIZED VIEW\` each on the target — verify and the cut-over gate name them until then):`,
          '',
          table(['view', 'error'], r.failedViews.map((f) => [f.view, f.error])),
          '',
        ]
      : []),
    ...resumeSection(r.groups.flatMap((g) => (g.resumed ? [{ group: g.group, ...g.resumed }] : []))),
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
    ...(r.extensions?.length
      ? ['', 'Extensions:', '', table(['extension', 'source', 'target', 'how'], r.extensions.map((e) => [e.name, e.source, e.target ?? '–', `${e.action}${e.relation === 'same' ? '' : e.relation === 'unavailable' ? '' : ` (${e.relation} than the source's)`}`]))]
      : []),
    ...(r.roles?.created.length
      ? [
          '',
          'Roles created on the target (roles: copy):',
          '',
          table(
            ['role', 'attributes dropped', 'granted instead', 'password'],
            r.roles.created.map((c) => [c.role, c.dropped.join(', ') || '–', c.granted.join(', ') || '–', c.password === 'copied' ? 'hash copied' : c.password === 'not readable' ? 'none: set one' : 'none on the source']),
          ),
          ...(r.roles.skipped.length ? ['', `Skipped: ${r.roles.skipped.join('; ')}`] : []),
        ]
      : []),
  ].join('\n') + '\n';
}

export function cdcMarkdown(r: AnyCdcStatus): string {
  if (r.engine === 'dms') return dmsMarkdown(r);
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
    ...ddlSection(r.groups.flatMap((g) => g.ddl), r.ddl),
  ].join('\n') + '\n';
}

const DDL_APPLIED_SHOWN = 5;

/** DDL since the streams started: everything not applied, and the last few applied. */
export function ddlSection(entries: DdlEntry[], ddl?: { mode: string; joins: TableJoin[]; refreshed: string[] }): string[] {
  const unique = [...new Map(entries.map((e) => [e.id, e])).values()].sort((a, b) => a.id - b.id);
  const applied = unique.filter((e) => e.state === 'applied');
  const shown = [...unique.filter((e) => e.state !== 'applied'), ...applied.slice(-DDL_APPLIED_SHOWN)].sort((a, b) => a.id - b.id);
  const out: string[] = [];
  if (shown.length) {
    out.push(
      '',
      `#### DDL on the source (cdc.ddl: ${ddl?.mode ?? 'detect'}): ${applied.length} applied, ${unique.length - applied.length} other`,
      table(
        ['#', 'at', 'group', 'command', 'object', 'state', 'detail'],
        shown.map((e) => [e.id, e.at, e.stream ?? 'all', e.command, e.object, e.state === 'applied' ? e.state : `**${e.state}**`, (e.detail ?? '').slice(0, 160)]),
      ),
    );
  }
  for (const j of ddl?.joins ?? []) out.push(`- ${joinText(j)}`);
  return out;
}

const num = (v: number | null, digits = 0) => (v === null ? '–' : v.toFixed(digits));
const bytes = (v: number | null) => (v === null ? '–' : formatBytes(v));

function dmsMarkdown(r: DmsStatus): string {
  const i = r.instance;
  const out = [
    `### pgshift cdc status (dms) — ${r.healthy ? 'healthy' : 'FAILING'}`,
    '',
    table(
      ['task', 'group', 'health', 'status', 'latency source (s)', 'latency target (s)', 'heartbeat lag (s)', 'incoming changes', 'start LSN', 'tables in error'],
      r.tasks.map((t) => [
        t.identifier,
        t.group,
        t.health,
        t.status + (t.stopReason ? ` (${t.stopReason})` : ''),
        num(t.latencySourceSeconds),
        num(t.latencyTargetSeconds),
        num(t.heartbeatLagSeconds, 2),
        num(t.incomingChanges),
        t.startLsn,
        t.tablesErrored.join(', ') || '–',
      ]),
    ),
    '',
    `Replication instance **${i.identifier}**: CPU ${num(i.cpuPercent)}%, freeable memory ${bytes(i.freeableMemoryBytes)}, swap ${bytes(i.swapBytes)}, free storage ${bytes(i.freeStorageBytes)}.`,
    '',
    table(['slot (source)', 'retained WAL', 'active'], r.slots.map((x) => [x.slot, bytes(x.retainedBytes), x.active ? 'yes' : 'no'])),
  ];
  if (r.applyExceptions.length) {
    out.push('', `#### New apply exceptions (${r.applyExceptions.length})`, table(['time', 'task', 'table', 'LOB truncation', 'error'], r.applyExceptions.slice(0, 50).map((e) => [e.at, e.task, e.table, e.truncation ? '**yes**' : 'no', e.error.slice(0, 200)])));
  }
  out.push(...latencyCharts(r));
  const problems = [
    ...r.tasks.flatMap((t) => t.problems.map((p) => `- **${t.identifier}**: ${p}`)),
    ...i.problems.map((p) => `- **${i.identifier}**: ${p}`),
    ...r.slots.filter((x) => x.problem).map((x) => `- **${x.slot}**: ${x.problem}`),
    ...r.applyExceptions.filter((e) => e.truncation).map((e) => `- **${e.table}**: a LOB was truncated at ${e.at} — backfill the row from the source and raise the table's LOB limit`),
    ...r.ddlProblems.map((p) => `- **DDL**: ${p}`),
  ];
  if (problems.length) out.push('', ...problems);
  out.push(...ddlSection(r.ddl));
  return out.join('\n') + '\n';
}

/**
 * Mermaid line charts of CDCLatencySource + CDCLatencyTarget per minute over the last hour: one per
 * task, or with more than four tasks one chart of the worst task each minute.
 */
function latencyCharts(r: DmsStatus): string[] {
  const out: string[] = [];
  let charts = r.latency;
  if (charts.length > 4) {
    const worst = new Map<string, number>();
    for (const s of charts) for (const p of s.points) worst.set(p.at, Math.max(worst.get(p.at) ?? 0, p.seconds));
    charts = [{ identifier: `the worst of ${charts.length} tasks`, points: [...worst].sort(([a], [b]) => a.localeCompare(b)).map(([at, seconds]) => ({ at, seconds })) }];
  }
  for (const series of charts) {
    const points = series.points.slice(-60);
    if (points.length < 2) continue;
    const max = Math.max(1, ...points.map((p) => p.seconds));
    out.push(
      '',
      '```mermaid',
      'xychart-beta',
      `  title "CDC latency of ${series.identifier} (s, source + target)"`,
      `  x-axis [${points.map((p) => `"${p.at.slice(11, 16)}"`).join(', ')}]`,
      `  y-axis "seconds" 0 --> ${Math.ceil(max * 1.1)}`,
      `  line [${points.map((p) => Math.round(p.seconds * 10) / 10).join(', ')}]`,
      '```',
    );
  }
  return out;
}

export function verifyMarkdown(r: VerifyResult): string {
  const rows = r.tables.map((t) => [t.table, t.verdict, t.method, t.sourceRows, t.targetRows, `${t.mismatchedChunks}/${t.chunks}`, t.differenceCount, t.unsettledKeys]);
  const out = [
    `### pgshift verify — ${r.verdict}`,
    `${r.tables.length} table(s), ${r.mode} mode, ${r.exact ? 'exact (writes stopped)' : r.streaming ? 'while changes flow' : 'one pass, no stream applying (writes to the source are not fenced)'}, in ${r.seconds.toFixed(1)} s.` +
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
  if (r.schema.length) out.push('', '#### Schema differences', table(['kind', 'object', 'problem', 'source', 'target', 'fix'], r.schema.map((d) => [d.kind, d.object, d.detail ?? d.problem, d.source ?? '–', d.target ?? '–', d.fix ?? ''])));
  const behind = r.sequences.filter((q) => q.behind);
  for (const note of r.notes) out.push('', `Note: ${note}.`);
  if (behind.length) out.push('', `#### Sequences behind the source${r.notes.length ? '' : ' — a difference: the cut-over has carried them, or pgshift did not load this target'}`, table(['sequence', 'source', 'target'], behind.map((q) => [q.sequence, q.source, q.target])));
  const lo = r.largeObjects;
  if (lo && lo.copy.length + lo.remove.length > 0 && !r.notes.some((n) => n.startsWith('large objects'))) {
    out.push('', `#### Large objects — a difference: ${lo.copy.length} missing or different on the target${lo.remove.length ? `, ${lo.remove.length} only on the target` : ''} (OIDs ${[...lo.copy, ...lo.remove].slice(0, 20).join(', ')})`);
  }
  if (r.repairSql) out.push('', `Repair SQL: ${r.repairSql.statements} statement(s) in ${r.repairSql.file}${r.repairSql.applied ? ' — **applied to the target**' : ' (not applied)'}.`);
  return out.join('\n') + '\n';
}

function short(row: Record<string, unknown>): string {
  const text = JSON.stringify(row);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

export function cutoverMarkdown(r: CutoverResult): string {
  const earlier = r.recovered
    ? `An earlier cut-over was interrupted at the ${r.recovered.stage} stage (its process had gone): ${r.recovered.outcome === 'completed' ? 'it had been decided, and is now completed' : 'it had not been decided, and is now undone — the source takes writes'}.`
    : '';
  if (r.dryRun) {
    return [`### pgshift cutover — dry run`, ...(earlier ? [earlier, ''] : []), 'The gate passed. The cut-over would run, in order:', '', ...r.plannedSteps.map((s, i) => `${i + 1}. ${s}`)].join('\n') + '\n';
  }
  if (r.windowMs === null) {
    return [`### pgshift cutover — ${r.recovered ? `recovered (${r.recovered.outcome})` : 'nothing to recover'}`, earlier || 'No cut-over was left unfinished.', `The application writes to ${r.endpoint}.`].join('\n') + '\n';
  }
  return [
    ...(earlier ? [earlier, ''] : []),
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
  if (r.windowMs === null) {
    const what = r.recovered ? `An interrupted rollback (at its ${r.recovered.stage} stage) was ${r.recovered.outcome}.` : 'No interrupted rollback to recover.';
    return `### pgshift rollback — recovery\n${what} The application writes to ${r.endpoint}.\n`;
  }
  return [
    `### pgshift rollback — done`,
    `${r.recovered ? `An interrupted rollback (at its ${r.recovered.stage} stage) was ${r.recovered.outcome} first. ` : ''}Back on ${r.endpoint} after ${r.windowMs} ms of write pause; ${r.sequences.length} sequence(s) carried back. The target stays sealed.`,
    '',
    table(['step', 'ms'], r.steps.map((s) => [s.step, s.ms])),
  ].join('\n') + '\n';
}

export function teardownMarkdown(r: TeardownResult): string {
  return [
    `### pgshift teardown`,
    r.dropped.length ? r.dropped.map((d) => `- dropped ${d}`).join('\n') : 'Nothing left to remove.',
    ...(r.keptRoles?.length ? ['', `Kept on the target, as they own the migrated objects: the roles the full load created (${r.keptRoles.join(', ')}).`] : []),
  ].join('\n') + '\n';
}

/** What to do about phases whose process is gone (the journal says running, nobody runs them). */
function interruptedHints(phases: MigrationStatus['phases']): string[] {
  const gone = phases.filter((p) => p.state === 'interrupted');
  if (!gone.length) return [];
  const next = (phase: string) =>
    phase === 'cutover' || phase === 'rollback'
      ? `run pgshift ${phase}: it finishes or undoes the interrupted ${phase === 'cutover' ? 'cut-over' : 'rollback'} first (its watchdog may already have)`
      : `run pgshift ${phase.split(':')[0].replace('cdc', 'cdc start')} again: it continues from where it stopped`;
  return [...gone.map((p) => `- **${p.phase} was interrupted** (the process running it is gone): ${next(p.phase)}.`), ''];
}

/** Per group of each load: share done, rate over the last minutes, estimated finish. */
function loadGroupRows(loads: MigrationStatus['loads']): string[] {
  const rows = loads.flatMap((l) => (l.groups ?? []).map((g) => ({ l, g })));
  if (!rows.length) return [];
  return [
    table(
      ['group', 'done', 'rate (last 5 min)', 'ETA', 'finish (UTC)'],
      rows.map(({ l, g }) => [
        g.group,
        `${Math.floor(g.share * 100)}% (${formatBytes(g.doneBytes)} of ≈${formatBytes(g.estimatedBytes)})`,
        `${formatBytes(g.bytesPerSecond)}/s`,
        l.state === 'running' && g.etaSeconds !== null ? formatSeconds(g.etaSeconds) : l.state === 'running' ? '?' : `– (${l.state})`,
        l.state === 'running' && g.finishAt ? g.finishAt.slice(0, 19).replace('T', ' ') : '–',
      ]),
    ),
    '',
  ];
}

/** What a resumed load kept, redid and created, per group (full-load result and pgshift status). */
export function resumeSection(resumes: Array<{ group: string; state?: string } & ResumeSummary>): string[] {
  if (!resumes.length) return [];
  return [
    'Resumed after an interrupted load — finished tables kept at their snapshot, the rest copied from a newer one:',
    '',
    table(
      ['group', 'kept', 'copied by the resume', 'of which redone', 'resume stream (snapshot)', 'streams dropped / applied up to the bridge'],
      resumes.map((x) => [
        x.state && x.state !== 'done' ? `${x.group} (${x.state})` : x.group,
        `${x.kept.tables} table(s), ${x.kept.rows} rows, ${formatBytes(x.kept.bytes)}`,
        `${x.pending} table(s), ${x.copied.rows} rows, ${formatBytes(x.copied.bytes)}`,
        `${x.discarded.rows} rows, ${formatBytes(x.discarded.bytes)} of finished parts${x.discarded.tables.length ? ` (${x.discarded.tables.join(', ')})` : ''}; ~${formatBytes(x.inFlightBytes)} in flight`,
        x.stream ? `${x.stream} (${x.snapshotLsn})` : 'none (nothing left to copy)',
        `${x.dropped.join(', ') || '–'} / ${x.drained.join(', ') || '–'}`,
      ]),
    ),
    '',
  ];
}

export function statusMarkdown(r: MigrationStatus): string {
  if (!r.found) return `### pgshift status — ${r.migration}\nNo journal on the target: nothing has run yet (or teardown removed it).\n`;
  return [
    `### pgshift status — ${r.migration}`,
    `${r.tables.done} table(s) loaded, ${r.tables.rows} rows, ${formatBytes(r.tables.bytes)}.`,
    '',
    table(['phase', 'state', 'started', 'finished'], r.phases.map((p) => [p.phase, p.state, p.startedAt, p.finishedAt ?? '–'])),
    '',
    ...interruptedHints(r.phases),
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
          ...loadGroupRows(r.loads),
        ]
      : []),
    ...resumeSection(r.resumes),
    table(['group', 'state', 'slot', 'snapshot', 'LSN'], r.streams.map((s) => [s.group, s.state, s.slot, s.snapshotMode, s.snapshotLsn ?? '–'])),
    '',
    ...r.events.slice(-10).map((e) => `- ${e.at} ${e.phase} ${e.level}: ${e.message}`),
  ].join('\n') + '\n';
}

export function initMarkdown(r: InitResult): string {
  const groups = r.groups.map((g) => `${g.name} (${g.tables.join(', ')})`).join('; ');
  const flagged = r.exportNeeded ? 'export SOURCE_URL and TARGET_URL (the plan reads them from the environment), then: ' : '';
  return [
    `### pgshift init — wrote ${r.file}`,
    '',
    `Migration ${r.name}: ${r.source.label} (PostgreSQL ${r.source.major}) → ${r.target.label} (PostgreSQL ${r.target.major}), ${r.tables} table(s) in ${r.groups.length} group(s): ${groups}.`,
    `Assess found ${r.blockers} blocker(s) and ${r.warnings} warning(s)${r.blockers ? ': pgshift assess lists them with their fixes' : ''}.`,
    '',
    `Next: ${flagged}pgshift assess, then full-load, cdc start, verify, cutover (docs/guide.md walks through each decision).`,
    'Before the cut-over, set cutover.roles to the roles the application writes with (or cutover.fence: database).',
    '',
  ].join('\n');
}
