/**
 * A test-only executor: implements the real `Executor` interface, converts nothing, and does per
 * job (by image key) what the test scripts — succeed, fail transiently or permanently, hang until
 * aborted, work inside the job clock, or wait for the test to finish or fail it. It records every
 * `run` call, how many were in flight at once, and why each was aborted.
 */
import { PermanentError } from '../../src/errors.js';
import { Shutdown, type Executor, type JobOutput, type JobSpec } from '../../src/executors/types.js';

/** One `run` call, as the fake saw it. */
export class Call {
  /** This key's call number (1 for its first `run`). */
  readonly n: number;
  /** Whether the executor reported the job detached when it was handed over (a re-attach). */
  readonly reattach: boolean;
  /** `Date.now()` when the call came in. */
  readonly at = Date.now();
  outcome: 'pending' | 'ok' | 'error' = 'pending';
  error: unknown;
  /** The signal's reason if the attempt was aborted. */
  abortReason: unknown;
  /** `Date.now()` when the signal was aborted. */
  abortedAt: number | undefined;
  private resolve!: () => void;
  private reject!: (error: unknown) => void;
  private readonly release: Promise<void>;

  constructor(
    readonly job: JobSpec,
    readonly signal: AbortSignal,
    n: number,
    reattach: boolean,
  ) {
    this.n = n;
    this.reattach = reattach;
    this.release = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.release.catch(() => undefined);
    signal.addEventListener('abort', () => (this.abortedAt = Date.now()), { once: true });
  }

  get key(): string {
    return this.job.imageKey;
  }

  /** Lets a `held` call succeed. */
  finish(): void {
    this.resolve();
  }

  /** Lets a `held` call fail with `error`. */
  fail(error: unknown): void {
    this.reject(error);
  }

  /** Resolves on `finish()`, rejects on `fail()` or with the signal's reason on abort. */
  held(): Promise<void> {
    return Promise.race([this.release, untilAborted(this.signal)]);
  }
}

export type Script = (call: Call) => Promise<void>;

/** Never resolves; rejects with the signal's reason once it is aborted (as real executors do). */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Waits `ms` with the global `setTimeout` (so vitest's fake timers drive it), or until aborted. */
export function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- scripts

/** Starts and succeeds at once. */
export const succeed: Script = async (call) => {
  call.job.started();
};

/** Starts, then fails `times` times with "transient failure <n>", then succeeds. */
export function failing(times: number): Script {
  return async (call) => {
    call.job.started();
    if (call.n <= times) throw new Error(`transient failure ${call.n}`);
  };
}

/** Starts, then fails with a `PermanentError`. */
export function permanent(message: string): Script {
  return async (call) => {
    call.job.started();
    throw new PermanentError('NoSuchImage', message);
  };
}

/** Starts and hangs until aborted — outside the job clock. */
export const hang: Script = async (call) => {
  call.job.started();
  await untilAborted(call.signal);
};

/** Starts and hangs inside `clock.ticking` until aborted (the deadline stops it). */
export const hangTicking: Script = async (call) => {
  call.job.started();
  await call.job.clock.ticking(() => untilAborted(call.signal));
};

/** Waits for the test: `call.finish()` / `call.fail()`; starts first unless `start` is false. */
export function held(start = true): Script {
  return async (call) => {
    if (start) call.job.started();
    await call.held();
  };
}

export class FakeExecutor implements Executor {
  readonly name = 'fake';
  readonly calls: Call[] = [];
  /** Jobs whose attempt "lives on outside this process" (as if queued in HTCondor). */
  readonly detachedJobs = new Set<number>();
  readonly cancelled: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** In flight per run, and the most seen at once per run. */
  readonly inFlightByRun = new Map<number, number>();
  readonly maxInFlightByRun = new Map<number, number>();
  closed = false;
  private readonly counts = new Map<string, number>();

  /**
   * `scripts` by image key; keys not listed use `fallback`. `record: false` keeps nothing of a call
   * once it is over (no `calls`, every call is a key's first): for tests of what the scheduler keeps.
   */
  constructor(
    private readonly scripts: Record<string, Script> = {},
    private readonly fallback: Script = succeed,
    private readonly options: { record?: boolean } = {},
  ) {}

  async run(job: JobSpec, signal: AbortSignal): Promise<JobOutput | undefined> {
    const record = this.options.record !== false;
    const n = record ? (this.counts.get(job.imageKey) ?? 0) + 1 : 1;
    if (record) this.counts.set(job.imageKey, n);
    const call = new Call(job, signal, n, this.detachedJobs.has(job.jobId));
    if (record) this.calls.push(call);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const byRun = (this.inFlightByRun.get(job.runId) ?? 0) + 1;
    this.inFlightByRun.set(job.runId, byRun);
    this.maxInFlightByRun.set(job.runId, Math.max(this.maxInFlightByRun.get(job.runId) ?? 0, byRun));
    try {
      await (this.scripts[job.imageKey] ?? this.fallback)(call);
      call.outcome = 'ok';
      return undefined;
    } catch (error) {
      call.outcome = 'error';
      call.error = error;
      throw error;
    } finally {
      call.abortReason = signal.aborted ? signal.reason : undefined;
      this.inFlight -= 1;
      this.inFlightByRun.set(job.runId, this.inFlightByRun.get(job.runId)! - 1);
      // A detached attempt ends here unless a shutdown merely stopped following it (as HTCondor's).
      if (!(signal.reason instanceof Shutdown)) this.detachedJobs.delete(job.jobId);
    }
  }

  /** The calls for one image key, in order. */
  callsOf(key: string): Call[] {
    return this.calls.filter((c) => c.key === key);
  }

  detached(jobId: number): boolean {
    return this.detachedJobs.has(jobId);
  }

  async cancel(jobIds: number[]): Promise<void> {
    for (const id of jobIds) {
      this.cancelled.push(id);
      this.detachedJobs.delete(id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
