/**
 * `cogd start`: registers a watch and makes sure a daemon runs on the home — detached, in its own
 * process group, output to `logs/cogd.log` — then returns. A daemon already running is told to
 * reload its watches. `--foreground` runs the daemon in this process instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config, type RunFlags } from '../../config.js';
import type { WatchIdentity, WatchSettings } from '../../types.js';
import { planWatch, registerWatch, type Registered } from '../register.js';
import { createStorage } from '../../storage/s3.js';
import { describeHolder, homeHolder, homePaths, runningDaemon, securePaths } from '../../daemon/home.js';
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
async function probe(identity: WatchIdentity, settings: WatchSettings): Promise<void> {
  const { accessKeyFile, secretKeyFile, region } = settings;
  const storage = await createStorage({ endpoint: identity.endpoint, accessKeyFile, secretKeyFile, region });
  try {
    await storage.probe(identity.inputBucket);
    await storage.probe(identity.outputBucket);
  } finally {
    storage.close();
  }
}

/** The watch the flags name, registered (or updated) after its buckets answered. */
async function register(config: Config): Promise<Registered> {
  const paths = homePaths(config.home);
  await mkdir(paths.logs, { recursive: true });
  const db = new StateDB(paths.db);
  try {
    db.check();
    const plan = planWatch(db, config.watch);
    await probe(config.watch.identity, plan.settings);
    return registerWatch(db, config.watch);
  } finally {
    db.close();
    securePaths(config.home);
  }
}

export async function startCommand(flags: StartFlags): Promise<number> {
  const config = resolveConfig(flags);
  const holder = homeHolder(config.home);
  if (holder?.role === 'poll') {
    throw new CogdError('HomeBusy', `${describeHolder(holder)} is working on ${config.home}`, {
      hint: 'wait for it to finish, then start the daemon (one process works on a home at a time)',
    });
  }
  const { watch, created, changes, warnings } = await register(config);
  for (const line of changes) process.stdout.write(`${line}\n`);
  for (const warning of warnings) process.stderr.write(`cogd: warning: ${warning}\n`);
  const batch = watchBatchName(watch.pattern);
  const paths = homePaths(config.home);

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
    process.stdout.write(`watch ${watch.id} ${batch}: ${created ? 'added to' : 'kept by'} the cogd daemon (pid ${existing}) on ${config.home}\n`);
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
    await sleep(100);
  }
}
