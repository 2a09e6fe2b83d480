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
import {
  checkHttp,
  homeChanges,
  readRunRequest,
  resolveHomeSettings,
  storedHomeValues,
  type RunRequest,
} from '../../config/index.js';
import type { WatchIdentity, WatchSettings } from '../../types.js';
import { planWatch, registerWatch, type Registered } from '../register.js';
import { createStorage } from '../../storage/s3.js';
import { describeHolder, homeHolder, homePaths, runningDaemon, securePaths } from '../../daemon/home.js';
import { supportedDaemonFlags } from '../../daemon/node-flags.js';
import { runDaemon } from '../../daemon/process.js';
import { CogdError } from '../../errors.js';
import { watchBatchName } from '../../manifest/names.js';
import { StateDB } from '../../state/db.js';
import { consoleLevel } from '../output.js';
import { summaryLine } from './poll.js';

const BIN = fileURLToPath(new URL('../../../bin/cogd', import.meta.url));

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

interface Registration extends Registered {
  /** One line per home setting this start changed. */
  homeChanged: string[];
  /** Where the daemon serves its status page, as the home now says. */
  http: string | false;
}

/** The status page's URL, once the daemon `pid` serves it (it writes `cogd.http` then). */
function servedUrl(file: string, pid: number): string | undefined {
  try {
    const [url, owner] = readFileSync(file, 'utf8').split('\n');
    return Number(owner) === pid && url !== undefined && url !== '' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The watch the flags name, registered (or updated) after its buckets answered; home settings stored. */
async function register(request: RunRequest): Promise<Registration> {
  const paths = homePaths(request.home);
  await mkdir(paths.logs, { recursive: true });
  const db = new StateDB(paths.db);
  try {
    db.check();
    // The home's settings as the daemon will read them (given over stored), checked before anything is stored.
    const stored = storedHomeValues(db.homeSettings());
    const home = resolveHomeSettings(request.home, stored, request.given.home).settings;
    checkHttp(home);
    const plan = planWatch(db, request.watch);
    await probe(request.watch.identity, plan.settings);
    const registered = registerWatch(db, request.watch);
    const homeChanged = homeChanges(request.home, stored, request.given.home);
    db.storeHomeSettings(request.given.home);
    return { ...registered, homeChanged, http: home.http };
  } finally {
    db.close();
    securePaths(request.home);
  }
}

export async function startCommand(flags: Record<string, unknown>): Promise<number> {
  const request = readRunRequest('start', flags);
  const { home } = request;
  const holder = homeHolder(home);
  if (holder?.role === 'poll') {
    throw new CogdError('HomeBusy', `${describeHolder(holder)} is working on ${home}`, {
      hint: 'wait for it to finish, then start the daemon (one process works on a home at a time)',
    });
  }
  const { watch, created, changes, warnings, homeChanged, http } = await register(request);
  const existing = runningDaemon(home);
  for (const line of changes) process.stdout.write(`${line}\n`);
  // A running daemon reloads its watches (and applies their settings) now; its engine's settings
  // are read once, at its start.
  const later = existing !== undefined ? ' (takes effect after `cogd stop && cogd start`)' : '';
  for (const line of homeChanged) process.stdout.write(`home: ${line}${later}\n`);
  for (const warning of warnings) process.stderr.write(`cogd: warning: ${warning}\n`);
  const batch = watchBatchName(watch.pattern);
  const paths = homePaths(home);

  if (request.given.command.foreground === true) {
    process.stdout.write(
      `watch ${watch.id} ${batch}: polling s3://${watch.inputBucket} on "${watch.schedule}" (foreground; Ctrl-C stops)\n`,
    );
    return runDaemon({
      home,
      consoleLevel: consoleLevel(request.given.command),
      summarize: (runId, state) => summaryLine(state.run(runId)!, home),
      onRunDone: (line) => process.stdout.write(`${line}\n`),
      onListening: (url) => process.stdout.write(`status page: ${url} (metrics: ${url}metrics)\n`),
    });
  }

  if (existing !== undefined && existing > 0) {
    process.kill(existing, 'SIGHUP');
    process.stdout.write(
      `watch ${watch.id} ${batch}: ${created ? 'added to' : 'kept by'} the cogd daemon (pid ${existing}) on ${home}\n`,
    );
    const url = servedUrl(paths.http, existing);
    if (url !== undefined) process.stdout.write(`status page: ${url}\n`);
    return 0;
  }

  const out = openSync(paths.daemonLog, 'a');
  const { flags: v8Flags, dropped } = supportedDaemonFlags();
  if (dropped.length > 0)
    process.stderr.write(
      `cogd: warning: this Node.js (${process.version}) has no ${dropped.join(', ')}; the daemon starts without\n`,
    );
  const child = spawn(process.execPath, [...v8Flags, BIN, 'daemon', '--home', home], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  const child_ = { exited: null as number | null }; // set by the exit event, read in the loop below
  child.on('exit', (code) => (child_.exited = code ?? 1));
  child.unref();

  // Wait until a daemon holds the lock: this child, or one a concurrent `start` launched.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pid = runningDaemon(home);
    // With --http the daemon is up once it serves the page (a port in use stops it before that).
    const url = pid !== undefined && pid > 0 && http !== false ? servedUrl(paths.http, pid) : undefined;
    if (pid !== undefined && pid > 0 && (http === false || url !== undefined)) {
      process.stdout.write(`watch ${watch.id} ${batch}: polling s3://${watch.inputBucket} on "${watch.schedule}"\n`);
      if (url !== undefined) process.stdout.write(`status page: ${url} (metrics: ${url}metrics)\n`);
      process.stdout.write(
        `cogd daemon (pid ${pid}) runs on ${home}; log: ${path.relative(process.cwd(), paths.daemonLog) || paths.daemonLog}\n`,
      );
      return 0;
    }
    if (
      (child_.exited !== null && child_.exited !== 0 && (pid === undefined || http !== false)) ||
      Date.now() > deadline
    ) {
      const tail = readFileSync(paths.daemonLog, 'utf8').split('\n').slice(-5).join('\n');
      throw new CogdError('DaemonDidNotStart', `the cogd daemon did not start on ${home}:\n${tail}`);
    }
    await sleep(100);
  }
}
