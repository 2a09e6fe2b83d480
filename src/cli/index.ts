/**
 * The command line: one registry of verbs, thin handlers. Exit codes scripts can rely on:
 * 0 ok, 1 failure (a row or manifest failed, S3 unreachable…), 2 usage.
 */
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_CONTAINER_IMAGE, DEFAULT_WATCH_SETTINGS, resolveEngine } from '../config.js';
import { CogdError, describeError, UsageError } from '../errors.js';

// Command modules load on use: the S3 SDK alone adds a few hundred ms to start-up, which `cogd
// status` (run as often as condor_q) should not pay.
const commands = {
  poll: () => import('./commands/poll.js'),
  start: () => import('./commands/start.js'),
  status: () => import('./commands/status.js'),
  rm: () => import('./commands/rm.js'),
  stop: () => import('./commands/stop.js'),
  logs: () => import('./commands/logs.js'),
  daemon: () => import('../daemon/process.js'),
};

const VERSION = '0.1.0';

/** Settings of the engine that converts: shared by poll, start and the daemon. */
function withEngineFlags(command: Command): Command {
  return command
    .option('--home <dir>', 'cogd home: state DB, logs/, scratch/ (default: $COGD_HOME or the current directory)')
    .option('--cpu-concurrency <n>', 'GDAL processes at once on this machine (default: its cores)')
    .option('--io-concurrency <n>', 'S3 transfers at once', '8')
    .option('--job-timeout <seconds>', 'a job running longer is killed and failed', '1800')
    .option('--step-timeout <seconds>', 'one GDAL command running longer is killed (default: the job timeout)')
    .option('--inspect-timeout <seconds>', 'deadline of the pre-flight gdalinfo', '60')
    .option('--retry-timeouts', 'retry jobs that timed out (default: fail them)')
    .option('--max-pixels <n>', 'reject larger images before converting', '2000000000')
    .option('--max-bands <n>', 'reject images with more bands before converting', '64')
    .option('--scratch <dir>', 'where jobs download and convert (default: <home>/scratch)')
    .option('--scratch-wait <seconds>', 'how long a job waits for scratch space before failing', '600')
    .option('--submit-template <file>', 'condor executor: your copy of submit-templates/cog.sub')
    .option('--container-image <ref>', 'condor executor: image the worker runs in', DEFAULT_CONTAINER_IMAGE)
    .option('--condor-batch-size <n>', 'condor executor: rows per condor_submit', '1000')
    .option('--request-cpus <n>', 'condor executor: request_cpus of each job', '1')
    .option('--request-memory <size>', 'condor executor: request_memory of each job', '1GB')
    .option('--request-disk <size>', 'condor executor: request_disk of each job', '2GB')
    .option('--max-holds <n>', 'condor executor: holds after which HTCondor removes a job', '5')
    .option('--release-delay <seconds>', 'condor executor: wait before releasing a held job; doubles with each hold', '60');
}

/** Flags of every command that talks to the buckets (the reference tool's flags, kept). */
function withRunFlags(command: Command): Command {
  return withEngineFlags(
    command
      .requiredOption('-p, --pattern <glob>', 'manifest keys to claim; without "/" it matches the base name in any folder (e.g. "*raw.csv")')
      .requiredOption('--input-bucket <name>', 'bucket holding the manifests and the input GeoTIFFs')
      .requiredOption('--output-bucket <name>', 'bucket receiving the COGs and JPEG previews')
      .option('-e, --s3-endpoint <host|url>', 'S3 endpoint; a bare host means https (default: AWS)')
      .option('-a, --access-key <file>', 'file holding the S3 access key id (default: the AWS environment/profile)')
      .option('-s, --secret-key <file>', 'file holding the S3 secret access key')
      .option('-m, --max-running <n>', `jobs of this watch in flight at most (default: ${DEFAULT_WATCH_SETTINGS.maxRunning})`)
      .option('--retries <n>', `retries of a failed job after its first attempt (default: ${DEFAULT_WATCH_SETTINGS.retries})`)
      .option('--retry-delay <seconds>', `delay before the first retry; doubles each retry (default: ${DEFAULT_WATCH_SETTINGS.retryDelayMs / 1000})`)
      .addOption(new Option('--executor <name>', `where jobs run (default: ${DEFAULT_WATCH_SETTINGS.executor})`).choices(['local', 'condor'])),
  )
    .option('-v, --verbose', 'log progress events to stderr')
    .option('--debug', 'log everything to stderr');
}

export function buildProgram(): Command {
  const program = new Command('cogd')
    .description('Turn GeoTIFFs listed in S3 CSV manifests into Cloud Optimized GeoTIFFs and JPEG previews.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  withRunFlags(
    program
      .command('poll')
      .description('poll the input bucket once now: claim every matching manifest and plan its runs')
      .option('--wait', 'convert everything claimed (and resume unfinished runs), return when every run has finished its post step')
      .addHelpText('after', '\nExit codes: 0 every row processed, 1 a row or manifest failed (or S3 failed), 2 bad usage.'),
  ).action(async (flags: Record<string, unknown>) => {
    exitCode = await (await commands.poll()).pollCommand(flags);
  });

  withRunFlags(
    program
      .command('start')
      .description('register a watch and make sure a daemon polls it (detached; returns at once)')
      .option('--schedule <cron>', `when to poll, cron syntax (default: "${DEFAULT_WATCH_SETTINGS.schedule}")`)
      .option('--foreground', 'run the daemon in this process until SIGINT/SIGTERM'),
  ).action(async (flags: Record<string, unknown>) => {
    exitCode = await (await commands.start()).startCommand(flags);
  });

  program.addHelpText(
    'after',
    '\nA watch keeps its settings: running `cogd start` (or `poll`) again for the same pattern, buckets and\nendpoint changes only the settings given, and says so (watch 1: -m 10000 → 500).',
  );

  program
    .command('status')
    .alias('q')
    .description('show watches and runs like condor_q (works whether the daemon runs or not)')
    .argument('[id]', 'a run (12), a job (12.5), a watch (w3) or a batch name')
    .option('--home <dir>', 'cogd home (default: $COGD_HOME or the current directory)')
    .option('--json', 'print the same data as JSON')
    .option('--jobs, --nobatch', 'one line per job with its state and last error (condor_q -nobatch)')
    .option('--watch', 'redraw a progress bar per run until they finish (Ctrl-C stops)')
    .option('--interval <seconds>', 'refresh interval of --watch', '1')
    .action(async (id: string | undefined, flags: Record<string, unknown>) => {
      exitCode = await (await commands.status()).statusCommand(id, flags);
    });

  program
    .command('watch')
    .description('live progress bars of the runs in progress (same as status --watch)')
    .argument('[id]', 'a run (12), a watch (w3) or a batch name')
    .option('--home <dir>', 'cogd home (default: $COGD_HOME or the current directory)')
    .option('--interval <seconds>', 'refresh interval', '1')
    .action(async (id: string | undefined, flags: Record<string, unknown>) => {
      exitCode = await (await commands.status()).watchCommand(id, flags);
    });

  program
    .command('rm')
    .description('remove jobs (12.5), runs (12), watches (w3) or a batch by name, like condor_rm')
    .argument('[ids...]', 'what to remove')
    .option('--all', 'every unfinished run and every watch')
    .option('--home <dir>', 'cogd home (default: $COGD_HOME or the current directory)')
    .action(async (ids: string[], flags: Record<string, unknown>) => {
      exitCode = await (await commands.rm()).rmCommand(ids, flags);
    });

  program
    .command('stop')
    .description('stop the daemon gracefully; `cogd start` later resumes where it stopped')
    .option('--home <dir>', 'cogd home (default: $COGD_HOME or the current directory)')
    .option('--timeout <seconds>', 'how long to wait for it', '120')
    .action(async (flags: Record<string, unknown>) => {
      exitCode = await (await commands.stop()).stopCommand(flags);
    });

  program
    .command('logs')
    .description("print a run's logs, or one job's .log/.out/.err")
    .argument('<run>', 'run id')
    .argument('[job]', 'manifest line, job id (12.5), image key or log name')
    .option('-f, --follow', 'keep printing what is appended until the run is done')
    .option('--home <dir>', 'cogd home (default: $COGD_HOME or the current directory)')
    .action(async (run: string, job: string | undefined, flags: Record<string, unknown>) => {
      exitCode = await (await commands.logs()).logsCommand(run, job, flags);
    });

  // The detached daemon `cogd start` launches; not for people.
  withEngineFlags(program.command('daemon', { hidden: true })).action(async (flags: Record<string, unknown>) => {
    const engine = resolveEngine(flags);
    const [{ runDaemon }, { summaryLine }] = await Promise.all([commands.daemon(), commands.poll()]);
    exitCode = await runDaemon({
      ...engine,
      consoleLevel: 'silent',
      summarize: (runId, db) => summaryLine(db.run(runId)!, engine.home),
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
    await program.parseAsync(argv.map((a) => (a === '-nobatch' ? '--nobatch' : a)), { from: 'user' });
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
