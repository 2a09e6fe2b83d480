/**
 * What `cogd poll` needs: the home's lock (a poll and a daemon never work on one home at once), the
 * state DB, the log, the engine and the watch the flags describe.
 */
import { closeAll } from '../util/cleanup.js';
import { engineOf, homeChanges, storedHomeValues, type EngineConfig, type RunRequest } from '../config/index.js';
import { Daemon } from '../daemon/daemon.js';
import { describeHolder, homeHolder, homePaths, lockHome, securePaths } from '../daemon/home.js';
import { CogdError } from '../errors.js';
import { createLog, type Log } from '../log/index.js';
import { StateDB } from '../state/db.js';
import type { Watch } from '../types.js';
import { registerWatch, type Registered } from './register.js';

export interface Context {
  engine: EngineConfig;
  db: StateDB;
  log: Log;
  daemon: Daemon;
  watch: Watch;
  /** The stored settings (the watch's, the home's) this poll changed, one line each. */
  changes: string[];
  close(): Promise<void>;
}

export async function openContext(request: RunRequest, consoleLevel: 'warn' | 'info' | 'debug'): Promise<Context> {
  const lock = await lockHome(request.home, 'poll');
  if (lock === undefined) {
    const holder = homeHolder(request.home);
    if (holder?.role === 'poll') {
      throw new CogdError('HomeBusy', `${describeHolder(holder)} is working on ${request.home}`, {
        hint: 'wait for it to finish (one process works on a home at a time), or use another --home',
      });
    }
    throw new CogdError(
      'DaemonRunning',
      `${holder === undefined ? 'a cogd daemon' : describeHolder(holder)} is running on ${request.home}`,
      {
        hint: 'it polls on its own; watch it with `cogd status`, or `cogd stop` it first',
      },
    );
  }
  const paths = homePaths(request.home);
  let db: StateDB;
  let registered: Registered;
  let engine: EngineConfig;
  let homeChanged: string[];
  try {
    db = new StateDB(paths.db);
    try {
      db.check();
      registered = registerWatch(db, request.watch);
      // Home settings given to a poll apply to it and are kept, as `start` keeps them.
      const stored = db.homeSettings();
      homeChanged = homeChanges(request.home, storedHomeValues(stored), request.given.home);
      engine = engineOf(request.home, stored, request.given.home);
      db.storeHomeSettings(request.given.home);
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    await lock.release();
    throw error;
  }
  securePaths(request.home);
  const log = createLog({ logDir: paths.logs, consoleLevel });
  for (const warning of registered.warnings)
    log.warn('Watch:KeyFileReadable', { watch: registered.watch.id, reason: warning });
  const daemon = new Daemon(db, log, engine);
  await daemon.prepare();
  const held = lock;
  return {
    engine,
    db,
    log,
    daemon,
    watch: registered.watch,
    changes: [...registered.changes, ...homeChanged.map((line) => `home: ${line}`)],
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
