/** What `poll` and `start` share: open the home, the state DB, the log, the S3 client and the daemon. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { Daemon } from '../daemon/daemon.js';
import { createLog, type Log } from '../log/index.js';
import { StateDB } from '../state/db.js';
import { createStorage, type Storage } from '../storage/s3.js';
import type { Watch } from '../types.js';

export interface Context {
  config: Config;
  db: StateDB;
  log: Log;
  storage: Storage;
  daemon: Daemon;
  watch: Watch;
  close(): Promise<void>;
}

export const DB_FILE = 'cogd.db';

export async function openContext(config: Config, consoleLevel: 'warn' | 'info' | 'debug'): Promise<Context> {
  const logDir = path.join(config.home, 'logs');
  await mkdir(logDir, { recursive: true });
  const log = createLog({ logDir, consoleLevel });
  const db = new StateDB(path.join(config.home, DB_FILE));
  let storage: Storage;
  try {
    storage = await createStorage(config.s3);
  } catch (error) {
    db.close();
    await log.close();
    throw error;
  }
  const watch = db.upsertWatch(config);
  const daemon = new Daemon(db, storage, log, config);
  await daemon.prepare();
  return {
    config,
    db,
    log,
    storage,
    daemon,
    watch,
    // Every cleanup runs, even when one fails; the DB closes last, after in-flight jobs have
    // recorded that they were interrupted.
    async close() {
      const errors: unknown[] = [];
      const steps = [
        () => daemon.close(),
        () => log.info('Storage:Requests', { requests: storage.requests }),
        () => storage.close(),
        () => db.close(),
        () => log.close(),
      ];
      for (const step of steps) {
        try {
          await step();
        } catch (error) {
          errors.push(error);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, 'cogd did not shut down cleanly');
    },
  };
}
