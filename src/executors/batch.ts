/**
 * Pieces every engine that hands jobs to an outside queue needs (HTCondor now, Slurm later), so
 * that such an engine is only its own tools: the rows waiting for a batch submission, the `run`
 * calls waiting for an outcome, and the check that the outputs exist before a job counts as
 * converted.
 */
import { CogdError } from '../errors.js';
import type { JobSpec } from './types.js';

/** A `run` call waiting for its attempt's outcome. */
export interface Waiter {
  job: JobSpec;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface SubmitQueueOptions<T> {
  /** Rows per submission. */
  size: number;
  /** How long a row waits for more rows before a smaller batch is submitted. */
  lingerMs: number;
  /**
   * Submits one batch. Settles once the batch is recorded as submitted (or failed: then it has
   * rejected the rows' waiters itself); it should not reject.
   */
  submit: (batch: T[]) => Promise<void>;
  /** Called after each submission ends (the owner may stop following once nothing is left). */
  submitted?: () => void;
}

/**
 * Rows waiting for a batch submission, and the submissions in progress. Up to `size` rows go in
 * one call of the engine's submit tool; a row waits at most `lingerMs` for company, so a run of
 * thousands of rows becomes a few submissions and a lone row is not kept waiting.
 */
export class SubmitQueue<T extends { job: JobSpec }> {
  private pending: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inProgress = new Map<number, Promise<void>>();

  constructor(private readonly options: SubmitQueueOptions<T>) {}

  add(row: T): void {
    this.pending.push(row);
    if (this.pending.length >= this.options.size) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.lingerMs);
  }

  /** Takes a job's row out while its batch has not gone yet; undefined once it has. */
  withdraw(jobId: number): T | undefined {
    const index = this.pending.findIndex((row) => row.job.jobId === jobId);
    return index === -1 ? undefined : this.pending.splice(index, 1)[0];
  }

  /** The submission carrying the job, while it is in progress. */
  submission(jobId: number): Promise<void> | undefined {
    return this.inProgress.get(jobId);
  }

  /** Rows waiting or being submitted. */
  get busy(): boolean {
    return this.pending.length > 0 || this.inProgress.size > 0;
  }

  /** Stops the linger timer and waits for the submissions in progress (waiting rows stay unsent). */
  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled(this.inProgress.values());
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.options.size);
      const submitted = this.options.submit(batch);
      for (const { job } of batch) this.inProgress.set(job.jobId, submitted);
      // A failed submission is handled where it is awaited (its waiters are rejected by it).
      submitted
        .finally(() => {
          for (const { job } of batch) this.inProgress.delete(job.jobId);
          this.options.submitted?.();
        })
        .catch(() => undefined);
    }
  }
}

/**
 * Both outputs of a job are in S3 and not empty: what an engine whose outputs someone else
 * uploaded (HTCondor's file transfer, a Slurm job's own upload) checks before `run` resolves.
 * `after` names the event that should have left them ("the HTCondor job ended successfully");
 * `hint` says where to look when they are not there.
 */
export async function verifyOutputs(job: JobSpec, after: string, hint: string): Promise<void> {
  for (const key of [job.cogKey, job.previewKey]) {
    const head = await job.storage.head(job.outputBucket, key);
    if (head === undefined || head.size === 0) {
      throw new CogdError(
        'VerifyFailed',
        `s3://${job.outputBucket}/${key} is ${head === undefined ? 'missing' : 'empty'} after ${after}`,
        { hint },
      );
    }
  }
  job.files.log(`verified s3://${job.outputBucket}/${job.cogKey} and ${job.previewKey}`);
}
