/**
 * What `cogd poll` needs: the home's lock (a poll and a daemon never work on one home at once), the
 * state DB, the log, the engine and the watch the flags describe.
 */
import { closeAll } from '../util/cleanup.js';
import type { Config } from '../config.js';
import { Daemon } from '../daemon/daemon.js';
import { describeHolder, homeHolder, homePaths, lockHome, securePaths } from '../daemon/home.js';
import { CogdError } from '../errors.js';
import { createLog, type Log } from '../log/index.js';
import { StateDB } from '../state/db.js';
import type { Watch } from '../types.js';
import { registerWatch, type Registered } from './register.js';

export interface Context {
  config: Config;
  db: StateDB;
  log: Log;
  daemon: Daemon;
  watch: Watch;
  /** The watch's stored settings this poll changed, one line each. */
  changes: string[];
  close(): Promise<void>;
}

export async function openContext(config: Config, consoleLevel: 'warn' | 'info' | 'debug'): Promise<Context> {
  const lock = await lockHome(config.home, 'poll');
  if (lock === undefined) {
    const holder = homeHolder(config.home);
    if (holder?.role === 'poll') {
      throw new CogdError('HomeBusy', `${describeHolder(holder)} is working on ${config.home}`, {
        hint: 'wait for it to finish (one process works on a home at a time), or use another --home',
      });
    }
    throw new CogdError('DaemonRunning', `${holder === undefined ? 'a cogd daemon' : describeHolder(holder)} is running on ${config.home}`, {
      hint: 'it polls on its own; watch it with `cogd status`, or `cogd stop` it first',
    });
  }
  const paths = homePaths(config.home);
  let db: StateDB;
  let registered: Registered;
  try {
    db = new StateDB(paths.db);
    try {
      db.check();
      registered = registerWatch(db, config.watch);
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    await lock.release();
    throw error;
  }
  securePaths(config.home);
  const log = createLog({ logDir: paths.logs, consoleLevel });
  for (const warning of registered.warnings) log.warn('Watch:KeyFileReadable', { watch: registered.watch.id, reason: warning });
  const daemon = new Daemon(db, log, config);
  await daemon.prepare();
  const held = lock;
  return {
    config,
    db,
    log,
    daemon,
    watch: registered.watch,
    changes: registered.changes,
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
