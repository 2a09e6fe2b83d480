/**
 * A job's deadline budget. The clock ticks only while the job works (holds a transfer or CPU slot),
 * not while it queues behind other jobs, so `--job-timeout` measures the image, not the backlog.
 */
export class JobClock {
  private remaining: number;
  private timer: NodeJS.Timeout | undefined;
  private since = 0;
  private depth = 0;

  constructor(
    readonly budgetMs: number,
    private readonly expire: () => void,
  ) {
    this.remaining = budgetMs;
  }

  /** Runs `work` with the clock ticking (nested calls tick once). */
  async ticking<T>(work: () => Promise<T>): Promise<T> {
    if (this.depth++ === 0) {
      this.since = Date.now();
      this.timer = setTimeout(this.expire, Math.max(0, this.remaining));
    }
    try {
      return await work();
    } finally {
      if (--this.depth === 0) {
        clearTimeout(this.timer);
        this.remaining -= Date.now() - this.since;
      }
    }
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
