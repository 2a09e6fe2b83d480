/**
 * `cogd start`: registers a watch and makes sure a daemon runs on the home — detached, in its own
 * process group, output to `logs/cogd.log` — then returns. A daemon already running is told to
 * reload its watches. `--foreground` runs the daemon in this process instead.
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config, type RunFlags } from '../../config.js';
import { createStorage } from '../../storage/s3.js';
import { homePaths, runningDaemon } from '../../daemon/home.js';
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags.js';
import { runDaemon } from '../../daemon/process.js';
import { CogdError } from '../../errors.js';
import { watchBatchName } from '../../manifest/names.js';
import { StateDB } from '../../state/db.js';
import { consoleLevel, type OutputFlags } from '../output.js';
import { summaryLine } from './poll.js';

export interface StartFlags extends RunFlags, OutputFlags {
  foreground?: boolean;
}

const BIN = fileURLToPath(new URL('../../../bin/cogd', import.meta.url));

/** Daemon-wide settings passed from `start` to the detached daemon, as resolved (validated). */
function daemonArgs(config: Config): string[] {
  return [
    '--retries', String(config.retries),
    '--retry-delay', String(config.retryDelayMs / 1000),
    '--cpu-concurrency', String(config.cpuConcurrency),
    '--io-concurrency', String(config.ioConcurrency),
    '--job-timeout', String(config.jobTimeoutMs / 1000),
    '--step-timeout', String(config.stepTimeoutMs / 1000),
    '--inspect-timeout', String(config.inspectTimeoutMs / 1000),
    '--max-pixels', String(config.limits.maxPixels),
    '--max-bands', String(config.limits.maxBands),
    '--scratch', config.scratch,
    '--scratch-wait', String(config.scratchWaitMs / 1000),
    ...(config.retryTimeouts ? ['--retry-timeouts'] : []),
    ...(config.condor.submitTemplate === undefined ? [] : ['--submit-template', config.condor.submitTemplate]),
    '--container-image', config.condor.containerImage,
    '--condor-batch-size', String(config.condor.batchSize),
    '--request-cpus', String(config.condor.requestCpus),
    '--request-memory', config.condor.requestMemory,
    '--request-disk', config.condor.requestDisk,
    '--max-holds', String(config.condor.maxHolds),
    '--release-delay', String(config.condor.releaseDelayS),
  ];
}

/** One request to each bucket, so wrong credentials or a dead endpoint fail `start` with one clear line. */
async function probe(config: Config): Promise<void> {
  const storage = await createStorage(config.s3);
  try {
    await storage.probe(config.inputBucket);
    await storage.probe(config.outputBucket);
  } finally {
    storage.close();
  }
}

export async function startCommand(flags: StartFlags): Promise<number> {
  const config = resolveConfig(flags);
  await probe(config);
  const paths = homePaths(config.home);
  await mkdir(paths.logs, { recursive: true });
  const db = new StateDB(paths.db);
  const watch = db.upsertWatch(config);
  db.close();
  const batch = watchBatchName(watch.pattern);

  if (flags.foreground === true) {
    process.stdout.write(`watch ${watch.id} ${batch}: polling s3://${watch.inputBucket} on "${watch.schedule}" (foreground; Ctrl-C stops)\n`);
    return runDaemon({
      ...config,
      consoleLevel: consoleLevel(flags),
      summarize: (runId, state) => summaryLine(state.run(runId)!, config.home),
      onRunDone: (line) => process.stdout.write(`${line}\n`),
    });
  }

  const existing = runningDaemon(config.home);
  if (existing !== undefined && existing > 0) {
    process.kill(existing, 'SIGHUP');
    process.stdout.write(`watch ${watch.id} ${batch}: added to the cogd daemon (pid ${existing}) on ${config.home}\n`);
    return 0;
  }

  const out = openSync(paths.daemonLog, 'a');
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, BIN, 'daemon', '--home', config.home, ...daemonArgs(config)], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  child.unref();

  // Wait until a daemon holds the lock: this child, or one a concurrent `start` launched.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pid = runningDaemon(config.home);
    if (pid !== undefined && pid > 0) {
      process.stdout.write(`watch ${watch.id} ${batch}: polling s3://${watch.inputBucket} on "${watch.schedule}"\n`);
      process.stdout.write(`cogd daemon (pid ${pid}) runs on ${config.home}; log: ${path.relative(process.cwd(), paths.daemonLog) || paths.daemonLog}\n`);
      return 0;
    }
    if ((exited !== null && exited !== 0 && pid === undefined) || Date.now() > deadline) {
      const tail = readFileSync(paths.daemonLog, 'utf8').split('\n').slice(-5).join('\n');
      throw new CogdError('DaemonDidNotStart', `the cogd daemon did not start on ${config.home}:\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
