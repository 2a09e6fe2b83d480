/**
 * The daemon's Prometheus metrics (`/metrics`), on a registry of its own. Counters and histograms
 * are told by the engine as it works (EngineObserver); the jobs gauge is read from the state DB at
 * each scrape. Labels are bounded: a watch id, an executor, a state, an operation or an error code,
 * never a job, a run or a key.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CogdError } from '../errors.js';
import type { AttemptOutcome } from '../dag/scheduler.js';
import type { EngineObserver, RunOutcome } from '../dag/observer.js';
import type { StateDB } from '../state/db.js';

/**
 * The reason class of a failed attempt: cogd's error code (GdalFailed, StepTimeout, NotTiff,
 * NoSuchKey…), `timeout` for the job deadline, `other` for anything else. Codes come from cogd's
 * source or from S3's error names; anything that does not look like one is `other`.
 */
export function reasonClass(error: unknown): string {
  if (error instanceof CogdError && /^[A-Za-z][A-Za-z0-9]{0,39}$/.test(error.code)) return error.code;
  if (error instanceof Error && /^timed out after/.test(error.message)) return 'timeout';
  return 'other';
}

export class Metrics implements EngineObserver {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;

  private readonly jobsFinished: Counter<'outcome' | 'watch' | 'executor'>;
  private readonly attemptFailures: Counter<'reason' | 'executor'>;
  private readonly jobDuration: Histogram<'outcome' | 'executor'>;
  private readonly queueWait: Histogram<'executor'>;
  private readonly imagesIn: Counter;
  private readonly imagesOut: Counter;
  private readonly s3Bytes: Counter<'direction'>;
  private readonly s3Requests: Counter<'operation'>;
  private readonly s3Retries: Counter<'operation'>;
  private readonly s3Errors: Counter<'operation'>;
  private readonly polls: Counter<'watch'>;
  private readonly pollErrors: Counter<'watch'>;
  private readonly runsFinished: Counter<'outcome'>;

  constructor(db: StateDB) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'cogd_jobs',
      help: 'Jobs of unfinished runs, by state, watch and executor (read from the state DB at each scrape)',
      labelNames: ['state', 'watch', 'executor'] as const,
      registers,
      collect() {
        this.reset();
        for (const row of db.liveJobCounts()) {
          this.set({ state: row.state, watch: `w${row.watch}`, executor: row.executor }, row.jobs);
        }
      },
    });
    this.jobsFinished = new Counter({
      name: 'cogd_jobs_finished_total',
      help: 'Jobs that reached a final state in this daemon, by outcome (converted, failed, removed), watch and executor',
      labelNames: ['outcome', 'watch', 'executor'] as const,
      registers,
    });
    this.attemptFailures = new Counter({
      name: 'cogd_job_attempt_failures_total',
      help: 'Failed job attempts (retried or final), by reason class: the error code (GdalFailed, StepTimeout, NotTiff, NotCog, NoSuchKey…), timeout, other',
      labelNames: ['reason', 'executor'] as const,
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'cogd_job_duration_seconds',
      help: 'How long job attempts worked, from their start to their end, by outcome (converted, failed, removed, retry) and executor',
      labelNames: ['outcome', 'executor'] as const,
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.queueWait = new Histogram({
      name: 'cogd_job_queue_wait_seconds',
      help: 'How long job attempts waited from ready to running (for a slot of -m, the CPU pool or the HTCondor queue), by executor',
      labelNames: ['executor'] as const,
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400],
      registers,
    });
    this.imagesIn = new Counter({
      name: 'cogd_images_in_total',
      help: 'Input images taken on: job attempts that started running (a retry counts again)',
      registers,
    });
    this.imagesOut = new Counter({
      name: 'cogd_images_out_total',
      help: 'Images converted: a COG and its preview written and verified',
      registers,
    });
    this.s3Bytes = new Counter({
      name: 'cogd_s3_bytes_total',
      help: 'Object bytes moved by this daemon: in (downloaded, read) and out (uploaded, written)',
      labelNames: ['direction'] as const,
      registers,
    });
    this.s3Requests = new Counter({
      name: 'cogd_s3_requests_total',
      help: 'S3 requests sent, retries included, by API operation (GetObject, PutObject, ListObjectsV2…)',
      labelNames: ['operation'] as const,
      registers,
    });
    this.s3Retries = new Counter({
      name: 'cogd_s3_retries_total',
      help: 'S3 operations tried again after a transient failure, by operation (download, upload, list, head, put, get, copy, delete)',
      labelNames: ['operation'] as const,
      registers,
    });
    this.s3Errors = new Counter({
      name: 'cogd_s3_errors_total',
      help: 'S3 operations that failed for good (after their retries, or at once for NoSuchKey, AccessDenied…), by operation',
      labelNames: ['operation'] as const,
      registers,
    });
    this.polls = new Counter({
      name: 'cogd_polls_total',
      help: 'Polls of a watch’s input bucket, by watch',
      labelNames: ['watch'] as const,
      registers,
    });
    this.pollErrors = new Counter({
      name: 'cogd_poll_errors_total',
      help: 'Polls that failed (S3 unreachable, bad credentials…), by watch',
      labelNames: ['watch'] as const,
      registers,
    });
    this.runsFinished = new Counter({
      name: 'cogd_runs_finished_total',
      help: 'Runs whose post step finished in this daemon, by outcome: processed (every row), failures (some rows failed), rejected (the manifest)',
      labelNames: ['outcome'] as const,
      registers,
    });
  }

  /** The scrape: Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  // ---- EngineObserver

  attemptStarted(_watchId: number, executor: string, waitMs: number): void {
    this.queueWait.observe({ executor }, waitMs / 1000);
    this.imagesIn.inc();
  }

  attemptEnded(watchId: number, executor: string, outcome: AttemptOutcome, durationMs: number, error?: unknown): void {
    this.jobDuration.observe({ outcome, executor }, durationMs / 1000);
    if (outcome === 'failed' || outcome === 'retry') this.attemptFailures.inc({ reason: reasonClass(error), executor });
    if (outcome !== 'retry') this.jobsFinished.inc({ outcome, watch: `w${watchId}`, executor });
    if (outcome === 'converted') this.imagesOut.inc();
  }

  request(operation: string): void {
    this.s3Requests.inc({ operation });
  }

  retry(operation: string): void {
    this.s3Retries.inc({ operation });
  }

  failed(operation: string): void {
    this.s3Errors.inc({ operation });
  }

  transferred(direction: 'in' | 'out', bytes: number): void {
    this.s3Bytes.inc({ direction }, bytes);
  }

  polled(watchId: number, failed: boolean): void {
    this.polls.inc({ watch: `w${watchId}` });
    if (failed) this.pollErrors.inc({ watch: `w${watchId}` });
  }

  runFinished(outcome: RunOutcome): void {
    this.runsFinished.inc({ outcome });
  }
}
