/**
 * The command line: one registry of verbs, thin handlers. Exit codes scripts can rely on:
 * 0 ok, 1 failure (a row or manifest failed, S3 unreachable…), 2 usage.
 */
import { Command, CommanderError, Option } from 'commander';
import { execFileSync } from 'node:child_process';
import { COGD_VERSION } from '../version.js';
import { readOptions, resolveHome } from '../config/index.js';
import {
  defaultText,
  longFlag,
  OPTIONS,
  optionsOf,
  type OptionName,
  type OptionSpec,
  type Verb,
} from '../config/options.js';
import { CogdError, describeError, UsageError } from '../errors.js';

// Command modules load on use: the S3 SDK alone adds a few hundred ms to start-up, which `cogd
// status` (run as often as condor_q) should not pay.
const commands = {
  poll: () => import('./commands/poll.js'),
  plan: () => import('./commands/plan.js'),
  start: () => import('./commands/start.js'),
  status: () => import('./commands/status.js'),
  rm: () => import('./commands/rm.js'),
  stop: () => import('./commands/stop.js'),
  logs: () => import('./commands/logs.js'),
  config: () => import('./commands/config.js'),
  verify: () => import('./commands/verify.js'),
  hold: () => import('./commands/hold.js'),
  retry: () => import('./commands/retry.js'),
  daemon: () => import('../daemon/process.js'),
};

const VERSION = COGD_VERSION;

/** `cogd 0.1.0, Node.js v24.x, GDAL 3.6.2`: what a bug report needs. */
function versions(): string {
  let gdal = 'GDAL not found on PATH (needed for --executor local)';
  try {
    gdal = execFileSync('gdal_translate', ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    }).trim();
  } catch {
    // reported as not found
  }
  return `cogd ${VERSION}\nNode.js ${process.version}\n${gdal}`;
}

/** Adds a verb's options from the option table (no commander defaults: "not given" must show). */
function withOptions(command: Command, verb: Verb, required: readonly OptionName[] = []): Command {
  for (const name of optionsOf(verb)) {
    const spec = OPTIONS[name] as OptionSpec;
    const fallback = defaultText(name);
    const option = new Option(spec.flags, `${spec.doc}${fallback === undefined ? '' : ` (default: ${fallback})`}`);
    if (spec.choices !== undefined) option.choices(spec.choices);
    if (spec.repeatable === true)
      option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    if (required.includes(name)) option.makeOptionMandatory();
    command.addOption(option);
    if (spec.negatable === true) command.addOption(new Option(`--no-${longFlag(name).slice(2)}`).hideHelp());
  }
  return command;
}

const IDENTITY: readonly OptionName[] = ['pattern', 'inputBucket', 'outputBucket'];

export function buildProgram(): Command {
  const program = new Command('cogd')
    .description('Turn GeoTIFFs listed in S3 CSV manifests into Cloud Optimized GeoTIFFs and JPEG previews.')
    // Not commander's .version(text): that text would start GDAL at every command (the daemon's too).
    .addOption(new Option('-V, --version', "cogd's, Node.js's and GDAL's versions (paste them into bug reports)"))
    .on('option:version', () => {
      const text = versions();
      process.stdout.write(`${text}\n`);
      throw new CommanderError(0, 'commander.version', text);
    })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
    .addHelpText(
      'after',
      '\nA watch keeps its settings: running `cogd start` (or `poll`) again for the same pattern, buckets and\n' +
        'endpoint changes only the settings given, and says so (watch 1: -m 10000 → 500). Home settings\n' +
        '(concurrency, timeouts, scratch, condor) are stored in the home; `cogd config` shows them all.',
    );

  withOptions(
    program
      .command('poll')
      .description('poll the input bucket once now: claim every matching manifest and plan its runs')
      .addHelpText(
        'after',
        '\nExit codes: 0 every row processed, 1 a row or manifest failed (or S3 failed), 2 bad usage.\n' +
          '\n--dry-run lists what would be claimed and every row with its verdict: the keys it would write, or\n' +
          'why it would fail (validation, a missing image by HEAD, a file that is no TIFF or over the limits,\n' +
          "read from its header by ranged GETs); a band count other than the file's is a warning, as in a run.\n" +
          "It uses the watch's stored settings where the home has them, writes nothing (no S3 write, no state\n" +
          'DB, no logs/, no scratch), takes no lock (a daemon may run) and exits 0 once planned, even if rows\n' +
          'would fail; 1 when S3 cannot be read.',
      ),
    'poll',
    IDENTITY,
  ).action(async (flags: Record<string, unknown>) => {
    exitCode =
      flags['dryRun'] === true
        ? await (await commands.plan()).dryRunCommand(flags)
        : await (await commands.poll()).pollCommand(flags);
  });

  withOptions(
    program
      .command('plan')
      .description("judge a local manifest's rows as a run would — the keys each would write, or why it would fail")
      .argument('<file>', 'a manifest CSV on this machine')
      .addHelpText(
        'after',
        '\nWithout --input-bucket the rows are judged from the file alone (columns, keys, band counts,\n' +
          'duplicates, preview clashes). With --input-bucket (and -e, -a/-s or the AWS environment, as for\n' +
          'poll) each image is also looked up there: HEAD, then its TIFF header by ranged GETs (not a TIFF,\n' +
          "over --max-pixels/--max-bands, a band count other than the manifest's). --output-bucket only names\n" +
          'the outputs; --executor, --stac and --stac-item-suffix say which ones a watch with them writes.\n' +
          "Limits are the home's stored ones (read-only) unless given. Nothing is written anywhere.\n" +
          '\nExit codes: 0 planned (even if rows would fail), 1 S3 could not be read, 2 bad usage (or no such FILE).',
      ),
    'plan',
  ).action(async (file: string, flags: Record<string, unknown>) => {
    exitCode = await (await commands.plan()).planCommand(file, flags);
  });

  withOptions(
    program
      .command('start')
      .description('register a watch and make sure a daemon polls it (detached; returns at once)'),
    'start',
    IDENTITY,
  ).action(async (flags: Record<string, unknown>) => {
    exitCode = await (await commands.start()).startCommand(flags);
  });

  withOptions(
    program
      .command('status')
      .alias('q')
      .description('show watches and runs like condor_q (works whether the daemon runs or not)')
      .argument('[id]', 'a run (12), a job (12.5), a watch (w3) or a batch name'),
    'status',
  ).action(async (id: string | undefined, flags: Record<string, unknown>) => {
    exitCode = await (await commands.status()).statusCommand(id, flags);
  });

  withOptions(
    program
      .command('watch')
      .description('live progress bars of the runs in progress (same as status --watch)')
      .argument('[id]', 'a run (12), a watch (w3) or a batch name'),
    'watch',
  ).action(async (id: string | undefined, flags: Record<string, unknown>) => {
    exitCode = await (await commands.status()).watchCommand(id, flags);
  });

  withOptions(
    program
      .command('rm')
      .description('remove jobs (12.5), runs (12), watches (w3) or a batch by name, like condor_rm')
      .argument('[ids...]', 'what to remove'),
    'rm',
  ).action(async (ids: string[], flags: Record<string, unknown>) => {
    exitCode = await (await commands.rm()).rmCommand(ids, flags);
  });

  for (const verb of ['hold', 'release'] as const) {
    withOptions(
      program
        .command(verb)
        .description(
          verb === 'hold'
            ? 'hold watches (w3: no polls), runs (12: no new jobs), jobs (12.5: not started) or a batch, like condor_hold'
            : 'release what cogd hold held, like condor_release',
        )
        .argument('<ids...>', `what to ${verb}`),
      verb,
    ).action(async (ids: string[], flags: Record<string, unknown>) => {
      exitCode = (await commands.hold()).holdCommand(verb, ids, flags);
    });
  }

  withOptions(
    program
      .command('retry')
      .description("run a finished run's rows that did not convert again, as a new run (a rescue DAG)")
      .argument('<run>', 'run id'),
    'retry',
  ).action(async (run: string, flags: Record<string, unknown>) => {
    exitCode = await (await commands.retry()).retryCommand(run, flags);
  });

  withOptions(
    program.command('stop').description('stop the daemon gracefully; `cogd start` later resumes where it stopped'),
    'stop',
  ).action(async (flags: Record<string, unknown>) => {
    exitCode = await (await commands.stop()).stopCommand(flags);
  });

  withOptions(
    program
      .command('logs')
      .description("print a run's logs, or one job's .log/.out/.err")
      .argument('<run>', 'run id')
      .argument('[job]', 'manifest line, job id (12.5), image key or log name'),
    'logs',
  ).action(async (run: string, job: string | undefined, flags: Record<string, unknown>) => {
    exitCode = await (await commands.logs()).logsCommand(run, job, flags);
  });

  withOptions(
    program
      .command('config')
      .description("every setting in effect: the home's, and each watch's, with where each came from")
      .argument('[watch]', 'one watch (w3)'),
    'config',
  ).action(async (watch: string | undefined, flags: Record<string, unknown>) => {
    exitCode = (await commands.config()).configCommand(watch, flags);
  });

  withOptions(
    program
      .command('verify')
      .description("check the objects a run's STAC items describe: present, the size and SHA-256 recorded")
      .argument('<run>', 'run id'),
    'verify',
  ).action(async (run: string, flags: Record<string, unknown>) => {
    exitCode = await (await commands.verify()).verifyCommand(run, flags);
  });

  // The detached daemon `cogd start` launches; not for people. It reads its settings from the home.
  withOptions(program.command('daemon', { hidden: true }), 'daemon').action(async (flags: Record<string, unknown>) => {
    const [{ runDaemon }, { summaryLine }] = await Promise.all([commands.daemon(), commands.poll()]);
    const home = resolveHome(readOptions('daemon', flags).command.home);
    exitCode = await runDaemon({
      home,
      consoleLevel: 'silent',
      summarize: (runId, db) => summaryLine(db.run(runId)!, home),
    });
  });

  return program;
}

let exitCode = 0;

export async function main(argv: string[]): Promise<number> {
  exitCode = 0;
  // Everything cogd creates is the user's alone: homes 0700, state, logs and scratch files 0600.
  // They name buckets, image keys and the paths of key files.
  process.umask(0o077);
  const program = buildProgram();
  try {
    // condor_q users type -nobatch with one dash.
    await program.parseAsync(
      argv.map((a) => (a === '-nobatch' ? '--nobatch' : a === '-hold' ? '--hold' : a)),
      { from: 'user' },
    );
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; anything else is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`cogd: ${describeError(error)}\n`);
      return 2;
    }
    process.stderr.write(`cogd: ${describeError(error)}\n`);
    if (!(error instanceof CogdError) && error instanceof Error && error.stack !== undefined) {
      process.stderr.write(`${error.stack}\n`);
    }
    return 1;
  }
}
