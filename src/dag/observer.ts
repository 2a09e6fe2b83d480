/**
 * Who watches the engine work (the metrics of `--http`): polls, runs, job attempts and S3 traffic.
 * The engine tells; it never waits for or depends on the watcher.
 */
import type { S3Observer } from '../storage/s3.js';
import type { JobObserver } from './scheduler.js';

/** How a finished run ended: every row processed, some rows failed, or the manifest rejected whole. */
export type RunOutcome = 'processed' | 'failures' | 'rejected';

export interface EngineObserver extends JobObserver, S3Observer {
  polled(watchId: number, failed: boolean): void;
  runFinished(outcome: RunOutcome): void;
}
