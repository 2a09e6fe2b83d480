/**
 * The daemon process of a home: holds the home's lock, polls every live watch on its schedule,
 * resumes unfinished runs, applies `cogd rm` requests, and shuts down gracefully.
 *
 * Signals: SIGTERM/SIGINT drain (jobs in flight are interrupted and run again on the next start;
 * nothing is marked failed because of the stop), a second one exits at once; SIGHUP reloads the
 * watches from the DB; SIGUSR2 applies removal requests now. The DB is also re-read every second,
 * so a missed signal only delays a change.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { runEvery } from '../util/cleanup.js';
import { CogdError, describeError, UsageError } from '../errors.js';
import { createLog, type Level } from '../log/index.js';
import { watchBatchName } from '../manifest/names.js';
import { StateDB } from '../state/db.js';
import type { Watch } from '../types.js';
import { checkHttp, engineOf, resolveHomeSettings, storedHomeValues, type HomeSettings } from '../config/index.js';
import { startWebServer, type WebServer } from '../web/server.js';
import { Metrics } from '../web/metrics.js';
import { Daemon } from './daemon.js';
import { describeHolder, homeHolder, homePaths, lockHome, securePaths } from './home.js';

export interface DaemonProcessOptions {
  home: string;
  /** What reaches stderr (the foreground daemon prints progress; the detached one nothing). */
  consoleLevel: Level | 'silent';
  /** Called with each finished run's summary line (the foreground daemon prints them). */
  onRunDone?: (line: string) => void;
  summarize: (runId: number, db: StateDB) => string;
  /** Called with the status page's URL once it is served (`--http`). */
  onListening?: (url: string) => void;
}

/** How long the daemon's loop may be silent before /healthz says it is not alive. */
const ALIVE_WITHIN_MS = 10_000;

/** The bearer token of `--http-token-file`: the file's content, trimmed; it must not be empty. */
async function readToken(file: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (cause) {
    throw new CogdError('TokenFile', `cannot read the --http-token-file ${file}`, { hint: 'check the path', cause });
  }
  if (token === '') throw new CogdError('TokenFile', `the --http-token-file ${file} is empty`);
  return token;
}

/** Stops a cron task (node-cron's stop may return a promise; a failure to stop changes nothing). */
function stopTask(task: ScheduledTask): void {
  Promise.resolve(task.stop()).catch(() => undefined);
}

export async function runDaemon(options: DaemonProcessOptions): Promise<number> {
  const lock = await lockHome(options.home, 'daemon');
  if (lock === undefined) {
    const holder = homeHolder(options.home);
    process.stderr.write(
      `cogd: ${holder === undefined ? 'another cogd process' : describeHolder(holder)} already works on ${options.home}\n`,
    );
    return 1;
  }
  const paths = homePaths(options.home);
  let db: StateDB;
  try {
    db = new StateDB(paths.db);
    try {
      db.check();
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    await lock.release();
    process.stderr.write(`cogd: ${describeError(error)}\n`);
    return 1;
  }
  securePaths(options.home);
  const log = createLog({ logDir: paths.logs, consoleLevel: options.consoleLevel });
  // The settings the home stores (given to `start` or `poll`), over the defaults: never argv.
  const engine = engineOf(options.home, db.homeSettings());
  const settings: HomeSettings = resolveHomeSettings(options.home, storedHomeValues(db.homeSettings()), {}).settings;
  const metrics = settings.http === false ? undefined : new Metrics(db);
  const daemon = new Daemon(db, log, engine, metrics);
  let lastTick = Date.now();
  let web: WebServer | undefined;
  if (settings.http !== false && metrics !== undefined) {
    try {
      checkHttp(settings);
      // Unset unless given: the option has no default.
      const tokenFile = settings.httpTokenFile as string | undefined;
      const token = tokenFile === undefined ? undefined : await readToken(tokenFile);
      web = await startWebServer({
        address: settings.http,
        db,
        home: options.home,
        logsDir: paths.logs,
        holder: { pid: process.pid, role: 'daemon' },
        metrics,
        alive: () => Date.now() - lastTick < ALIVE_WITHIN_MS,
        log,
        token,
        openMetrics: settings.httpOpenMetrics,
      });
      await writeFile(paths.http, `${web.url}\n${process.pid}\n`, { mode: 0o600 });
      options.onListening?.(web.url);
    } catch (error) {
      log.error('Daemon:HttpFailed', { reason: describeError(error) });
      process.stderr.write(`cogd: ${describeError(error)}\n`);
      await runEvery([
        () => web?.close() ?? Promise.resolve(),
        () => db.close(),
        () => log.close(),
        () => lock.release(),
      ]);
      return error instanceof UsageError ? 2 : 1;
    }
  }
  await daemon.prepare();
  log.info('Daemon:Started', { pid: process.pid, home: options.home });

  const tasks = new Map<number, { task: ScheduledTask; schedule: string }>();
  const polling = new Set<number>();

  const pollWatch = async (watch: Watch): Promise<void> => {
    if (polling.has(watch.id)) return; // a slow poll is never overlapped by the next one
    polling.add(watch.id);
    try {
      const runIds = await daemon.poll(watch);
      daemon
        .settled(runIds)
        .then((runs) => {
          for (const run of runs) if (run.state === 'done') options.onRunDone?.(options.summarize(run.id, db));
        })
        .catch((error: unknown) => log.error('Daemon:RunReportFailed', { reason: describeError(error) }));
    } catch (error) {
      log.error('Watch:PollFailed', {
        watch: watch.id,
        batch: watchBatchName(watch.pattern),
        reason: describeError(error),
      });
    } finally {
      polling.delete(watch.id);
    }
  };

  const reload = (): void => {
    const watches = db.liveWatches();
    daemon.updateWatches(watches);
    const live = new Map(watches.map((w) => [w.id, w]));
    for (const [id, entry] of tasks) {
      const watch = live.get(id);
      if (watch === undefined || watch.schedule !== entry.schedule) {
        stopTask(entry.task);
        tasks.delete(id);
        if (watch === undefined) log.info('Watch:Removed', { watch: id });
      }
    }
    for (const watch of live.values()) {
      if (tasks.has(watch.id)) continue;
      // pollWatch logs its own failures and never rejects.
      const task = cron.schedule(watch.schedule, () => pollWatch(db.watch(watch.id) ?? watch));
      tasks.set(watch.id, { task, schedule: watch.schedule });
      log.info('Watch:Scheduled', { watch: watch.id, batch: watchBatchName(watch.pattern), schedule: watch.schedule });
      if (watch.warning !== null) log.warn('Watch:Warning', { watch: watch.id, reason: watch.warning });
      pollWatch(watch).catch(() => undefined); // one poll at start; it logs its own failures
    }
  };

  daemon.resume(); // runs of every watch, removed ones included: claimed manifests are always finished
  reload();
  const tick = setInterval(() => {
    lastTick = Date.now();
    try {
      reload();
      daemon.applyRequests();
    } catch (error) {
      log.error('Daemon:TickFailed', { reason: describeError(error) });
    }
  }, 1000);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('Daemon:ForcedExit', { signal });
        process.exit(130);
      }
      stopping = true;
      log.info('Daemon:Stopping', { signal });
      clearInterval(tick);
      for (const { task } of tasks.values()) stopTask(task);
      // runEvery runs every step and collects what failed: it never rejects.
      runEvery([
        async () => {
          await web?.close();
          await rm(paths.http, { force: true });
        },
        () => daemon.close(),
        async () => log.info('Daemon:Stopped', { pid: process.pid, s3Requests: await daemon.requests() }),
        () => db.close(),
        () => log.close(),
        () => lock.release(),
      ])
        .then((errors) => {
          for (const error of errors) process.stderr.write(`cogd: while stopping: ${describeError(error)}\n`);
          process.off('SIGHUP', onHup);
          process.off('SIGUSR2', onUsr2);
          resolve(errors.length === 0 ? 0 : 1);
        })
        .catch(() => resolve(1));
    };
    const onHup = (): void => {
      log.info('Daemon:Reload', {});
      reload();
      daemon.applyRequests();
    };
    // `cogd rm`, `hold`, `release` and `retry` wake the daemon: it applies their requests and
    // takes up runs recorded outside it (a retry) at once rather than at the watch's next poll.
    const onUsr2 = (): void => {
      daemon.applyRequests();
      daemon.resume();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', onHup);
    process.on('SIGUSR2', onUsr2);
  });
}
