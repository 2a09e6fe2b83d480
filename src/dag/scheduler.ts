/**
 * The scheduler: walks each run's DAG, hands ready jobs to the executor with at most `maxRunning`
 * in flight across all runs, retries failures with back-off, and starts the run's `post` node once
 * every job is final. Every state change is written to the state DB before anything depends on it.
 */
import type { Graph } from '@dagrejs/graphlib';
import { describeError, isPermanent } from '../errors.js';
import type { Executor } from '../executors/types.js';
import { StepFiles, type Log } from '../log/index.js';
import { previewKey } from '../manifest/names.js';
import type { JobRecord, RunRecord, StateDB } from '../state/db.js';
import { FINAL_JOB_STATES } from '../types.js';
import { delayFor, type Backoff } from './backoff.js';
import { buildGraph, jobNode, POST_NODE } from './plan.js';

export interface SchedulerOptions {
  /** Jobs in flight at most, across all runs (`-m`). */
  maxRunning: number;
  /** Retries after the first attempt. */
  retries: number;
  backoff: Backoff;
}

interface Tracker {
  run: RunRecord;
  log: Log;
  graph: Graph;
  jobs: Map<string, JobRecord>;
  /** Predecessors of each node that are not final yet. */
  waitingOn: Map<string, number>;
  post: () => Promise<void>;
  finished: { resolve: () => void; reject: (error: unknown) => void };
}

export class Scheduler {
  private readonly queue: Array<{ tracker: Tracker; node: string }> = [];
  private readonly inFlight = new Map<number, AbortController>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private draining = false;

  constructor(
    private readonly db: StateDB,
    private readonly executor: Executor,
    private readonly options: SchedulerOptions,
  ) {}

  get running(): number {
    return this.inFlight.size;
  }

  /**
   * Executes a planned run; `post` is called once every job is final. Resolves when post is done.
   * Jobs a dead process left `running` are run again (outputs are idempotent).
   */
  execute(run: RunRecord, log: Log, post: () => Promise<void>): Promise<void> {
    this.db.requeueRunning(run.id);
    const records = this.db.jobs(run.id);
    const graph = buildGraph(records.map((job) => job.id));
    const jobs = new Map(records.map((job) => [jobNode(job.id), job]));
    const waitingOn = new Map<string, number>();
    for (const node of graph.nodes()) {
      const pending = (graph.predecessors(node) ?? []).filter((p) => !FINAL_JOB_STATES.has(jobs.get(p)?.state ?? 'idle'));
      waitingOn.set(node, pending.length);
    }
    return new Promise<void>((resolve, reject) => {
      const tracker: Tracker = { run, log, graph, jobs, waitingOn, post, finished: { resolve, reject } };
      for (const [node, job] of jobs) {
        if (!FINAL_JOB_STATES.has(job.state)) this.enqueue(tracker, node, job.notBefore);
      }
      if (waitingOn.get(POST_NODE) === 0) this.startPost(tracker);
      this.pump();
    });
  }

  private enqueue(tracker: Tracker, node: string, notBefore: number): void {
    const wait = notBefore - Date.now();
    if (wait <= 0) {
      this.queue.push({ tracker, node });
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.queue.push({ tracker, node });
      this.pump();
    }, wait);
    this.timers.add(timer);
  }

  private pump(): void {
    while (!this.draining && this.inFlight.size < this.options.maxRunning && this.queue.length > 0) {
      const next = this.queue.shift()!;
      void this.attempt(next.tracker, next.node);
    }
  }

  private async attempt(tracker: Tracker, node: string): Promise<void> {
    const job = tracker.jobs.get(node)!;
    const controller = new AbortController();
    this.inFlight.set(job.id, controller);
    const attempt = job.attempts + 1;
    const total = this.options.retries + 1;
    this.db.setJobState(job.id, 'running', { attempts: attempt });
    job.state = 'running';
    job.attempts = attempt;
    const files = new StepFiles(tracker.run.runDir, job.logName ?? `line${job.line}`);
    const log = tracker.log.child({ job: job.id, key: job.imageKey });
    files.log(`attempt ${attempt} of ${total}: s3://${tracker.run.inputBucket}/${job.imageKey} (manifest line ${job.line})`);
    const started = Date.now();
    try {
      await this.executor.run(
        {
          jobId: job.id,
          runId: tracker.run.id,
          imageKey: job.imageKey!,
          declaredBands: job.bands ?? 0,
          inputBucket: tracker.run.inputBucket,
          outputBucket: tracker.run.outputBucket,
          cogKey: job.imageKey!,
          previewKey: previewKey(job.imageKey!),
          files,
          log,
        },
        controller.signal,
      );
      this.db.setJobState(job.id, 'converted', { error: null });
      job.state = 'converted';
      files.log(`converted in ${((Date.now() - started) / 1000).toFixed(2)} s`);
      log.info('Job:Converted', { attempt, ms: Date.now() - started });
      this.settle(tracker, node);
    } catch (error) {
      const reason = describeError(error);
      if (controller.signal.aborted) {
        // Stopped by a shutdown: not the job's fault, so the attempt is given back.
        this.db.setJobState(job.id, 'idle', { attempts: attempt - 1 });
        job.state = 'idle';
        job.attempts = attempt - 1;
        files.log('interrupted by shutdown; will run again');
      } else if (isPermanent(error) || attempt >= total) {
        this.db.setJobState(job.id, 'failed', { error: reason });
        job.state = 'failed';
        job.error = reason;
        files.log(`failed: ${reason}`);
        log.warn('Job:Failed', { attempt, of: total, reason, permanent: isPermanent(error) });
        this.settle(tracker, node);
      } else {
        const delay = delayFor(this.options.backoff, attempt);
        const notBefore = Date.now() + delay;
        this.db.setJobState(job.id, 'idle', { error: reason, notBefore });
        job.state = 'idle';
        job.error = reason;
        files.log(`attempt ${attempt} of ${total} failed: ${reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
        log.info('Job:Retry', { attempt, of: total, reason, delayMs: delay });
        this.enqueue(tracker, node, notBefore);
      }
    } finally {
      await files.flush();
      this.inFlight.delete(job.id);
      this.pump();
    }
  }

  /** A job reached a final state: its successors may become ready. */
  private settle(tracker: Tracker, node: string): void {
    for (const next of tracker.graph.successors(node) ?? []) {
      const left = (tracker.waitingOn.get(next) ?? 1) - 1;
      tracker.waitingOn.set(next, left);
      if (left === 0 && next === POST_NODE) this.startPost(tracker);
    }
  }

  private startPost(tracker: Tracker): void {
    if (this.draining) return;
    tracker.post().then(tracker.finished.resolve, tracker.finished.reject);
  }

  /**
   * Stops launching jobs and interrupts the ones in flight; they go back to idle and run again on
   * the next start. Runs in progress stay unfinished in the DB.
   */
  async drain(): Promise<void> {
    this.draining = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const controller of this.inFlight.values()) controller.abort();
    while (this.inFlight.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
