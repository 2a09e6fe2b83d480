/**
 * The one retry loop: S3 requests, post steps and the home lock all go through it. Delays come from
 * a named back-off; what may be retried, and what is logged between attempts, is the caller's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { delayFor, type Backoff } from './backoff.js';

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  backoff: Backoff;
  /** Whether another attempt may cure this failure. @defaultValue every failure */
  retryable?: (error: unknown, attempt: number) => boolean;
  /** Called before each wait: the failure, the attempt that failed (1-based), the delay. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Stops waiting (and retrying) once aborted. */
  signal?: AbortSignal;
}

/**
 * Runs `work` until it succeeds, a failure is not retryable, the attempts are used up, or the
 * signal aborts; then throws the last failure itself (callers that need the count use `attempt`).
 */
export async function retry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work(attempt);
    } catch (error) {
      const retryable = options.retryable?.(error, attempt) ?? true;
      if (!retryable || attempt >= options.attempts || options.signal?.aborted === true) throw error;
      const delayMs = delayFor(options.backoff, attempt);
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, undefined, options.signal === undefined ? undefined : { signal: options.signal }).catch(
        () => {
          throw error; // aborted while waiting: the failure stands
        },
      );
    }
  }
}
