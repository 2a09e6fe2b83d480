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
import { readOptions, resolveHome } from '../../config/index.js';
import { requestRemoval, settleRemovals, type RemovalRequest } from '../../daemon/removal.js';
import { homeHolder, homePaths } from '../../daemon/home.js';
import { queuedIds, removeFromQueue } from '../../executors/condor/queue.js';
import { SlurmTools } from '../../executors/slurm/commands.js';
import { slurmTaskIds } from '../../executors/slurm/executor.js';
import { createLog } from '../../log/index.js';
import { UsageError } from '../../errors.js';
import { parseTarget } from '../../manifest/targets.js';
import { StateDB } from '../../state/db.js';

export async function rmCommand(texts: string[], flags: Record<string, unknown>): Promise<number> {
  const options = readOptions('rm', flags).command;
  if (texts.length === 0 && options.all !== true) {
    throw new UsageError(
      'cogd rm needs what to remove',
      'give run ids (12), job ids (12.5), watch ids (w3), a batch name, or --all',
    );
  }
  const targets = texts.map(parseTarget);
  const home = resolveHome(options.home);
  const paths = homePaths(home);
  if (!existsSync(paths.db)) {
    process.stderr.write(`cogd rm: nothing has run on ${home} (no ${paths.db})\n`);
    return 1;
  }
  const db = new StateDB(paths.db);
  let condorFailed = false;
  let request: RemovalRequest;
  try {
    request = requestRemoval(db, targets, options.all === true);
    // Whoever works on the home applies the requests: a daemon (woken by signals, or within a
    // second by itself), or a `cogd poll` (SIGUSR2). Only with nobody there does rm apply them.
    const holder = homeHolder(home);
    if (holder?.pid !== undefined) {
      if (request.watchesChanged && holder.role === 'daemon') process.kill(holder.pid, 'SIGHUP');
      if (request.jobsChanged) process.kill(holder.pid, 'SIGUSR2');
    } else if (holder === undefined && request.jobsChanged) {
      // Jobs queued in HTCondor or Slurm leave the queue now, as condor_rm or scancel would do it.
      const done = await settleRemovals(db, db.jobsToRemove(), async (queued) => {
        // Both read from the DB before anything waits: the jobs are marked removed right after.
        const ids = queuedIds(db, queued);
        const tasks = slurmTaskIds(db, queued).ids;
        let ok = true;
        if (ids.length > 0) {
          const result = await removeFromQueue(db, ids);
          if (result.output !== '') request.lines.push(result.output);
          if (result.exitCode !== 0) {
            ok = false;
            process.stderr.write(
              `cogd rm: condor_rm ${result.args.join(' ')} failed; the jobs are marked removed here, check condor_q\n`,
            );
          }
        }
        if (tasks.length > 0) {
          const result = await new SlurmTools(createLog({ consoleLevel: 'silent' })).cancel(tasks);
          request.lines.push(`scancel ${tasks.join(' ')}`);
          if (!result.ok) {
            ok = false;
            process.stderr.write(
              `cogd rm: scancel ${tasks.join(' ')} failed (${result.output}); the jobs are marked removed here, check squeue\n`,
            );
          }
        }
        return ok;
      });
      condorFailed = !done;
      request.lines.push('No daemon is running: the post steps run at the next `cogd start` (or `cogd poll --wait`)');
    }
  } finally {
    db.close();
  }
  for (const line of request.lines) process.stdout.write(`${line}\n`);
  if (request.unknown.length > 0) {
    process.stderr.write(`cogd rm: nothing unfinished matches ${request.unknown.join(', ')} (see \`cogd status\`)\n`);
    return 1;
  }
  return condorFailed ? 1 : 0;
}
