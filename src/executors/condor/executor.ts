/**
 * The HTCondor executor: cogd plans, submits, follows and reconciles on the access point; execute
 * nodes convert. This class wires the parts of the executor seam (`../types.ts`) together:
 *
 *   submit     rows gathered per run (`SubmitQueue`), one condor_submit per batch (`submitter.ts`)
 *   follow     the run's job event log read from the saved offset (`follower.ts`, `eventlog.ts`),
 *              applied as data (`events.ts`) and recorded with the offset (`record.ts`) — no
 *              `condor_q` in the steady state
 *   cancel     `condor_rm`, coalesced (`queue.ts`)
 *   re-attach  a job with a recorded cluster is followed again; an outcome recorded while nobody
 *              followed settles it at once
 *   verify     both outputs HEADed once the job terminated with 0 (`verifyOutputs`), then the
 *              STAC item built from the facts the worker left (`stac.ts`)
 *
 * The scheduler acts on the outcome (converted, retried as a new submission, failed).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CogdError, describeError, PermanentError } from '../../errors.js';
import type { Log, StepFiles } from '../../log/index.js';
import type { StateDB } from '../../state/db.js';
import { crashPoint } from '../../util/crash.js';
import { SubmitQueue, verifyOutputs, type Waiter } from '../batch.js';
import { Shutdown, type Executor, type JobOutput, type JobSpec } from '../types.js';
import { outcomeOf } from './events.js';
import { runFields, type FieldSettings } from './fields.js';
import { EventLogFollower } from './follower.js';
import { finishRow } from './groups.js';
import { holdInQueue, queuedIds, Remover } from './queue.js';
import { recordEvents } from './record.js';
import { condorUnsafeKey } from './render.js';
import { publishItem } from './stac.js';
import { Submitter } from './submitter.js';

export { condorS3Url } from './fields.js';

export interface CondorOptions extends FieldSettings {
  db: StateDB;
  log: Log;
  /** The submit description template. @defaultValue submit-templates/cog.sub */
  submitTemplate?: string | undefined;
  /** Rows per condor_submit. @defaultValue 1000 */
  batchSize: number;
  /** How often the event logs are read. @defaultValue 1000 */
  followIntervalMs?: number;
  /** How long a batch waits for more rows before it is submitted. @defaultValue 200 */
  lingerMs?: number;
}

/** What the executor keeps per run it follows. */
interface RunFollow {
  runId: number;
  runDir: string;
  /** Rows per proc (`--rows-per-job`, fixed at claim); above 1, procs convert groups (`groups.ts`). */
  rowsPerJob: number;
  log: EventLogFollower;
  waiters: Map<number, Waiter>;
  queue: SubmitQueue<Waiter>;
  reading: Promise<void> | undefined;
}

export class CondorExecutor implements Executor {
  readonly name = 'condor';
  private readonly runs = new Map<number, Promise<RunFollow>>();
  private readonly timer: NodeJS.Timeout;
  private readonly submitter: Submitter;
  private readonly remover: Remover;
  private closed = false;

  constructor(private readonly options: CondorOptions) {
    this.submitter = new Submitter(options.db, options.log, options.submitTemplate);
    this.remover = new Remover(options.db, options.log);
    // readAll logs each run's failure itself; nothing is left to reject.
    this.timer = setInterval(() => {
      this.readAll().catch((error: unknown) =>
        options.log.error('Condor:FollowFailed', { reason: describeError(error) }),
      );
    }, options.followIntervalMs ?? 1000);
  }

  private get db(): StateDB {
    return this.options.db;
  }

  detached(jobId: number): boolean {
    return this.db.condorSubmission(jobId)?.cluster != null;
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<JobOutput | undefined> {
    signal.throwIfAborted();
    const follow = await this.follow(job.runId);
    // The run may have gone idle (and unfollowed) while this call waited: follow it again.
    if (!this.runs.has(job.runId)) this.runs.set(job.runId, Promise.resolve(follow));
    const submission = this.db.condorSubmission(job.jobId);
    const outcome = new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { job, resolve, reject };
      follow.waiters.set(job.jobId, waiter);
      if (submission?.cluster != null) {
        // Queued before a restart (or finished while nobody listened): follow it again.
        job.files.log(
          `following HTCondor job ${submission.cluster}.${submission.proc} (log ${path.basename(follow.log.file)})`,
        );
        if (submission.state === 'running') job.started();
        if (submission.result !== null) this.settle(follow, job.jobId, submission.result);
        return;
      }
      for (const key of [job.imageKey, job.previewKey, job.files.name]) {
        const reason = condorUnsafeKey(key);
        if (reason !== undefined) {
          reject(new PermanentError('UnsafeKey', `${key}: ${reason}`));
          return;
        }
      }
      follow.queue.add(waiter);
    });
    const onAbort = (): void => {
      this.abandon(follow, job.jobId, signal.reason).catch((error: unknown) =>
        this.options.log.error('Condor:AbandonFailed', { job: job.jobId, reason: describeError(error) }),
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await outcome;
    } finally {
      signal.removeEventListener('abort', onAbort);
      follow.waiters.delete(job.jobId);
      this.forgetIfIdle(follow);
    }
    await verifyOutputs(
      job,
      'the HTCondor job ended successfully',
      'check transfer_output_remaps in the submit template',
    );
    // The item from the facts the worker left in the run's directory (still there after a restart).
    return job.conversion.stac ? publishItem(job, follow.runDir) : undefined;
  }

  /**
   * The job's attempt is aborted. A shutdown leaves a submitted job queued (the next start follows
   * it again); a removal or a deadline removes it from the queue.
   */
  private async abandon(follow: RunFollow, jobId: number, reason: unknown): Promise<void> {
    const waiter = follow.waiters.get(jobId);
    if (follow.queue.withdraw(jobId) !== undefined) {
      waiter?.reject(reason);
      return;
    }
    await follow.queue.submission(jobId)?.catch(() => undefined);
    if (!(reason instanceof Shutdown)) {
      // A proc that converts other rows too goes on for them: this row's outcome is ignored.
      const ids = queuedIds(this.db, [jobId]);
      if (ids.length > 0) {
        await this.remover.remove(ids);
        waiter?.job.files.log(`condor_rm ${ids.join(' ')}`);
      } else if (follow.rowsPerJob > 1 && this.db.condorSubmission(jobId)?.result === null) {
        waiter?.job.files.log('left its group job to convert the other rows; its own outcome is ignored');
        const submission = this.db.condorSubmission(jobId)!;
        // Its group's other rows may be leaving in the same turn (a whole run removed): once the
        // scheduler has recorded them, a proc no row still waits for is removed.
        setTimeout(() => {
          if (submission.cluster === null) return;
          const live = this.db
            .condorJobs(submission.runId, submission.cluster, submission.proc)
            .some((j) => j.result === null && ['idle', 'running', 'held'].includes(j.state));
          if (!live) this.remover.remove([`${submission.cluster}.${submission.proc}`]).catch(() => undefined);
        }, 1000).unref();
      }
    }
    waiter?.reject(reason);
  }

  async cancel(jobIds: number[]): Promise<void> {
    const ids = queuedIds(this.db, jobIds);
    if (ids.length > 0) await this.remover.remove(ids);
  }

  /**
   * `cogd hold` of jobs HTCondor has (`condor_hold`; a running one is vacated) and `cogd release`
   * (`condor_release`); the event log then says held / released as for any hold. Never throws: a
   * failure is logged and the next check asks again.
   */
  async hold(jobIds: number[], reason: string): Promise<boolean> {
    return this.queueCommand('condor_hold', jobIds, reason);
  }

  async release(jobIds: number[]): Promise<boolean> {
    return this.queueCommand('condor_release', jobIds);
  }

  private async queueCommand(
    verb: 'condor_hold' | 'condor_release',
    jobIds: number[],
    reason?: string,
  ): Promise<boolean> {
    const ids = queuedIds(this.db, jobIds);
    if (ids.length === 0) return true;
    try {
      const result = await holdInQueue(verb, ids, reason);
      if (result.exitCode === 0) {
        this.options.log.info(verb === 'condor_hold' ? 'Condor:Held' : 'Condor:Released', { ids: ids.join(' ') });
        return true;
      }
      this.options.log.warn('Condor:HoldFailed', {
        command: verb,
        ids: ids.join(' '),
        exitCode: result.exitCode,
        output: result.output,
      });
    } catch (error) {
      this.options.log.warn('Condor:HoldFailed', { command: verb, ids: ids.join(' '), output: describeError(error) });
    }
    return false;
  }

  // ---- following runs

  /** The run's follow state, created on first use: event log read up to date before any submission. */
  private follow(runId: number): Promise<RunFollow> {
    let follow = this.runs.get(runId);
    if (follow === undefined) {
      follow = this.startFollowing(runId);
      this.runs.set(runId, follow);
      follow.catch(() => this.runs.delete(runId));
    }
    return follow;
  }

  private async startFollowing(runId: number): Promise<RunFollow> {
    const { runDir, fields, rowsPerJob } = await runFields(this.db, this.options, runId);
    const follow: RunFollow = {
      runId,
      runDir,
      rowsPerJob,
      log: new EventLogFollower(path.join(runDir, 'condor.log'), this.db.condorOffset(runId)),
      waiters: new Map(),
      queue: new SubmitQueue<Waiter>({
        size: this.options.batchSize,
        lingerMs: this.options.lingerMs ?? 200,
        submit: (batch) => this.submitter.submit({ runId, runDir, fields, rowsPerJob }, batch),
        submitted: () => this.forgetIfIdle(follow),
      }),
      reading: undefined,
    };
    // Catch up with everything written while no cogd followed this run.
    await this.read(follow);
    this.submitter.forgetUnconfirmed(runId);
    return follow;
  }

  private async readAll(): Promise<void> {
    for (const follow of this.runs.values()) {
      try {
        await this.read(await follow);
      } catch (error) {
        this.options.log.error('Condor:FollowFailed', { reason: describeError(error) });
      }
    }
  }

  /** Reads new events and applies them (one read at a time per run). */
  private read(follow: RunFollow): Promise<void> {
    follow.reading ??= this.readOnce(follow).finally(() => (follow.reading = undefined));
    return follow.reading;
  }

  private async readOnce(follow: RunFollow): Promise<void> {
    for (;;) {
      const { events, next, skipped } = await follow.log.read();
      if (next === follow.log.offset) return;
      for (const line of skipped) this.options.log.warn('Condor:EventLogLineSkipped', { run: follow.runId, line });
      const { effects, settled } = recordEvents(this.db, follow.runId, events, next);
      follow.log.advance(next);
      if (settled.length > 0) crashPoint('condor:result-recorded');
      for (const { jobId, note, started } of effects) {
        const waiter = follow.waiters.get(jobId);
        waiter?.job.files.log(note);
        // Only if it still runs once the whole chunk is applied (it may be held already).
        if (started && this.db.condorSubmission(jobId)?.state === 'running') waiter?.job.started();
      }
      for (const [jobId, result] of settled) this.settle(follow, jobId, result);
    }
  }

  /** Ends a job's wait with the attempt's outcome as the event log gave it. */
  private settle(follow: RunFollow, jobId: number, result: string): void {
    const waiter = follow.waiters.get(jobId);
    if (waiter === undefined) return; // recorded in the DB; settled when the job is followed again
    const outcome = outcomeOf(result);
    if (follow.rowsPerJob > 1) {
      const submission = this.db.condorSubmission(jobId);
      if (!outcome.ok || submission === undefined) {
        // The whole group failed: no row is to blame, each is retried alone.
        const why = outcome.ok
          ? 'no submission recorded'
          : outcome.exitCode === undefined
            ? outcome.reason
            : `the group worker exited with code ${outcome.exitCode}`;
        waiter.reject(new CogdError('CondorJobFailed', `its group job failed: ${why}`));
        return;
      }
      finishRow(waiter.job, follow.runDir, submission.batch, submission.proc).then(waiter.resolve, waiter.reject);
      return;
    }
    if (outcome.ok) {
      waiter.resolve();
      return;
    }
    const ErrorType = outcome.permanent ? PermanentError : CogdError;
    if (outcome.exitCode === undefined) {
      waiter.reject(new ErrorType('CondorJobFailed', outcome.reason));
      return;
    }
    const fail = (said: string | undefined): void =>
      waiter.reject(
        new ErrorType(
          'CondorJobFailed',
          `the worker exited with code ${outcome.exitCode}${said === undefined ? '' : `: ${said}`}`,
        ),
      );
    workerError(waiter.job.files).then(fail, () => fail(undefined));
  }

  /** Nobody waits on the run: stop reading its log until a job of it runs again. */
  private forgetIfIdle(follow: RunFollow): void {
    if (follow.waiters.size > 0 || follow.queue.busy) return;
    this.runs.delete(follow.runId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const follows = await Promise.allSettled(this.runs.values());
    for (const f of follows) {
      if (f.status !== 'fulfilled') continue;
      await f.value.queue.drain();
      await f.value.reading?.catch(() => undefined);
    }
    await this.remover.close();
  }
}

/** The worker's last own message in the job's `.err` (HTCondor brings it back). */
async function workerError(files: StepFiles): Promise<string | undefined> {
  const text = await readFile(files.path('err'), 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return [...lines].reverse().find((l) => l.startsWith('cogd-worker:')) ?? lines.at(-1);
}
