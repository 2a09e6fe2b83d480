/**
 * What a job event means for a job, as data: no I/O here. `record.ts` looks the job up in the
 * state DB, calls `applyEvent`, and writes what it returns together with the log offset; the
 * executor settles `run` calls from the recorded outcome with `outcomeOf`.
 *
 *   000 submit             → (a log line only)
 *   001 execute            → running (the job counts as started)
 *   004 evicted, 007 shadow exception → idle (HTCondor runs it again)
 *   012 held               → held, the reason and hold code become the job's error
 *   013 released           → idle
 *   005 terminated         → outcome `ok` (return value 0), `exit N`, or killed by a signal
 *   009 aborted            → outcome "HTCondor aborted the job: …", or — after holds, by
 *                            periodic_remove — "removed after repeated holds; last held: …"
 *
 * Events of a job whose outcome is already recorded (another attempt's job, a duplicate read)
 * change nothing.
 */
import { JobEventCode, type JobEvent } from './eventlog.js';

export { JobEventCode };

/** The start of the outcome of a job HTCondor removed after `--max-holds` holds: never retried. */
export const REMOVED_AFTER_HOLDS = 'HTCondor removed the job after repeated holds';

/** The worker's exit code for an input it can never convert (not a TIFF, unpreviewable type). */
export const WORKER_PERMANENT_EXIT = 2;

/** What `applyEvent` needs to know of the job an event names (from the state DB). */
export interface JobView {
  jobId: number;
  /** The attempt's recorded outcome (`condor_result`); null while HTCondor has the job. */
  result: string | null;
  /** The job's error as recorded: `held: …` after a hold (kept through release and re-run). */
  error: string | null;
}

export type Progress = 'idle' | 'running' | 'held';

/** The changes one event makes, for the caller to write and act on. */
export interface EventEffect {
  jobId: number;
  /** The job's new progress state; `error` is set only by a hold (else the recorded one stays). */
  progress?: { state: Progress; error?: string };
  /** The attempt's outcome: `ok` or why it failed. Recorded, then the job's `run` is settled. */
  result?: string;
  /** A line for the job's own log, `HTCondor C.P: …`. */
  note: string;
  /** An execute event: the job counts as started if still running once its chunk is applied. */
  started: boolean;
}

/**
 * The batch a submit event belongs to, from its `submit_event_notes` (`cogd run R batch N`), if it
 * is one of run `runId`'s: how a batch whose condor_submit answer was lost (a crash) finds its
 * cluster.
 */
export function submitNoteBatch(event: JobEvent, runId: number): number | undefined {
  if (event.code !== JobEventCode.Submit) return undefined;
  const note = event.body.map((line) => /^cogd run (\d+) batch (\d+)$/.exec(line)).find((m) => m != null);
  return note != null && Number(note[1]) === runId ? Number(note[2]) : undefined;
}

/** What `event` changes for `job`; undefined when nothing (an ended attempt, an event cogd passes over). */
export function applyEvent(job: JobView, event: JobEvent): EventEffect | undefined {
  if (job.result !== null) return undefined;
  const effect = (note: string, changes: Partial<EventEffect> = {}): EventEffect => ({
    jobId: job.jobId,
    note: `HTCondor ${event.cluster}.${event.proc}: ${note}`,
    started: false,
    ...changes,
  });
  switch (event.code) {
    case JobEventCode.Submit:
      return effect('submitted');
    case JobEventCode.Execute:
      return effect(event.description, { progress: { state: 'running' }, started: true });
    case JobEventCode.Evicted:
    case JobEventCode.ShadowException:
      return effect(`${event.description} ${event.reason ?? ''}`.trim(), { progress: { state: 'idle' } });
    case JobEventCode.Held: {
      const code = event.holdCode === undefined ? '' : ` (hold code ${event.holdCode}/${event.holdSubcode ?? 0})`;
      const reason = `held: ${event.reason ?? 'no reason given'}${code}`;
      return effect(reason, { progress: { state: 'held', error: reason } });
    }
    case JobEventCode.Released: {
      const why = event.reason === undefined || event.reason === event.description ? '' : `: ${event.reason}`;
      return effect(`released${why}`, { progress: { state: 'idle' } });
    }
    case JobEventCode.Terminated: {
      const t = event.termination;
      const result =
        t === undefined
          ? 'the job terminated without a return value in the event log'
          : t.normal
            ? t.returnValue === 0
              ? 'ok'
              : `exit ${t.returnValue}`
            : `the worker was killed by signal ${t.signal}`;
      return effect(t?.normal === true ? `terminated, return value ${t.returnValue}` : `terminated: ${result}`, {
        result,
      });
    }
    case JobEventCode.Aborted: {
      const lastHold = job.error?.startsWith('held: ') === true ? job.error : null;
      const why = event.reason ?? event.description;
      // periodic_remove after holds: HTCondor already retried it (periodic_release), cogd does not.
      const result =
        lastHold !== null && /PeriodicRemove/.test(why)
          ? `${REMOVED_AFTER_HOLDS}; last ${lastHold}`
          : `HTCondor aborted the job: ${why}`;
      return effect(`aborted: ${why}`, { result });
    }
    default:
      return undefined;
  }
}

/** What a recorded outcome means for the attempt. */
export type Outcome =
  | { ok: true }
  /** The worker exited non-zero: the reason is in its `.err` (HTCondor brings it back). */
  | { ok: false; exitCode: number; permanent: boolean }
  | { ok: false; exitCode: undefined; permanent: boolean; reason: string };

/** Reads back a recorded outcome: ok, the worker's exit code, or a failure (permanent or not). */
export function outcomeOf(result: string): Outcome {
  if (result === 'ok') return { ok: true };
  const exit = /^exit (\d+)$/.exec(result);
  if (exit !== null)
    return { ok: false, exitCode: Number(exit[1]), permanent: Number(exit[1]) === WORKER_PERMANENT_EXIT };
  return { ok: false, exitCode: undefined, permanent: result.startsWith(REMOVED_AFTER_HOLDS), reason: result };
}
