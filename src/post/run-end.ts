/**
 * What a run's end tells the world once its post step is done and the run is final: the facts of
 * the run (its status, counts, result CSVs, log directory), the `--on-run-end` command that gets
 * them in its environment, and the `--notify-url` POST that gets them as JSON. Neither can change
 * the run: it is final before either starts, and nothing here writes to S3 or to the run's record.
 *
 * The command runs without a shell, in its own process group, in the run's log directory, with a
 * minimal environment — PATH, HOME and LANG from cogd's, and the COGD_* facts; never an AWS_*
 * variable or the path of a key file — its output appended to the run's `hook.out` / `hook.err`.
 * At its deadline its whole group gets SIGTERM, then SIGKILL; when it exits, whatever it left
 * running in its group is killed too (a hook that wants to outlive itself must leave the group).
 */
import { execa } from 'execa';
import { COGD_VERSION } from '../version.js';
import type { ProcessTracker } from '../convert/gdal.js';
import { resultKey } from '../manifest/names.js';
import type { HookOutcome, RunRecord } from '../state/db.js';
import type { JobState } from '../types.js';
import type { Backoff } from '../util/backoff.js';
import { retry } from '../util/retry.js';
import { secretsOf } from '../util/url.js';

/**
 * How a run ended, in one word: `ok` every row processed; `failed` the manifest was rejected or a
 * row failed (whatever else was removed); `removed` no row failed, but some were removed by the user.
 */
export type RunEndStatus = 'ok' | 'failed' | 'removed';

/** The facts of a finished run: what its hook gets in its environment and its webhook as JSON. */
export interface RunFacts {
  runId: number;
  watchId: number;
  batchName: string;
  /** The manifest as claimed: `s3://bucket/key`. */
  manifest: string;
  inputBucket: string;
  outputBucket: string;
  status: RunEndStatus;
  /** Why the whole manifest was rejected; null when it was not. */
  manifestError: string | null;
  /** Rows of the manifest (valid or not). */
  rows: number;
  /** Rows in the processed CSV. */
  processed: number;
  /** Rows in the failed CSV: failed, and removed by the user (of which `removed`). */
  failed: number;
  removed: number;
  /** Keys of the result CSVs written in the input bucket; null where none was (no row for it). */
  processedKey: string | null;
  failedKey: string | null;
  errorsKey: string | null;
  /** The run's log directory on this machine (`logs/run-<TS>`). */
  logDir: string;
  claimedAt: string;
  finishedAt: string | null;
}

/** The facts of a finished run, from its record and its jobs' final states. */
export function runFacts(run: RunRecord, counts: Readonly<Record<JobState, number>>): RunFacts {
  const rows = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const processed = run.processed ?? counts.converted;
  const failed = run.failed ?? rows - processed;
  const status: RunEndStatus =
    run.error !== null || rows === 0 || failed > counts.removed ? 'failed' : counts.removed > 0 ? 'removed' : 'ok';
  // As the post step writes them: a processed CSV when a row was processed; failed and errors CSVs
  // when a row was not, or when the whole manifest was rejected.
  const failures = rows === 0 || failed > 0;
  return {
    runId: run.id,
    watchId: run.watchId,
    batchName: run.batchName,
    manifest: `s3://${run.inputBucket}/${run.manifestKey}`,
    inputBucket: run.inputBucket,
    outputBucket: run.outputBucket,
    status,
    manifestError: run.error,
    rows,
    processed,
    failed,
    removed: counts.removed,
    processedKey: processed > 0 ? resultKey(run.base, 'processed', run.ts) : null,
    failedKey: failures ? resultKey(run.base, 'failed', run.ts) : null,
    errorsKey: failures ? resultKey(run.base, 'errors', run.ts) : null,
    logDir: run.runDir,
    claimedAt: run.createdAt,
    finishedAt: run.finishedAt,
  };
}

/**
 * The hook's whole environment: the base taken from cogd's (PATH, HOME, LANG) and the facts. A
 * fact that does not apply is set, empty.
 */
export function hookEnvironment(facts: RunFacts, base: Readonly<Record<string, string>>): Record<string, string> {
  return {
    ...base,
    COGD_RUN_ID: String(facts.runId),
    COGD_WATCH_ID: `w${facts.watchId}`,
    COGD_BATCH_NAME: facts.batchName,
    COGD_MANIFEST: facts.manifest,
    COGD_INPUT_BUCKET: facts.inputBucket,
    COGD_OUTPUT_BUCKET: facts.outputBucket,
    COGD_STATUS: facts.status,
    COGD_MANIFEST_ERROR: facts.manifestError ?? '',
    COGD_ROWS: String(facts.rows),
    COGD_PROCESSED: String(facts.processed),
    COGD_FAILED: String(facts.failed),
    COGD_REMOVED: String(facts.removed),
    COGD_PROCESSED_KEY: facts.processedKey ?? '',
    COGD_FAILED_KEY: facts.failedKey ?? '',
    COGD_ERRORS_KEY: facts.errorsKey ?? '',
    COGD_LOG_DIR: facts.logDir,
    COGD_CLAIMED_AT: facts.claimedAt,
    COGD_FINISHED_AT: facts.finishedAt ?? '',
  };
}

/** The webhook's JSON body. */
export function notifyBody(facts: RunFacts): Record<string, unknown> {
  return { event: 'run-end', ...facts };
}

/** How long the group has between SIGTERM and SIGKILL. */
export const HOOK_KILL_GRACE_MS = 5000;

export interface HookOptions {
  /** The hook's environment, all of it. */
  env: Record<string, string>;
  /** Where it runs: the run's log directory. */
  cwd: string;
  /** Its stdout and stderr, appended to. */
  out: string;
  err: string;
  timeoutMs: number;
  /** Aborted when cogd stops: the hook is killed and nothing is recorded (it runs again). */
  signal: AbortSignal;
  track?: ProcessTracker;
}

/** How a hook ended; `interrupted` when cogd stopped it (it is then still to run). */
export type HookResult = HookOutcome & { interrupted: boolean };

/** Signals a process group; it may be gone already. */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // no process left in the group
  }
}

/** Runs a hook to its end, its deadline or cogd's stop. Never throws. */
export async function runHook(argv: readonly string[], options: HookOptions): Promise<HookResult> {
  if (argv.length === 0)
    return { state: 'failed', exitCode: null, signal: null, result: 'no command', interrupted: false };
  if (options.signal.aborted)
    return { state: 'failed', exitCode: null, signal: null, result: 'not started', interrupted: true };
  const subprocess = execa(argv[0]!, argv.slice(1), {
    env: options.env,
    extendEnv: false,
    cwd: options.cwd,
    reject: false,
    detached: true, // its own process group: the deadline kills everything it started
    stdin: 'ignore',
    stdout: { file: options.out, append: true },
    stderr: { file: options.err, append: true },
    buffer: false,
  });
  const pid = subprocess.pid;
  if (pid !== undefined) options.track?.started(pid, argv[0]!);
  const ending = { deadline: false, stopped: false, terminating: false };
  let escalation: NodeJS.Timeout | undefined;
  const terminate = (): void => {
    if (pid === undefined || ending.terminating) return;
    ending.terminating = true;
    signalGroup(pid, 'SIGTERM');
    escalation = setTimeout(() => signalGroup(pid, 'SIGKILL'), HOOK_KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    ending.deadline = true;
    terminate();
  }, options.timeoutMs);
  const stop = (): void => {
    ending.stopped = true;
    terminate();
  };
  options.signal.addEventListener('abort', stop, { once: true });
  const result = await subprocess;
  clearTimeout(timer);
  clearTimeout(escalation);
  options.signal.removeEventListener('abort', stop);
  // The group does not outlive its leader: what it left running (or what ignored SIGTERM) goes now.
  if (pid !== undefined) {
    signalGroup(pid, 'SIGKILL');
    options.track?.ended(pid);
  }
  const exitCode = result.exitCode ?? null;
  const signal = result.signal ?? null;
  if (ending.deadline) {
    const limit = Math.round(options.timeoutMs / 1000);
    return {
      state: 'timeout',
      exitCode,
      signal,
      result: `timed out after ${limit} s; its process group was killed (SIGTERM, then SIGKILL)`,
      interrupted: false,
    };
  }
  if (ending.stopped) return { state: 'failed', exitCode, signal, result: 'stopped by cogd', interrupted: true };
  if (exitCode !== null)
    return {
      state: exitCode === 0 ? 'ok' : 'failed',
      exitCode,
      signal: null,
      result: `exit code ${exitCode}`,
      interrupted: false,
    };
  if (signal !== null) return { state: 'failed', exitCode, signal, result: `killed by ${signal}`, interrupted: false };
  return {
    state: 'failed',
    exitCode: null,
    signal: null,
    result: `could not start: ${firstLine(result.originalMessage ?? result.shortMessage ?? 'unknown reason')}`,
    interrupted: false,
  };
}

const firstLine = (text: string): string => text.split('\n')[0]?.trim() ?? '';

/** One attempt's deadline. */
const NOTIFY_ATTEMPT_TIMEOUT_MS = 10_000;

/** An answer that is not 2xx. */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

/** Network failures, timeouts, 408, 429 and 5xx may pass; other answers will not change. */
function retryable(error: unknown): boolean {
  if (!(error instanceof HttpStatusError)) return true;
  return error.status === 408 || error.status === 429 || error.status >= 500;
}

/** Replaces every secret of the URL (credentials, query) in `text` with `***`. */
export function redact(text: string, url: string): string {
  let redacted = text;
  for (const secret of secretsOf(url)) redacted = redacted.split(secret).join('***');
  return redacted;
}

/** A failure as a log may say it: never the URL's credentials or query. */
export function notifyReason(error: unknown, url: string): string {
  let reason: string;
  if (error instanceof HttpStatusError) reason = error.message;
  else if (error instanceof Error && error.name === 'TimeoutError')
    reason = `no answer within ${NOTIFY_ATTEMPT_TIMEOUT_MS / 1000} s`;
  else if (error instanceof Error) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    reason = cause === undefined ? error.message : `${error.message}: ${cause}`;
  } else reason = String(error);
  return redact(reason, url);
}

/** One POST of the body; resolves with the status of a 2xx answer, throws otherwise. */
async function postOnce(url: string, body: string, signal: AbortSignal): Promise<number> {
  const target = new URL(url);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `cogd/${COGD_VERSION}`,
  };
  // fetch refuses URLs with credentials: they travel as basic authentication instead.
  if (target.username !== '' || target.password !== '') {
    const user = decodeURIComponent(target.username);
    const password = decodeURIComponent(target.password);
    headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    target.username = '';
    target.password = '';
  }
  const response = await fetch(target, {
    method: 'POST',
    headers,
    body,
    redirect: 'manual', // credentials never follow a redirect to another host
    signal: AbortSignal.any([signal, AbortSignal.timeout(NOTIFY_ATTEMPT_TIMEOUT_MS)]),
  });
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status > 299) throw new HttpStatusError(response.status);
  return response.status;
}

export interface NotifyOptions {
  /** POSTs at most, the first included. */
  attempts: number;
  backoff: Backoff;
  /** Aborted when cogd stops: the attempt in flight is dropped, no other is made (it is sent again later). */
  signal: AbortSignal;
  /** Before each wait: why the attempt failed (redacted), which one it was, the delay. */
  onRetry?: (reason: string, attempt: number, delayMs: number) => void;
}

/** How a notification ended; `interrupted` when cogd stopped it (it is then still to send). */
export interface NotifyResult {
  ok: boolean;
  /** `HTTP 204 after 1 attempt`, `gave up after 5 attempts: HTTP 503`; never the URL. */
  result: string;
  attempts: number;
  interrupted: boolean;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** POSTs the facts, retried with back-off; never throws. */
export async function notify(url: string, facts: RunFacts, options: NotifyOptions): Promise<NotifyResult> {
  const body = JSON.stringify(notifyBody(facts));
  let attempts = 0;
  try {
    const status = await retry(
      async (attempt) => {
        attempts = attempt;
        return postOnce(url, body, options.signal);
      },
      {
        attempts: options.attempts,
        backoff: options.backoff,
        retryable: (error) => retryable(error) && !options.signal.aborted,
        onRetry: (error, attempt, delayMs) => options.onRetry?.(notifyReason(error, url), attempt, delayMs),
        signal: options.signal,
      },
    );
    return { ok: true, result: `HTTP ${status} after ${plural(attempts, 'attempt')}`, attempts, interrupted: false };
  } catch (error) {
    const reason = notifyReason(error, url);
    if (options.signal.aborted)
      return { ok: false, result: `stopped by cogd after ${plural(attempts, 'attempt')}`, attempts, interrupted: true };
    return {
      ok: false,
      result: retryable(error)
        ? `gave up after ${plural(attempts, 'attempt')}: ${reason}`
        : `refused: ${reason} (not retried)`,
      attempts,
      interrupted: false,
    };
  }
}
