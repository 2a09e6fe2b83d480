/**
 * `cogd rm`: like condor_rm. Records the removal in the DB and wakes the daemon, which acts: jobs
 * in flight are stopped, waiting ones never start, and each run's post step still runs, recording
 * removed rows as failed with reason "removed by user". With no daemon running, waiting jobs are
 * marked removed at once and the post steps run at the next `cogd start` or `cogd poll --wait`.
 *
 *   cogd rm 12          every job of run 12
 *   cogd rm 12.5        the job of manifest line 5 in run 12
 *   cogd rm w3          watch 3 (stops polling; its runs go on)
 *   cogd rm BATCH_NAME  COG-Pipeline-DAG-<pattern>: its unfinished runs; COG-Pipeline-Crondor-<pattern>: its watches
 *   cogd rm --all       every unfinished run and every watch
 */
import { existsSync } from 'node:fs';
import { resolveHome } from '../../config/index.js';
import { homeHolder, homePaths } from '../../daemon/home.js';
import { queuedIds, removeFromQueue } from '../../executors/condor/queue.js';
import { UsageError } from '../../errors.js';
import { watchBatchName } from '../../manifest/names.js';
import { parseTarget } from '../../manifest/targets.js';
import { StateDB } from '../../state/db.js';

export interface RmFlags {
  home?: string;
  all?: boolean;
}

export async function rmCommand(targets: string[], flags: RmFlags): Promise<number> {
  if (targets.length === 0 && flags.all !== true) {
    throw new UsageError('cogd rm needs what to remove', 'give run ids (12), job ids (12.5), watch ids (w3), a batch name, or --all');
  }
  const home = resolveHome(flags.home);
  const paths = homePaths(home);
  if (!existsSync(paths.db)) {
    process.stderr.write(`cogd rm: nothing has run on ${home} (no ${paths.db})\n`);
    return 1;
  }
  const db = new StateDB(paths.db);
  const lines: string[] = [];
  const unknown: string[] = [];
  let watchesChanged = false;
  let jobsChanged = false;
  let condorFailed = false;

  const removeRun = (runId: number): boolean => {
    if (!db.requestRunRemoval(runId)) return false;
    lines.push(`All jobs in run ${runId} have been marked for removal`);
    jobsChanged = true;
    return true;
  };
  const removeWatch = (watchId: number): boolean => {
    const watch = db.watch(watchId);
    if (watch === undefined || !db.removeWatch(watchId)) return false;
    lines.push(`Watch w${watchId} (${watchBatchName(watch.pattern)}) has been removed; its runs go on`);
    watchesChanged = true;
    return true;
  };

  try {
    if (flags.all === true) {
      for (const run of db.unfinishedRuns()) removeRun(run.id);
      for (const watch of db.liveWatches()) removeWatch(watch.id);
      if (lines.length === 0) lines.push('Nothing to remove');
    }
    for (const text of targets) {
      const target = parseTarget(text);
      let done = false;
      if (target.kind === 'run') {
        done = removeRun(target.run);
      } else if (target.kind === 'job') {
        const job = db.jobByLine(target.run, target.line);
        if (job !== undefined && db.requestJobRemoval(job.id)) {
          lines.push(`Job ${target.text} has been marked for removal`);
          jobsChanged = true;
          done = true;
        }
      } else if (target.kind === 'watch') {
        done = removeWatch(target.watch);
      } else {
        for (const watch of db.liveWatches()) if (watchBatchName(watch.pattern) === target.name) done = removeWatch(watch.id) || done;
        for (const run of db.runsByBatch(target.name)) done = removeRun(run.id) || done;
      }
      if (!done) unknown.push(text);
    }

    // Whoever works on the home applies the requests: a daemon (woken by signals, or within a
    // second by itself), or a `cogd poll` (SIGUSR2). Only with nobody there does rm apply them.
    const holder = homeHolder(home);
    if (holder?.pid !== undefined) {
      if (watchesChanged && holder.role === 'daemon') process.kill(holder.pid, 'SIGHUP');
      if (jobsChanged) process.kill(holder.pid, 'SIGUSR2');
    } else if (holder === undefined && jobsChanged) {
      const requested = db.jobsToRemove();
      // Jobs queued in HTCondor leave the queue now, as condor_rm would do it.
      const queued = queuedIds(db, requested);
      if (queued.length > 0) {
        const result = await removeFromQueue(db, queued);
        if (result.output !== '') lines.push(result.output);
        if (result.exitCode !== 0) {
          process.stderr.write(`cogd rm: condor_rm ${result.args.join(' ')} failed; the jobs are marked removed here, check condor_q\n`);
          condorFailed = true;
        }
      }
      db.markRemoved(requested);
      lines.push('No daemon is running: the post steps run at the next `cogd start` (or `cogd poll --wait`)');
    }
  } finally {
    db.close();
  }
  for (const line of lines) process.stdout.write(`${line}\n`);
  if (unknown.length > 0) {
    process.stderr.write(`cogd rm: nothing unfinished matches ${unknown.join(', ')} (see \`cogd status\`)\n`);
    return 1;
  }
  return condorFailed ? 1 : 0;
}
