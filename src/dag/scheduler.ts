/**
 * The scheduler: walks each run's DAG, hands ready jobs to the executor — at most `maxRunning` in
 * flight per watch, runs served round-robin so one big manifest does not starve the others —
 * retries failures with back-off, removes jobs on request, and starts a run's `post` node once every
 * job is final. Every state change is written to the state DB before anything depends on it.
 *
 * Memory does not grow with a run's rows: the DB holds the jobs; the scheduler holds the jobs in
 * flight and, per run, the next page of jobs to start (read in manifest order, PAGE at a time), a
 * count of the jobs not final yet and one timer for the next back-off to end. A retried or released
 * job goes back to the DB and is read again on the next pass over the run's jobs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, isPermanent } from '../errors.js';
import { JobClock } from '../util/clock.js';
import { HoldNow, Removal, Shutdown, type Executor } from '../executors/types.js';
import { StepFiles, type Log } from '../log/index.js';
import { previewKey } from '../manifest/names.js';
import type { JobRecord, RunRecord, StateDB } from '../state/db.js';
import type { Storage } from '../storage/s3.js';
import { FINAL_JOB_STATES, type ConversionSettings } from '../types.js';
import { delayFor, type Backoff } from '../util/backoff.js';

/** Jobs read from the DB at a time, per run. */
const PAGE = 256;

export interface SchedulerOptions {
  /** An attempt working longer than this (queueing excluded) is stopped: "timed out after N s". */
  jobTimeoutMs: number;
  /** Whether a timed-out job may be retried. @defaultValue false */
  retryTimeouts: boolean;
  /** Told when attempts start and end (the daemon's metrics). @defaultValue none */
  observer?: JobObserver | undefined;
}

/** How an attempt ended: the job's final state, or `retry` (it failed and runs again). */
export type AttemptOutcome = 'converted' | 'failed' | 'removed' | 'retry';

/** Who wants to know how attempts go (the daemon's metrics); never told of shutdown interruptions. */
export interface JobObserver {
  /** An attempt really started, after waiting `waitMs` since its job became ready to run. */
  attemptStarted(watchId: number, executor: string, waitMs: number): void;
  /** An attempt ended after `durationMs` (from its start, or from its launch if it never started). */
  attemptEnded(watchId: number, executor: string, outcome: AttemptOutcome, durationMs: number, error?: unknown): void;
}

/** The abort reason of an attempt stopped by its deadline. */
class JobTimeout extends Error {
  constructor(readonly seconds: number) {
    super(`timed out after ${seconds} s`);
  }
}

/** What the scheduler needs to know about a run it executes. */
export interface RunHandle {
  run: RunRecord;
  log: Log;
  storage: Storage;
  /** Where the run's jobs are converted. */
  executor: Executor;
  /** Jobs of this run's watch in flight at most (`-m`). */
  maxRunning: number;
  /** Retries after a job's first attempt (the watch's `--retries`). */
  retries: number;
  /** Delays between attempts (from the watch's `--retry-delay`). */
  backoff: Backoff;
  /** How the watch converts images. */
  conversion: ConversionSettings;
  /** Called once every job is final. */
  post: () => Promise<void>;
}

interface Tracker extends RunHandle {
  /** Jobs not final yet; the post step starts when none is left (the DAG: every job, then post). */
  left: number;
  /** The next jobs to start, read from the DB (a page at most), in manifest order. */
  ready: JobRecord[];
  /** The manifest line of the last job read in this pass over the run's jobs. */
  cursor: number;
  /** This pass has read every job due: the next read starts a new pass, if `dirty`. */
  exhausted: boolean;
  /** A job went back to waiting (a retry, a release, a hold --now) since this pass began. */
  dirty: boolean;
  /**
   * Jobs that went back to waiting during this pass: they wait for the next one, behind every job
   * not tried yet (as a retry always has). Cleared when a pass begins.
   */
  requeued: Set<number>;
  /** The one timer of the run: when the next job in its back-off is due. */
  wake: { at: number; timer: NodeJS.Timeout } | undefined;
  /** When execution began: a job's queue wait starts there, or when its back-off ended. */
  since: number;
  finished: { resolve: () => void; reject: (error: unknown) => void };
}

export class Scheduler {
  private readonly trackers: Tracker[] = [];
  private next = 0;
  private readonly inFlight = new Map<number, { controller: AbortController; watchId: number; tracker: Tracker }>();
  private readonly inFlightByWatch = new Map<number, number>();
  /** Attempts in flight per executor (for those with a capacity). */
  private readonly inFlightByExecutor = new Map<Executor, number>();
  /** Jobs whose in-flight attempt is being stopped because the user removed them. */
  private readonly removing = new Set<number>();
  private draining = false;
  /** Runs and jobs the user holds (see setHolds). */
  private heldRuns = new Set<number>();
  private heldJobs = new Set<number>();

  constructor(
    private readonly db: StateDB,
    private readonly options: SchedulerOptions,
  ) {}

  get running(): number {
    return this.inFlight.size;
  }

  /**
   * Executes a planned run; resolves when its post step is done. Jobs a dead process left
   * `running` are run again (outputs are idempotent).
   */
  execute(handle: RunHandle): Promise<void> {
    const { run } = handle;
    this.db.requeueRunning(run.id);
    return new Promise<void>((resolve, reject) => {
      const tracker: Tracker = {
        ...handle,
        left: this.db.liveJobCount(run.id),
        ready: [],
        cursor: 0,
        exhausted: false,
        dirty: false,
        requeued: new Set(),
        wake: undefined,
        since: Date.now(),
        finished: { resolve, reject },
      };
      this.trackers.push(tracker);
      // Jobs still queued outside this process (HTCondor) are followed again first: they already
      // count against -m/--max-running there. Found a page at a time, so only they are held here.
      if (handle.executor.detached !== undefined) {
        for (let after = 0; ;) {
          const page = this.db.liveJobsAfter(run.id, after, Number.MAX_SAFE_INTEGER, PAGE);
          tracker.ready.push(...page.filter((job) => handle.executor.detached?.(job.id) === true));
          if (page.length < PAGE) break;
          after = page.at(-1)!.line;
        }
        // The pass over the rest skips them while they are in flight.
      }
      if (tracker.left === 0) this.startPost(tracker);
      this.pump();
    });
  }

  /**
   * The next job of a run to start, if one may start now: from its page, read from the DB when
   * empty. Held jobs are left out (they are read again once released); in-flight ones skipped.
   */
  private nextReady(tracker: Tracker): JobRecord | undefined {
    for (;;) {
      while (tracker.ready.length > 0) {
        const job = tracker.ready.shift()!;
        if (this.inFlight.has(job.id) || this.heldJobs.has(job.id) || tracker.requeued.has(job.id)) continue;
        return job;
      }
      if (tracker.exhausted) {
        if (!tracker.dirty) return undefined;
        // Something went back to waiting: a new pass from the first line.
        tracker.dirty = false;
        tracker.exhausted = false;
        tracker.cursor = 0;
        tracker.requeued.clear();
      }
      const now = Date.now();
      const page = this.db.liveJobsAfter(tracker.run.id, tracker.cursor, now, PAGE);
      if (page.length > 0) tracker.cursor = page.at(-1)!.line;
      if (page.length < PAGE) {
        tracker.exhausted = true;
        const due = this.db.nextJobDue(tracker.run.id, now);
        if (due !== undefined) this.wakeAt(tracker, due);
      }
      tracker.ready = page;
    }
  }

  /** Reads the run's jobs again at `at` (the end of a back-off); one timer per run, the earliest. */
  private wakeAt(tracker: Tracker, at: number): void {
    if (tracker.wake !== undefined && tracker.wake.at <= at) return;
    if (tracker.wake !== undefined) clearTimeout(tracker.wake.timer);
    const timer = setTimeout(
      () => {
        tracker.wake = undefined;
        tracker.dirty = true;
        this.pump();
      },
      Math.max(0, at - Date.now()),
    );
    tracker.wake = { at, timer };
  }

  /** A job of the run went back to waiting in the DB, due at `at`: it is read again then. */
  private requeue(tracker: Tracker, jobId: number, at: number): void {
    tracker.requeued.add(jobId);
    if (at <= Date.now()) tracker.dirty = true;
    else this.wakeAt(tracker, at);
  }

  /** Launches ready jobs, taking one from each run in turn, within each watch's limit. */
  private pump(): void {
    let idle = 0;
    while (!this.draining && this.trackers.length > 0 && idle < this.trackers.length) {
      this.next %= this.trackers.length;
      const tracker = this.trackers[this.next]!;
      this.next += 1;
      const watchId = tracker.run.watchId;
      // A held run starts nothing; a held job waits, the jobs behind it go on.
      const { capacity } = tracker.executor;
      const job =
        this.heldRuns.has(tracker.run.id) ||
        (this.inFlightByWatch.get(watchId) ?? 0) >= tracker.maxRunning ||
        (capacity !== undefined && (this.inFlightByExecutor.get(tracker.executor) ?? 0) >= capacity)
          ? undefined
          : this.nextReady(tracker);
      if (job === undefined) {
        idle += 1;
        continue;
      }
      idle = 0;
      // An attempt records its own failures in the DB; one that throws past that is logged here.
      this.attempt(tracker, job).catch((error: unknown) =>
        tracker.log.error('Job:AttemptCrashed', { job: job.id, reason: describeError(error) }),
      );
    }
  }

  private async attempt(tracker: Tracker, job: JobRecord): Promise<void> {
    const watchId = tracker.run.watchId;
    const controller = new AbortController();
    this.inFlight.set(job.id, { controller, watchId, tracker });
    // Ready since execution began or since its back-off ended, whichever is later.
    const readySince = Math.max(tracker.since, job.notBefore);
    this.inFlightByWatch.set(watchId, (this.inFlightByWatch.get(watchId) ?? 0) + 1);
    const executor = tracker.executor;
    this.inFlightByExecutor.set(executor, (this.inFlightByExecutor.get(executor) ?? 0) + 1);
    // An attempt that lives on outside this process (queued in HTCondor before a restart) is
    // re-attached to, not counted again.
    const reattach = executor.detached?.(job.id) === true;
    const attempt = reattach ? Math.max(1, job.attempts) : job.attempts + 1;
    const total = tracker.retries + 1;
    // In flight, but `running` only once the executor starts it: until then it waits for a slot.
    if (!reattach) this.db.setJobStateSoon(job.id, 'idle', { attempts: attempt });
    job.attempts = attempt;
    const launchedAt = Date.now();
    const observer = this.options.observer;
    let runningSince: number | undefined;
    const ended = (outcome: AttemptOutcome, error?: unknown): void =>
      observer?.attemptEnded(watchId, executor.name, outcome, Date.now() - (runningSince ?? launchedAt), error);
    const started = (): void => {
      if (controller.signal.aborted) return;
      this.db.setJobStateSoon(job.id, 'running');
      job.state = 'running';
      if (runningSince === undefined) {
        // The first start of this attempt (an eviction starts it again: that is not a new wait).
        runningSince = Date.now();
        observer?.attemptStarted(watchId, executor.name, runningSince - readySince);
      }
    };
    const files = new StepFiles(tracker.run.runDir, job.logName ?? `line${job.line}`);
    const log = tracker.log.child({ job: job.id, key: job.imageKey });
    files.log(
      reattach
        ? `attempt ${attempt} of ${total}: following it again after a restart`
        : `attempt ${attempt} of ${total}: s3://${tracker.run.inputBucket}/${job.imageKey} (manifest line ${job.line})`,
    );
    const startedAt = Date.now();
    const clock = new JobClock(this.options.jobTimeoutMs, () =>
      controller.abort(new JobTimeout(Math.round(this.options.jobTimeoutMs / 1000))),
    );
    /** When the job may be retried: it is queued again once this attempt is over (see `finally`). */
    let retryAt: number | undefined;
    try {
      const output = await executor.run(
        {
          jobId: job.id,
          runId: tracker.run.id,
          imageKey: job.imageKey!,
          declaredBands: job.bands ?? 0,
          inputBucket: tracker.run.inputBucket,
          outputBucket: tracker.run.outputBucket,
          cogKey: job.imageKey!,
          previewKey: previewKey(job.imageKey!),
          conversion: tracker.conversion,
          storage: tracker.storage,
          clock,
          started,
          files,
          log,
        },
        controller.signal,
      );
      this.db.setJobStateSoon(job.id, 'converted', {
        error: null,
        endAttempt: true,
        ...(output?.item === undefined ? {} : { item: JSON.stringify(output.item) }),
      });
      job.state = 'converted';
      files.log(`converted in ${((Date.now() - startedAt) / 1000).toFixed(2)} s`);
      log.info('Job:Converted', { attempt, ms: Date.now() - startedAt });
      ended('converted');
      this.settle(tracker);
    } catch (caught) {
      const timeout = controller.signal.reason instanceof JobTimeout ? controller.signal.reason : undefined;
      const error = timeout ?? caught;
      const reason = describeError(error);
      const permanent = isPermanent(error) || (timeout !== undefined && !this.options.retryTimeouts);
      if (this.removing.delete(job.id)) {
        this.db.setJobState(job.id, 'removed', { error: 'removed by user', endAttempt: true });
        job.state = 'removed';
        files.log('removed by user');
        log.info('Job:Removed', { attempt });
        ended('removed');
        this.settle(tracker);
      } else if (controller.signal.reason instanceof HoldNow) {
        // Stopped by `cogd hold --now`: not the job's fault; it runs again once released.
        this.db.setJobState(job.id, 'idle', { attempts: attempt - 1 });
        job.state = 'idle';
        job.attempts = attempt - 1;
        files.log('stopped by a hold; runs again once released');
        log.info('Job:Held', { attempt });
        retryAt = Date.now();
      } else if (controller.signal.aborted && timeout === undefined) {
        if (executor.detached?.(job.id) === true) {
          // Still queued outside this process: the next start follows it again.
          files.log('no longer followed (shutdown); the next start follows it again');
        } else {
          // Stopped by a shutdown: not the job's fault, so the attempt is given back.
          this.db.setJobState(job.id, 'idle', { attempts: attempt - 1 });
          job.state = 'idle';
          job.attempts = attempt - 1;
          files.log('interrupted by shutdown; will run again');
        }
      } else if (permanent || attempt >= total) {
        this.db.setJobStateSoon(job.id, 'failed', { error: reason, endAttempt: true });
        job.state = 'failed';
        job.error = reason;
        files.log(`failed: ${reason}`);
        log.warn('Job:Failed', { attempt, of: total, reason, permanent });
        ended('failed', error);
        this.settle(tracker);
      } else {
        const delay = delayFor(tracker.backoff, attempt);
        const notBefore = Date.now() + delay;
        this.db.setJobStateSoon(job.id, 'idle', { error: reason, notBefore, endAttempt: true });
        job.state = 'idle';
        job.error = reason;
        files.log(`attempt ${attempt} of ${total} failed: ${reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
        log.info('Job:Retry', { attempt, of: total, reason, delayMs: delay });
        ended('retry', error);
        retryAt = notBefore;
      }
    } finally {
      clock.stop();
      await files.flush();
      this.inFlight.delete(job.id);
      this.inFlightByWatch.set(watchId, (this.inFlightByWatch.get(watchId) ?? 1) - 1);
      this.inFlightByExecutor.set(executor, (this.inFlightByExecutor.get(executor) ?? 1) - 1);
      // Fix: the retry is queued only now. Queued in `catch`, it could start while this attempt
      // still flushed its log (a zero or short back-off, any pump meanwhile): this cleanup then
      // deleted the retry's in-flight entry, so remove() and drain() no longer saw it (a removed
      // job kept running, drain returned under it), and both attempts' log lines interleaved.
      const removed = this.removing.delete(job.id);
      if (retryAt !== undefined && removed) {
        // Removed while this attempt was being wound up: the retry never starts.
        this.db.setJobState(job.id, 'removed', { error: 'removed by user', endAttempt: true });
        job.state = 'removed';
        log.info('Job:Removed', { attempt });
        this.settle(tracker);
      } else if (retryAt !== undefined && !this.draining) {
        this.requeue(tracker, job.id, retryAt);
      }
      this.pump();
    }
  }

  /**
   * The user's holds, as the DB has them now: held runs start no job, held jobs are not started.
   * `now`: jobs of those holds already running here are stopped and requeued without spending an
   * attempt (`cogd hold --now`). Jobs that live on outside this process (HTCondor) are not
   * touched: their executor holds them there.
   */
  setHolds(holds: { runs: Iterable<number>; jobs: Iterable<number>; now: Iterable<number> }): void {
    const jobs = new Set(holds.jobs);
    // Held jobs are left out of a pass: once one is released, the runs are read again.
    if ([...this.heldJobs].some((id) => !jobs.has(id))) for (const tracker of this.trackers) tracker.dirty = true;
    this.heldRuns = new Set(holds.runs);
    this.heldJobs = jobs;
    for (const jobId of holds.now) {
      const flight = this.inFlight.get(jobId);
      if (flight === undefined || flight.tracker.executor.detached?.(jobId) === true) continue;
      if (!flight.controller.signal.aborted) flight.controller.abort(new HoldNow());
    }
    this.pump();
  }

  /** Jobs in flight here, by run: what `--now` holds may stop. */
  inFlightOf(runIds: ReadonlySet<number>): number[] {
    const ids: number[] = [];
    for (const [jobId, { tracker }] of this.inFlight) if (runIds.has(tracker.run.id)) ids.push(jobId);
    return ids;
  }

  /**
   * A watch's settings changed (a second `cogd start` gave `-m` or `--retries`): its runs in
   * progress follow them from now on — the next job launched, the next failure handled.
   */
  updateWatch(watchId: number, settings: { maxRunning: number; retries: number; backoff: Backoff }): void {
    for (const tracker of this.trackers) {
      if (tracker.run.watchId !== watchId) continue;
      tracker.maxRunning = settings.maxRunning;
      tracker.retries = settings.retries;
      tracker.backoff = settings.backoff;
    }
    this.pump();
  }

  /**
   * Removes jobs of runs this scheduler executes: a job in flight is stopped (its processes killed),
   * a waiting one never starts. Returns the ids it did not know (not executing here).
   */
  remove(jobIds: Iterable<number>): number[] {
    const unknown: number[] = [];
    for (const jobId of jobIds) {
      const flight = this.inFlight.get(jobId);
      if (flight !== undefined) {
        this.removing.add(jobId);
        flight.controller.abort(new Removal());
        continue;
      }
      const job = this.db.job(jobId);
      const tracker = job === undefined ? undefined : this.trackers.find((t) => t.run.id === job.runId);
      if (tracker === undefined || job === undefined) {
        unknown.push(jobId);
        continue;
      }
      if (FINAL_JOB_STATES.has(job.state)) continue;
      tracker.ready = tracker.ready.filter((j) => j.id !== jobId);
      if (tracker.executor.detached?.(jobId) === true) {
        tracker.executor
          .cancel?.([jobId])
          .catch((error: unknown) =>
            tracker.log.warn('Job:CancelFailed', { job: jobId, reason: describeError(error) }),
          );
      }
      this.db.setJobState(jobId, 'removed', { error: 'removed by user', endAttempt: true });
      tracker.log.info('Job:Removed', { job: jobId, key: job.imageKey });
      this.settle(tracker);
    }
    return unknown;
  }

  /** A job reached a final state: once none is left, the post step starts. */
  private settle(tracker: Tracker): void {
    tracker.left -= 1;
    if (tracker.left === 0) this.startPost(tracker);
  }

  private startPost(tracker: Tracker): void {
    if (this.draining) return;
    const index = this.trackers.indexOf(tracker);
    if (index !== -1) this.trackers.splice(index, 1);
    if (tracker.wake !== undefined) clearTimeout(tracker.wake.timer);
    tracker.wake = undefined;
    tracker.ready = [];
    tracker.post().then(tracker.finished.resolve, tracker.finished.reject);
  }

  /**
   * Stops launching jobs and interrupts the ones in flight; they go back to idle and run again on
   * the next start. Runs in progress stay unfinished in the DB.
   */
  async drain(): Promise<void> {
    this.draining = true;
    for (const tracker of this.trackers) {
      if (tracker.wake !== undefined) clearTimeout(tracker.wake.timer);
      tracker.wake = undefined;
    }
    for (const { controller } of this.inFlight.values()) controller.abort(new Shutdown());
    while (this.inFlight.size > 0) await sleep(20);
  }
}
