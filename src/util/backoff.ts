/**
 * Named back-off strategies. The local scheduler uses them; the HTCondor submit template is
 * rendered from the same definitions.
 */
export type Backoff =
  | { kind: 'fixed'; delayMs: number; jitter: number }
  | { kind: 'exponential'; baseMs: number; factor: number; maxMs: number; jitter: number };

/** @defaultValue base from `--retry-delay`, doubling, capped at 15 minutes, ±20% jitter */
export function exponential(baseMs: number): Backoff {
  return { kind: 'exponential', baseMs, factor: 2, maxMs: 15 * 60 * 1000, jitter: 0.2 };
}

/** Delay before retry number `retry` (1 for the first retry). `random` is injectable for tests. */
export function delayFor(backoff: Backoff, retry: number, random: () => number = Math.random): number {
  const nominal =
    backoff.kind === 'fixed'
      ? backoff.delayMs
      : Math.min(backoff.maxMs, backoff.baseMs * backoff.factor ** Math.max(0, retry - 1));
  const spread = nominal * backoff.jitter;
  return Math.max(0, Math.round(nominal - spread + 2 * spread * random()));
}
