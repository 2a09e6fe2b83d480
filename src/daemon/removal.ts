/**
 * Removal, as condor_rm does it, in one place. `cogd rm` records what it names in the state DB
 * (request); whoever works on the home — the daemon, or a `cogd poll` — applies it: jobs executing
 * there are stopped by the scheduler, and the rest (waiting, or queued in HTCondor by a process that
 * is gone) leave any queue and are marked removed (settle). With nobody working on the home,
 * `cogd rm` settles them itself. Each run's post step still runs and reports removed rows as failed
 * with "removed by user".
 */
import { watchBatchName } from '../manifest/names.js';
import type { Target } from '../manifest/targets.js';
import type { StateDB } from '../state/db.js';

export interface RemovalRequest {
  /** What was marked, one line each, as condor_rm says it. */
  lines: string[];
  /** Targets that named nothing unfinished. */
  unknown: string[];
  /** A watch was removed: its daemon must stop polling it. */
  watchesChanged: boolean;
  /** Jobs were marked: whoever executes them must act. */
  jobsChanged: boolean;
}

/** Records the removal of what `targets` name (or of everything unfinished with `all`). */
export function requestRemoval(db: StateDB, targets: readonly Target[], all = false): RemovalRequest {
  const request: RemovalRequest = { lines: [], unknown: [], watchesChanged: false, jobsChanged: false };
  const run = (runId: number): boolean => {
    if (!db.requestRunRemoval(runId)) return false;
    request.lines.push(`All jobs in run ${runId} have been marked for removal`);
    request.jobsChanged = true;
    return true;
  };
  const watch = (watchId: number): boolean => {
    const found = db.watch(watchId);
    if (found === undefined || !db.removeWatch(watchId)) return false;
    request.lines.push(`Watch w${watchId} (${watchBatchName(found.pattern)}) has been removed; its runs go on`);
    request.watchesChanged = true;
    return true;
  };
  if (all) {
    for (const unfinished of db.unfinishedRuns()) run(unfinished.id);
    for (const live of db.liveWatches()) watch(live.id);
    if (request.lines.length === 0) request.lines.push('Nothing to remove');
  }
  for (const target of targets) {
    let done = false;
    if (target.kind === 'run') {
      done = run(target.run);
    } else if (target.kind === 'job') {
      const job = db.jobByLine(target.run, target.line);
      done = job !== undefined && db.requestJobRemoval(job.id);
      if (done) {
        request.lines.push(`Job ${target.text} has been marked for removal`);
        request.jobsChanged = true;
      }
    } else if (target.kind === 'watch') {
      done = watch(target.watch);
    } else {
      for (const live of db.liveWatches())
        if (watchBatchName(live.pattern) === target.name) done = watch(live.id) || done;
      for (const batchRun of db.runsByBatch(target.name)) done = run(batchRun.id) || done;
    }
    if (!done) request.unknown.push(target.text);
  }
  return request;
}

/**
 * Settles removal requests of jobs no scheduler executes: all are marked removed, and those still
 * queued outside cogd (HTCondor, Slurm) are cancelled there. `cancel` gets only the jobs that have
 * something to cancel, and must read what it needs from the DB synchronously — before it first
 * waits — since marking them removed forgets their submissions. Resolves with what cancel said.
 */
export async function settleRemovals(
  db: StateDB,
  jobIds: readonly number[],
  cancel: (jobIds: number[]) => Promise<boolean>,
): Promise<boolean> {
  if (jobIds.length === 0) return true;
  const queued = jobIds.filter((id) => db.anyCondorSubmissions([id]) || db.anySlurmSubmissions([id]));
  const cancelled = queued.length === 0 ? Promise.resolve(true) : cancel(queued);
  db.markRemoved([...jobIds]);
  return cancelled;
}
