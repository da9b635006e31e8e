import { Argument, Command, CommanderError, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { loadPlanFile } from '../config/load.js';
import { describeFailure, inputError, isPgshiftError, numberInput, type ExitCode, type PgshiftError } from '../core/errors.js';
import { resetChanges } from '../core/changes.js';
import { createLogger, type Level, type Logger } from '../core/log.js';
import { redact, redactDeep } from '../core/secrets.js';
import { proposalFrom, runAssess } from '../phases/assess.js';
import { writeProposal } from '../config/plan-writer.js';
import { acknowledgeCdcErrors, cdcStatus, setCdcPaused, startCdc, stopCdc, watchCdc, type AnyCdcStatus } from '../phases/cdc.js';
import { phaseContext, type PhaseContext } from '../phases/context.js';
import { runCutover } from '../phases/cutover.js';
import { runRollback } from '../phases/rollback.js';
import { runFullLoad } from '../phases/full-load.js';
import { runTeardown } from '../phases/teardown.js';
import { runVerify } from '../phases/verify.js';
import { runDemo } from '../local/demo.js';
import { resyncTables, restartCdc } from '../phases/resync.js';
import { migrationStatus } from '../phases/status.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { githubClient, parseRepo } from '../github/client.js';
import { reportFailure } from '../github/issue.js';
import { setupEnvironments } from '../github/setup.js';
import { runInit } from '../phases/init.js';
import { completionScript, shells } from './completion.js';
import { confirmDestructive, terminalAsk } from './confirm.js';
import { assessMarkdown, cdcMarkdown, initMarkdown, cutoverMarkdown, fullLoadMarkdown, rollbackMarkdown, statusMarkdown, teardownMarkdown, verifyMarkdown } from '../report/markdown.js';

/**
 * The `pgshift` command. It only parses, calls a phase and renders its result: human output with
 * progress on stderr, or with --json exactly one JSON document on stdout. Exit codes: 0 done,
 * 1 failed, 2 bad input or configuration, 3 a gate refused.
 */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  isTTY: boolean;
  /** Aborted by SIGINT/SIGTERM (the command's entry installs the handlers; tests may pass their own). */
  signal?: AbortSignal;
  /** The program and script that run this CLI again (for the cut-over's watchdog); absent in-process. */
  reinvoke?: string[];
  /**
   * Asks the person at the terminal and returns the answer. Absent without a terminal (CI, the
   * Actions, pipes): destructive commands then proceed without asking, as they always have.
   */
  ask?: (question: string) => Promise<string>;
}

export const defaultIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  isTTY: Boolean(process.stderr.isTTY),
  ask: terminalAsk(),
};

interface GlobalOptions {
  config: string;
  json?: boolean;
  debug?: boolean;
}

/** The destructive commands' own flag: --yes skips the question asked on a terminal. */
interface Confirmable {
  yes?: boolean;
}

const yesOption = () => new Option('-y, --yes', 'do not ask for confirmation on a terminal (without a terminal nothing is asked)');

/**
 * The CLI's logger: lines on stderr with a time; on a terminal, progress bars (Logger.board) kept
 * below the log lines.
 */
export function cliLogger(io: Io, debug?: boolean): Logger {
  let lastProgress = 0;
  // Lines currently drawn by the board (terminal only); a log line first erases them, then they
  // are drawn again below it, so bars stay at the bottom.
  let board: string[] = [];
  const erase = () => (board.length ? `\x1b[${board.length}F\x1b[J` : '');
  const draw = () => board.map((l) => `${l}\n`).join('');
  const sink = (level: Level, line: string) => {
    const prefix = level === 'info' || level === 'debug' ? '' : `${level}: `;
    io.stderr(`${erase()}${new Date().toISOString().slice(11, 19)} ${prefix}${line}\n${draw()}`);
  };
  const log = createLogger(sink, { debug });
  // Progress: every line on a terminal, at most one every few seconds elsewhere (CI logs).
  log.progress = (message) => {
    const now = Date.now();
    if (io.isTTY || now - lastProgress > 5000) {
      lastProgress = now;
      sink('info', message);
    }
  };
  if (io.isTTY) {
    log.board = (lines) => {
      const before = erase();
      board = lines.map((l) => redact(l));
      io.stderr(`${before}${draw()}`);
    };
  }
  return log;
}

export async function main(argv: string[], io: Io = defaultIo): Promise<ExitCode> {
  resetChanges();
  const cli = commandLine(io);
  addLoadCommands(cli);
  addCdcCommands(cli);
  addSwitchCommands(cli);
  addWayBackCommands(cli);
  addGithubCommands(cli);
  addLocalCommands(cli);
  const { program } = cli;
  // Usage errors (unknown option or command, missing argument, bad choice) name the command they
  // happened in, so the hint can point at its --help.
  const routeErrors = (cmd: Command) => {
    cmd.exitOverride((err) => {
      throw Object.assign(err, { command: cmd });
    });
    cmd.commands.forEach(routeErrors);
  };
  routeErrors(program);

  try {
    await program.parseAsync(argv);
  } catch (err) {
    // The options parsed before a usage error still count; --json may come after the mistake.
    const opts = { ...program.opts<GlobalOptions>(), json: program.opts<GlobalOptions>().json ?? argv.includes('--json') };
    if (err instanceof CommanderError) {
      const usage = usageError(err);
      return usage ? reportError(usage, opts, io) : 0;
    }
    return reportError(err, opts, io);
  }
  return cli.exitCode();
}

/** What every command's definition uses: the program, the I/O, and how a command runs and renders. */
interface CommandLine {
  program: Command;
  io: Io;
  logger: (opts: GlobalOptions) => Logger;
  /** The plan file's phase context (the plan read with its ${VAR} references resolved from the environment). */
  context: (opts: GlobalOptions) => PhaseContext;
  /** Run one command: render the result, map errors to the exit codes. */
  run: <T>(fn: (opts: GlobalOptions, ...args: any[]) => Promise<{ result: T; markdown: string; exit?: ExitCode }>) => (...args: any[]) => Promise<void>;
  exitCode: () => ExitCode;
}

function commandLine(io: Io): CommandLine {
  let exitCode: ExitCode = 0;
  const program = new Command();
  program
    .name('pgshift')
    .description('Move a live PostgreSQL database to another server across major versions with seconds of write downtime.')
    .version(`pgshift ${packageJson.version}`, '-V, --version', 'print the version')
    .option('-c, --config <file>', 'the migration plan', 'migration.yml')
    .option('--json', 'print one JSON result on stdout (logs stay on stderr)')
    .option('--debug', 'more detail in the logs')
    .helpOption('-h, --help', 'show help for the command')
    .helpCommand('help [command]', 'show help for a command')
    .configureHelp({ showGlobalOptions: true })
    // Usage errors are reported like every other error (one `pgshift:` line, or JSON): see below.
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s), outputError: () => {} })
    .showHelpAfterError(false)
    .addHelpText(
      'after',
      `
The plan is read from ./migration.yml unless --config names another file.
First steps: pgshift demo (a whole migration between two local servers), then
pgshift init --source-url URL --target-url URL (writes migration.yml for your servers).
Exit codes: 0 done, 1 failed, 2 bad input (nothing changed), 3 a gate refused (nothing changed).`,
    );

  const logger = (opts: GlobalOptions): Logger => cliLogger(io, opts.debug);

  const context = (opts: GlobalOptions): PhaseContext => {
    const { plan } = loadPlanFile(opts.config, io.env);
    return phaseContext(plan, logger(opts), io.signal);
  };

  const run = <T>(fn: (opts: GlobalOptions, ...args: any[]) => Promise<{ result: T; markdown: string; exit?: ExitCode }>) =>
    async (...args: any[]) => {
      const opts = program.opts<GlobalOptions>();
      try {
        const { result, markdown, exit } = await fn(opts, ...args);
        exitCode = exit ?? 0;
        if (opts.json) io.stdout(`${JSON.stringify(redactDeep({ ok: exitCode === 0, result }), jsonBigInt, 2)}\n`);
        else io.stdout(redact(markdown));
      } catch (err) {
        exitCode = reportError(err, opts, io);
      }
    };

  return { program, io, logger, context, run, exitCode: () => exitCode };
}

/** init, assess and full-load: from the two servers to a loaded target. */
function addLoadCommands({ program, io, logger, context, run }: CommandLine): void {
  program
    .command('init')
    .description('write a first migration.yml (or --config FILE) from the two servers: the groups assess proposes, secrets left as ${SOURCE_URL} and ${TARGET_URL}')
    .option('--source-url <url>', 'the source (primary) server (default: $SOURCE_URL)')
    .option('--target-url <url>', 'the target server (default: $TARGET_URL)')
    .option('--name <name>', "the migration's name (default: the source database's name)")
    .action(run(async (opts, cmd: { sourceUrl?: string; targetUrl?: string; name?: string }) => {
      const result = await runInit({ file: opts.config, sourceUrl: cmd.sourceUrl, targetUrl: cmd.targetUrl, name: cmd.name, env: io.env, log: logger(opts) });
      return { result, markdown: initMarkdown(result) };
    }));

  program
    .command('assess')
    .description('read both servers and report blockers, risks and the groups (exit 3 on blockers)')
    .option('--write-plan', 'write the proposed groups and per-table settings into the plan file (keeps what is there)')
    .action(run(async (opts, cmd: { writePlan?: boolean }) => {
      const ctx = context(opts);
      const result = await runAssess(ctx);
      let markdown = assessMarkdown(result);
      if (cmd.writePlan) {
        const written = writeProposal(opts.config, proposalFrom(result, ctx.plan.cdc.engine));
        markdown += `\n${written.changed ? `Wrote ${written.wroteGroups ? 'the groups and ' : ''}${written.addedTables.length} table setting(s) into ${opts.config}.` : `${opts.config} already holds the proposal; nothing changed.`}\n`;
      }
      return { result, markdown, exit: result.blockers > 0 ? 3 : 0 };
    }));

  program
    .command('full-load')
    .description('copy every group from a consistent snapshot at a known LSN, then indexes and constraints')
    .option('-g, --group <name>', 'load only this group (one workflow matrix job per group)')
    .option('--restart', "drop the group's slot and load it again from a new snapshot (asks on a terminal)")
    .addOption(yesOption())
    .action(run(async (opts, cmd: { group?: string; restart?: boolean } & Confirmable) => {
      const ctx = context(opts);
      if (cmd.restart) {
        await confirmDestructive(io, cmd, ctx.plan.name, `full-load --restart drops the slot of ${cmd.group ? `group ${cmd.group}` : 'every group'} of migration ${ctx.plan.name} on ${ctx.source.label} and loads ${cmd.group ? 'it' : 'them'} again into ${ctx.target.label}`);
      }
      const result = await runFullLoad(ctx, { group: cmd.group, restart: cmd.restart });
      return { result, markdown: fullLoadMarkdown(result) };
    }));
}

/** cdc and its subcommands: the streams from the snapshot LSN onwards. */
function addCdcCommands({ program, io, context, run }: CommandLine): void {
  const cdc = program.command('cdc').description('change data capture from the snapshot LSN onwards');
  const cdcResult = (result: AnyCdcStatus) => ({ result, markdown: cdcMarkdown(result), exit: (result.healthy ? 0 : 1) as ExitCode });
  cdc.command('start').description('create and enable one subscription (native) or DMS CDC-only task (dms) per group').action(run(async (opts) => cdcResult(await startCdc(context(opts)))));
  cdc
    .command('status')
    .description('lag in bytes and seconds, slot retention and apply errors per group (exit 1 when failing)')
    .option('--wait <seconds>', 'how long to wait for the heartbeat to be applied', '5')
    .option('--watch <seconds>', 'repeat every N seconds; stop at the first failing status (exit 1)')
    .option('--for <minutes>', 'with --watch: stop after this long with the last status (default: until interrupted)')
    .action(run(async (opts, cmd: { wait: string; watch?: string; for?: string }) => {
      const ctx = context(opts);
      const waitMs = numberInput(cmd.wait, '--wait') * 1000;
      if (cmd.watch) {
        const everyMs = numberInput(cmd.watch, '--watch', 1) * 1000;
        const forMs = cmd.for ? numberInput(cmd.for, '--for', 0.01) * 60_000 : Number.POSITIVE_INFINITY;
        return cdcResult(await watchCdc(ctx, { everyMs, forMs, waitMs, onStatus: (r) => io.stderr(cdcMarkdown(r)) }));
      }
      return cdcResult(await cdcStatus(ctx, waitMs));
    }));
  cdc.command('pause').description('stop applying changes (the slot keeps them)').action(run(async (opts) => cdcResult(await setCdcPaused(context(opts), true))));
  cdc.command('resume').description('apply changes again after cdc pause or cdc stop (the slots kept them)').action(run(async (opts) => cdcResult(await setCdcPaused(context(opts), false))));
  cdc.command('stop').description('stop applying changes (cdc resume or cdc start streams again; teardown removes the streams)').action(run(async (opts) => cdcResult(await stopCdc(context(opts)))));
  cdc
    .command('acknowledge')
    .description('after resolving them: clear the apply errors recorded so far from status and the cut-over gate')
    .addOption(yesOption())
    .action(run(async (opts, cmd: Confirmable) => {
      const ctx = context(opts);
      await confirmDestructive(io, cmd, ctx.plan.name, `cdc acknowledge records in the journal on ${ctx.target.label} that the apply errors of migration ${ctx.plan.name} recorded so far are resolved: status and the cut-over gate stop showing them`);
      const acknowledged = await acknowledgeCdcErrors(ctx);
      const total = acknowledged.reduce((n, a) => n + a.errors, 0);
      return { result: { acknowledged }, markdown: total ? `Acknowledged ${acknowledged.map((a) => `${a.errors} apply error(s) of ${a.stream}`).join(', ')}.` : 'No apply errors to acknowledge.' };
    }));
  cdc
    .command('resync')
    .description('copy chosen tables again from a new snapshot while the rest keeps streaming')
    .requiredOption('-t, --table <name...>', 'tables (schema.table) of one group')
    .action(run(async (opts, cmd: { table: string[] }) => {
      const r = await resyncTables(context(opts), cmd.table);
      return { result: r, markdown: `Resynced ${r.tables.join(', ')}: ${r.rows} rows at ${r.snapshotLsn}, streaming as ${r.stream}.\n\n${cdcMarkdown(r.status)}`, exit: (r.status.healthy ? 0 : 1) as ExitCode };
    }));
  cdc
    .command('restart')
    .description('load a group (partial) or everything (full) again from new slots and stream from there')
    .option('-g, --group <name>', 'restart only this group (partial restart)')
    .option('--bundle <file>', 'where a full restart preserves the failure state (JSON)')
    .addOption(yesOption())
    .action(run(async (opts, cmd: { group?: string; bundle?: string } & Confirmable) => {
      const ctx = context(opts);
      await confirmDestructive(io, cmd, ctx.plan.name, `cdc restart drops the streams of ${cmd.group ? `group ${cmd.group}` : 'every group'} of migration ${ctx.plan.name} and loads ${cmd.group ? 'it' : 'them'} again into ${ctx.target.label} from new slots`);
      const r = await restartCdc(ctx, { group: cmd.group, bundleFile: cmd.bundle });
      return { result: r, markdown: `Restarted ${r.groups.join(', ')}${r.bundle ? `; failure state in ${r.bundle}` : ''}.\n\n${cdcMarkdown(r.status)}`, exit: (r.status.healthy ? 0 : 1) as ExitCode };
    }));
}

/** verify, cutover and status: proving the target and moving the application. */
function addSwitchCommands({ program, io, context, run }: CommandLine): void {
  program
    .command('verify')
    .description('compare every table by exact row count and content hash (exit 1 on differences)')
    .option('--exact', 'writes are fenced: one exact pass without re-checks')
    .addOption(new Option('--mode <mode>', 'full: every chunk; quick: first, last and sampled chunks (for gates)').choices(['full', 'quick']).default('full'))
    .option('-t, --table <name...>', 'only these tables (schema.table)')
    .option('--repair-sql <file>', 'write SQL that would make the differing target rows equal the source')
    .option('--apply-repair', 'run that SQL on the target (needs --repair-sql; review it first)')
    .action(run(async (opts, cmd: { exact?: boolean; mode: 'full' | 'quick'; table?: string[]; repairSql?: string; applyRepair?: boolean }) => {
      const result = await runVerify(context(opts), { exact: cmd.exact, mode: cmd.mode, tables: cmd.table, repairSql: cmd.repairSql, applyRepair: cmd.applyRepair });
      return { result, markdown: verifyMarkdown(result), exit: result.verdict === 'different' ? 1 : 0 };
    }));

  program
    .command('cutover')
    .description('gate, fence writes, drain to a barrier, sync sequences, switch')
    .option('--dry-run', 'run the gate and print the steps, changing nothing')
    .option('--recover', 'only finish or undo a cut-over whose process is gone (what its watchdog runs)')
    .addOption(yesOption())
    .action(run(async (opts, cmd: { dryRun?: boolean; recover?: boolean } & Confirmable) => {
      const ctx = context(opts);
      if (!cmd.dryRun && !cmd.recover) {
        await confirmDestructive(io, cmd, ctx.plan.name, `cutover fences writes on ${ctx.source.label} and moves migration ${ctx.plan.name} to ${ctx.target.label}`);
      }
      // Should this process die inside the window, its watchdog runs this command to recover.
      const recoveryCommand = io.reinvoke ? { argv: [...io.reinvoke, 'cutover', '--recover', '--yes', '--config', path.resolve(opts.config)] } : undefined;
      const result = await runCutover(ctx, { dryRun: cmd.dryRun, recover: cmd.recover, recoveryCommand });
      return { result, markdown: cutoverMarkdown(result) };
    }));

  program
    .command('status')
    .description('where the migration stands, from the journal on the target (works while a phase runs elsewhere)')
    .action(run(async (opts) => {
      const result = await migrationStatus(context(opts));
      return { result, markdown: statusMarkdown(result) };
    }));
}

/** rollback and teardown: the way back, and what is left to clean up. */
function addWayBackCommands({ program, io, context, run }: CommandLine): void {
  program
    .command('rollback')
    .description('after a cut-over with cutover.rollback: fence the target, drain the reverse stream, move the application back')
    .option('--recover', 'only finish or undo a rollback whose process is gone (what its watchdog runs)')
    .addOption(yesOption())
    .action(run(async (opts, cmd: { recover?: boolean } & Confirmable) => {
      const ctx = context(opts);
      if (!cmd.recover) await confirmDestructive(io, cmd, ctx.plan.name, `rollback fences writes on ${ctx.target.label} and moves migration ${ctx.plan.name} back to ${ctx.source.label}`);
      // Should this process die inside the window, its watchdog runs this command to recover.
      const recoveryCommand = io.reinvoke ? { argv: [...io.reinvoke, 'rollback', '--recover', '--yes', '--config', path.resolve(opts.config)] } : undefined;
      const result = await runRollback(ctx, { recover: cmd.recover, recoveryCommand });
      return { result, markdown: rollbackMarkdown(result) };
    }));

  program
    .command('teardown')
    .description('drop subscriptions, publications, slots and the control schemas (idempotent)')
    .addOption(yesOption())
    .action(run(async (opts, cmd: Confirmable) => {
      const ctx = context(opts);
      await confirmDestructive(io, cmd, ctx.plan.name, `teardown drops the subscriptions, publications, slots and control schemas of migration ${ctx.plan.name} on ${ctx.source.label} and ${ctx.target.label}`);
      const result = await runTeardown(ctx);
      return { result, markdown: teardownMarkdown(result) };
    }));
}

/** github setup and failure-issue: the repository side of the workflows. */
function addGithubCommands({ program, io, logger, run }: CommandLine): void {
  const github = program.command('github').description('GitHub integration: environments and the dry run\'s failure issue (token in GITHUB_TOKEN)');
  github
    .command('setup')
    .description('create or update the staging, production and production-cutover environments')
    .option('--repo <owner/name>', 'repository (default: GITHUB_REPOSITORY)')
    .option('--reviewers <names>', 'required reviewers of production-cutover: logins or org/team, comma separated', '')
    .option('--wait-timer <minutes>', 'wait timer of production-cutover', '0')
    .option('--branch <name>', 'the only branch that may deploy production-cutover', 'main')
    .action(run(async (opts, cmd: { repo?: string; reviewers: string; waitTimer: string; branch: string }) => {
      const octokit = githubClient(io.env);
      const repo = parseRepo(cmd.repo ?? io.env.GITHUB_REPOSITORY);
      const result = await setupEnvironments(octokit, repo, { reviewers: cmd.reviewers.split(',').map((x) => x.trim()).filter(Boolean), waitTimerMinutes: Number(cmd.waitTimer), branch: cmd.branch }, logger(opts));
      const markdown = [
        `### pgshift github setup — ${repo.owner}/${repo.repo}`,
        ...result.environments.map((e) => `- ${e.name}: ${e.reviewers} required reviewer(s), wait timer ${e.waitTimer} min, deployments from ${e.branchPolicy}`),
        ...result.notes.map((n) => `- note: ${n}`),
      ].join('\n');
      return { result, markdown: `${markdown}\n` };
    }));
  github
    .command('failure-issue')
    .description('open (or comment on) the issue that tracks a failing dry run')
    .option('--repo <owner/name>', 'repository (default: GITHUB_REPOSITORY)')
    .option('--title <text>', 'title of a new issue', 'pgshift dry run failed')
    .requiredOption('--body-file <file>', 'Markdown body (the run\'s report)')
    .action(run(async (_opts, cmd: { repo?: string; title: string; bodyFile: string }) => {
      const octokit = githubClient(io.env);
      const repo = parseRepo(cmd.repo ?? io.env.GITHUB_REPOSITORY);
      const body = readFileSync(cmd.bodyFile, 'utf8');
      const result = await reportFailure(octokit, repo, cmd.title, redact(body));
      return { result, markdown: `${result.created ? 'Opened' : 'Commented on'} issue #${result.issue}.\n` };
    }));
}

/** demo and completion: what runs on this machine alone. */
function addLocalCommands({ program, io, logger, run }: CommandLine): void {
  program
    .command('demo')
    .description('a complete migration between two local servers of different majors, with writes flowing')
    .addOption(new Option('--source-major <n>', 'source PostgreSQL major').default('13'))
    .addOption(new Option('--target-major <n>', 'target PostgreSQL major').default('17'))
    .option('--scale <factor>', 'sample data size (1 = about 330,000 rows)', '1')
    .option('--plan-file <file>', 'where the demo writes the plan it ran', DEMO_PLAN_FILE)
    .action(run(async (opts, cmd: { sourceMajor: string; targetMajor: string; scale: string; planFile: string }) => {
      const result = await runDemo({
        sourceMajor: numberInput(cmd.sourceMajor, '--source-major'),
        targetMajor: numberInput(cmd.targetMajor, '--target-major'),
        scale: numberInput(cmd.scale, '--scale', 0.001),
        planFile: cmd.planFile,
        log: logger(opts),
      });
      return { result, markdown: result.markdown, exit: result.equal ? 0 : 1 };
    }));

  program
    .command('completion')
    .description('print the shell completion script: eval "$(pgshift completion bash)" in ~/.bashrc, or zsh in ~/.zshrc')
    .addArgument(new Argument('<shell>', 'the shell').choices(shells))
    .action((shell: (typeof shells)[number]) => {
      io.stdout(completionScript(program, shell));
    });
}

/** The file the demo writes its plan to, in the working directory. */
export const DEMO_PLAN_FILE = 'pgshift-demo.yml';

/**
 * A commander usage error as pgshift's own (exit 2, a hint naming the command's --help); undefined
 * when commander only printed help or the version as asked. Help printed because no command was
 * given (bare `pgshift`, `pgshift cdc`) is a usage error too.
 */
function usageError(err: CommanderError & { command?: Command }): PgshiftError | undefined {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return undefined;
  if (err.code === 'commander.help' && err.exitCode === 0) return undefined;
  const path = commandPath(err.command);
  if (err.code === 'commander.help') {
    const group = path.replace(/^pgshift ?/, '');
    return inputError('usage.command', group ? `${group} needs a command` : 'no command given', `choose one of the commands listed above (${path} --help shows them)`);
  }
  const message = err.message.replace(/^error: /, '').replace(/\.$/, '');
  const hint = err.code === 'commander.unknownCommand' ? `${path} --help lists the commands` : `${path} --help shows its usage`;
  return inputError(`usage.${err.code.replace(/^commander\./, '')}`, message, hint);
}

function commandPath(cmd: Command | undefined): string {
  const names: string[] = [];
  for (let c = cmd; c; c = c.parent ?? undefined) names.unshift(c.name());
  return names.join(' ') || 'pgshift';
}


function reportError(err: unknown, opts: GlobalOptions, io: Io): ExitCode {
  const f = describeFailure(err);
  if (opts.json) {
    io.stdout(`${JSON.stringify(redactDeep({ ok: false, exitCode: f.exitCode, error: { code: f.code, message: f.message, hint: f.hint } }), null, 2)}\n`);
  }
  io.stderr(`pgshift: ${redact(f.line)}\n`);
  if (opts.debug && !isPgshiftError(err) && err instanceof Error && err.stack) io.stderr(`${redact(err.stack)}\n`);
  return f.exitCode;
}

function jsonBigInt(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
