/**
 * Runs' ends, done in the background: once a run is final, its watch's `--on-run-end` command and
 * `--notify-url` POST (recorded as pending by the statement that made the run final) are started
 * here and never awaited by the poll or the run — a slow hook or a dead webhook server delays
 * nothing else. Their outcome is recorded once; until then they stay pending, and the next process
 * of the home (a restart, `cogd poll --wait`) does them again: at least once. A stop kills a hook in
 * flight (its group) and drops a notification's retries; both are done again at the next start.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { EngineConfig } from '../config/index.js';
import { describeError } from '../errors.js';
import type { Log } from '../log/index.js';
import { hookEnvironment, notify, runFacts, runHook, type RunFacts } from '../post/run-end.js';
import type { RunEndRecord, StateDB } from '../state/db.js';
import { safeUrl } from '../util/url.js';
import type { ProcessRegistry } from './processes.js';

/** The files the hook's output is appended to, in the run's log directory. */
export const HOOK_OUT = 'hook.out';
export const HOOK_ERR = 'hook.err';

export class RunEnds {
  /** Runs whose end is being done by this process. */
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly db: StateDB,
    private readonly log: Log,
    private readonly options: EngineConfig['runEnd'],
    private readonly processes: ProcessRegistry,
  ) {}

  /** Starts what is pending for a finished run, unless it is in flight already or cogd is stopping. */
  start(runId: number): void {
    if (this.inFlight.has(runId) || this.stopping.signal.aborted) return;
    const run = this.db.run(runId);
    const due = this.db.runEnd(runId);
    if (run?.state !== 'done' || due === undefined) return;
    const hook = due.hookState === 'pending' && due.hookCommand !== null;
    const post = due.notifyState === 'pending' && due.notifyUrl !== null;
    if (!hook && !post) return;
    const facts = runFacts(run, this.db.jobCounts(runId));
    const log = this.log.child({ run: runId });
    const work = Promise.allSettled([
      hook ? this.hook(facts, due, log) : undefined,
      post ? this.notify(facts, due.notifyUrl!, log) : undefined,
    ])
      .then((results) => {
        // Left pending: the next poll of the watch (or the next start) tries again.
        for (const result of results)
          if (result.status === 'rejected') log.error('Run:EndFailed', { reason: describeError(result.reason) });
      })
      .finally(() => this.inFlight.delete(runId));
    this.inFlight.set(runId, work);
  }

  /** Starts every pending run end (of one watch, or all): those a previous process left undone. */
  resume(watchId?: number): void {
    for (const runId of this.db.runEndPending(watchId)) this.start(runId);
  }

  /** Waits for the run ends in flight (of the given runs, or all). */
  async settled(runIds?: readonly number[]): Promise<void> {
    const ids = runIds ?? [...this.inFlight.keys()];
    await Promise.all(ids.flatMap((id) => this.inFlight.get(id) ?? []));
  }

  /** Stops: hooks in flight are killed, notifications dropped; they stay pending for the next start. */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.inFlight.values());
  }

  private async hook(facts: RunFacts, due: RunEndRecord, log: Log): Promise<void> {
    const argv = JSON.parse(due.hookCommand!) as string[];
    if (due.hookStarts > 0)
      log.warn('Run:HookAgain', {
        program: argv[0],
        reason: 'started before by a cogd process that stopped or died before it ended; run again',
      });
    this.db.hookStarted(facts.runId);
    await mkdir(facts.logDir, { recursive: true });
    log.info('Run:HookStarted', { program: argv[0], status: facts.status });
    const started = Date.now();
    const outcome = await runHook(argv, {
      env: hookEnvironment(facts, this.options.hookEnvironment),
      cwd: facts.logDir,
      out: path.join(facts.logDir, HOOK_OUT),
      err: path.join(facts.logDir, HOOK_ERR),
      timeoutMs: this.options.hookTimeoutMs,
      signal: this.stopping.signal,
      track: this.processes.forHook(facts.runId),
    });
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    if (outcome.interrupted) {
      log.info('Run:HookInterrupted', {
        program: argv[0],
        seconds,
        reason: 'cogd is stopping; it runs again at the next start',
      });
      return;
    }
    this.db.setHookOutcome(facts.runId, outcome);
    const context = { program: argv[0], result: outcome.result, seconds, output: path.join(facts.logDir, HOOK_ERR) };
    if (outcome.state === 'ok') log.info('Run:HookDone', context);
    else log.warn(outcome.state === 'timeout' ? 'Run:HookTimedOut' : 'Run:HookFailed', context);
  }

  private async notify(facts: RunFacts, url: string, log: Log): Promise<void> {
    const shown = safeUrl(url);
    const result = await notify(url, facts, {
      attempts: this.options.notifyAttempts,
      backoff: this.options.notifyBackoff,
      signal: this.stopping.signal,
      onRetry: (reason, attempt, delayMs) =>
        log.warn('Run:NotifyRetry', { url: shown, attempt, of: this.options.notifyAttempts, reason, delayMs }),
    });
    if (result.interrupted) {
      log.info('Run:NotifyInterrupted', { url: shown, reason: 'cogd is stopping; it is sent again at the next start' });
      return;
    }
    this.db.setNotifyOutcome(facts.runId, result);
    if (result.ok) log.info('Run:Notified', { url: shown, result: result.result });
    else log.error('Run:NotifyGaveUp', { url: shown, attempts: result.attempts, result: result.result });
  }
}
