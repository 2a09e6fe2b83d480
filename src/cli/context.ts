/**
 * What `cogd poll` needs: the home's lock (a poll and a daemon never work on one home at once), the
 * state DB, the log, the engine and the watch the flags describe.
 */
import { closeAll } from '../cleanup.js';
import type { Config } from '../config.js';
import { Daemon } from '../daemon/daemon.js';
import { acquireHomeLock, homePaths, runningDaemon, type HomeLock } from '../daemon/home.js';
import { CogdError } from '../errors.js';
import { createLog, type Log } from '../log/index.js';
import { StateDB } from '../state/db.js';
import type { Watch } from '../types.js';

export interface Context {
  config: Config;
  db: StateDB;
  log: Log;
  daemon: Daemon;
  watch: Watch;
  close(): Promise<void>;
}

export async function openContext(config: Config, consoleLevel: 'warn' | 'info' | 'debug'): Promise<Context> {
  let lock: HomeLock | undefined;
  for (let attempt = 0; attempt < 20 && lock === undefined; attempt += 1) {
    lock = await acquireHomeLock(config.home);
    if (lock === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (lock === undefined) {
    const pid = runningDaemon(config.home);
    throw new CogdError('DaemonRunning', `a cogd daemon${pid !== undefined && pid > 0 ? ` (pid ${pid})` : ''} is running on ${config.home}`, {
      hint: 'it polls on its own; watch it with `cogd status`, or `cogd stop` it first',
    });
  }
  const paths = homePaths(config.home);
  const log = createLog({ logDir: paths.logs, consoleLevel });
  const db = new StateDB(paths.db);
  const watch = db.upsertWatch(config);
  const daemon = new Daemon(db, log, config);
  await daemon.prepare();
  const held = lock;
  return {
    config,
    db,
    log,
    daemon,
    watch,
    // Every cleanup runs, even when one fails; the DB closes after in-flight jobs have recorded
    // that they were interrupted.
    async close() {
      await closeAll(
        [
          () => daemon.close(),
          async () => log.info('Storage:Requests', { requests: await daemon.requests() }),
          () => db.close(),
          () => log.close(),
          () => held.release(),
        ],
        'cogd',
      );
    },
  };
}
