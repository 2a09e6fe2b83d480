/**
 * Taking jobs out of HTCondor's queue: which `C.P` ids a job has, one `condor_rm` for many ids, and
 * the coalescing of removals that arrive together. `cogd rm` uses the first two directly when no
 * daemon runs.
 */
import { execa } from 'execa';
import { describeError } from '../../errors.js';
import type { Log } from '../../log/index.js';
import type { StateDB } from '../../state/db.js';

/**
 * The `C.P` ids of the jobs' current HTCondor submissions (jobs not in HTCondor are left out). A
 * proc that converts a group of rows (`--rows-per-job`) is named only when none of its other rows
 * still lives: removing one row of a group never takes the others' conversions down with it.
 */
export function queuedIds(db: StateDB, jobIds: number[]): string[] {
  const ids = new Set<string>();
  const named = new Set(jobIds);
  for (const jobId of jobIds) {
    const submission = db.condorSubmission(jobId);
    if (submission?.cluster == null || submission.result !== null) continue;
    const others = db
      .condorJobs(submission.runId, submission.cluster, submission.proc)
      .filter((j) => !named.has(j.jobId) && j.result === null && ['idle', 'running', 'held'].includes(j.state));
    if (others.length === 0) ids.add(`${submission.cluster}.${submission.proc}`);
  }
  return [...ids];
}

/**
 * One `condor_rm` for the given `C.P` ids; a cluster whose every live proc is named is removed as
 * a cluster (`condor_rm C`).
 */
export async function removeFromQueue(
  db: StateDB,
  ids: string[],
): Promise<{ args: string[]; exitCode: number | undefined; output: string }> {
  const byCluster = new Map<string, string[]>();
  for (const id of ids) {
    const cluster = id.split('.')[0]!;
    byCluster.set(cluster, [...(byCluster.get(cluster) ?? []), id]);
  }
  const args: string[] = [];
  for (const [cluster, procs] of byCluster) {
    const named = new Set(procs);
    const whole = db.liveCondorProcs(Number(cluster)).every((proc) => named.has(`${cluster}.${proc}`));
    args.push(...(whole ? [cluster] : procs));
  }
  const result = await execa('condor_rm', args, { reject: false, timeout: 120_000 });
  const output = `${result.stdout}\n${result.stderr}`.trim();
  return {
    args,
    exitCode: result.exitCode,
    output: result.failed && result.exitCode === undefined ? describeError(result) : output,
  };
}

/**
 * `condor_hold -reason R` or `condor_release` for the given `C.P` ids (a user hold: HoldReasonCode
 * 1, which cogd's periodic_release and periodic_remove leave alone).
 */
export async function holdInQueue(
  verb: 'condor_hold' | 'condor_release',
  ids: string[],
  reason?: string,
): Promise<{ args: string[]; exitCode: number | undefined; output: string }> {
  const args = [...(verb === 'condor_hold' && reason !== undefined ? ['-reason', reason] : []), ...ids];
  const result = await execa(verb, args, { reject: false, timeout: 120_000 });
  const output = `${result.stdout}\n${result.stderr}`.trim();
  return {
    args,
    exitCode: result.exitCode,
    output: result.failed && result.exitCode === undefined ? describeError(result) : output,
  };
}

/**
 * Removals requested in the same turn of the event loop (a whole run removed, job by job) go out
 * as one condor_rm. A failing condor_rm is logged, never thrown: nobody waits on a removal.
 */
export class Remover {
  private requested = new Set<string>();
  private flushing: Promise<void> | undefined;
  /** The latest condor_rm (or the one about to go), for close(). */
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: StateDB,
    private readonly log: Log,
  ) {}

  /** Removes `C.P` ids from the queue; resolves once the condor_rm that carries them ended. */
  remove(ids: string[]): Promise<void> {
    for (const id of ids) this.requested.add(id);
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const requested = [...this.requested];
      this.requested = new Set();
      this.flushing = undefined;
      try {
        const result = await removeFromQueue(this.db, requested);
        if (result.exitCode !== 0)
          this.log.warn('Condor:RmFailed', {
            ids: result.args.join(' '),
            exitCode: result.exitCode,
            output: result.output,
          });
        else this.log.info('Condor:Removed', { ids: result.args.join(' ') });
      } catch (error) {
        this.log.warn('Condor:RmFailed', { ids: requested.join(' '), output: describeError(error) });
      }
    });
    this.last = this.flushing;
    return this.flushing;
  }

  /** Waits for the latest condor_rm. */
  async close(): Promise<void> {
    await this.last;
  }
}
