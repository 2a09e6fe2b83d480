/**
 * What Slurm's report of a task means for its job, as data: no I/O here. The executor polls Slurm
 * (one squeue or sacct per interval for every array it follows), reads the exit records of tasks
 * that ended, calls `applyStatus` per task, and writes what it returns in one transaction.
 *
 *   PENDING (and the other waiting states)  → idle, or held for JobHeldUser/JobHeldAdmin; the
 *                                             pending reason is kept for `cogd status`
 *   RUNNING (COMPLETING, SUSPENDED…)        → running (the job counts as started)
 *   COMPLETED + an exit record `ok`         → ok (the executor then checks both outputs by HEAD)
 *   COMPLETED without an exit record        → waits a grace period (a shared filesystem may show it
 *                                             late), then failed
 *   FAILED                                  → failed with the exit record's reason (permanent where
 *                                             the record says so), else Slurm's exit code and reason
 *   TIMEOUT, DEADLINE                       → timed out (permanent unless --retry-timeouts)
 *   OUT_OF_MEMORY                           → submitted again once with twice the memory, then failed
 *   NODE_FAIL, PREEMPTED, BOOT_FAIL         → submitted again without spending a retry (at most
 *                                             MAX_REQUEUES times per attempt)
 *   CANCELLED, not by cogd                  → failed "cancelled outside cogd" (permanent); by cogd
 *                                             (a removal, a deadline): what aborted the job decides
 *   not known to Slurm (purged, or not yet  → decided by its exit record; without one, unknown for
 *   in sacct)                                 a grace period, then failed — "cancelled outside cogd"
 *                                             where it waited and the rest of its array is still
 *                                             listed (a pending task cancelled alone leaves no trace)
 */
import type { ExitRecord } from './exit-record.js';
import { ACTIVE_STATES, PENDING_STATES, type TaskStatus } from './tools.js';

/** Requeues of one attempt after node failures and preemptions before it fails. */
export const MAX_REQUEUES = 5;

/** What `applyStatus` needs to know of the job a task is (from the state DB). */
export interface TaskView {
  jobId: number;
  arrayId: number;
  task: number;
  state: 'idle' | 'running' | 'held' | 'converted' | 'failed' | 'removed';
  note: string | null;
  requeues: number;
  /** Memory asked for after an OUT_OF_MEMORY; null: the home's --mem. */
  mem: string | null;
}

export interface StatusContext {
  /** How long the task has been without a decisive report (unknown, or COMPLETED without a record). */
  unknownForMs: number;
  graceMs: number;
  /** The home's --mem (undefined: the cluster's default). */
  mem: string | undefined;
  /** --job-timeout in minutes, as the task's --time. */
  timeMinutes: number;
  /** cogd itself cancelled this task (a removal, a shutdown of a removed job): not an outside cancel. */
  cancelledByCogd: boolean;
  /**
   * Slurm still lists other tasks of the task's array: a task missing from a listed array was taken
   * out of the queue (a pending task cancelled alone leaves no record in squeue, scontrol or jobcomp).
   */
  arrayKnown: boolean;
}

export type StatusEffect =
  /** Nothing new. */
  | { kind: 'none' }
  /** No decisive report yet: the executor counts the time (`unknownForMs`). */
  | { kind: 'unknown' }
  | { kind: 'progress'; state: 'idle' | 'running' | 'held'; note: string | null; error?: string; log: string }
  /** The attempt ended: `result` is recorded, then the job's `run` settles (see `outcomeOf`). */
  | { kind: 'result'; result: string; log: string }
  /** Submitted again within the same attempt (with `mem`, when more memory is asked). */
  | { kind: 'requeue'; mem?: string; log: string };

const HELD = /^JobHeld(User|Admin)$/;

/** `A_T` */
const named = (t: TaskView): string => `${t.arrayId}_${t.task}`;

function exitText(status: TaskStatus): string {
  const code =
    status.exitCode === undefined
      ? ''
      : status.signal !== undefined && status.signal !== 0
        ? `signal ${status.signal}`
        : `exit code ${status.exitCode}`;
  return [code, status.reason].filter((s) => s !== undefined && s !== '').join(', ');
}

/** A Slurm memory size (`2G`, `512M`, `2048`: megabytes) doubled, in megabytes; undefined for 0 or nonsense. */
export function doubleMemory(mem: string | undefined): string | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)B?$/i.exec((mem ?? '').trim());
  if (m === null) return undefined;
  const factor = { '': 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[
    m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ];
  const mb = Math.ceil(Number(m[1]) * factor);
  return mb > 0 ? `${mb * 2}M` : undefined;
}

/** What the exit record says, as a result. */
function fromRecord(record: ExitRecord): string {
  if (record.outcome === 'ok') return 'ok';
  const reason = record.reason ?? 'the task failed without saying why';
  return `${record.permanent === true ? 'permanent' : 'failed'}: ${reason}`;
}

/** What `status` (undefined: Slurm does not know the task) and the task's exit record mean for the job. */
export function applyStatus(
  view: TaskView,
  status: TaskStatus | undefined,
  record: ExitRecord | undefined,
  context: StatusContext,
): StatusEffect {
  if (view.state !== 'idle' && view.state !== 'running' && view.state !== 'held') return { kind: 'none' };
  const task = named(view);
  if (status === undefined) {
    if (record !== undefined)
      return {
        kind: 'result',
        result: fromRecord(record),
        log: `Slurm ${task}: no longer listed; its exit record says ${record.outcome}`,
      };
    if (context.unknownForMs < context.graceMs) return { kind: 'unknown' };
    if (context.arrayKnown && !context.cancelledByCogd && view.state !== 'running') {
      return {
        kind: 'result',
        result: `permanent: cancelled outside cogd while it waited: Slurm lists the array ${view.arrayId} without its task ${task}`,
        log: `Slurm ${task}: gone from its array while waiting, no exit record`,
      };
    }
    return {
      kind: 'result',
      result: `failed: Slurm no longer knows the task ${task} and it left no exit record`,
      log: `Slurm ${task}: unknown to Slurm for ${Math.round(context.unknownForMs / 1000)} s, no exit record`,
    };
  }
  const state = status.state;
  if (PENDING_STATES.has(state)) {
    const held = HELD.test(status.reason ?? '') || state === 'REQUEUE_HOLD';
    const note = status.reason ?? null;
    const next = held ? 'held' : 'idle';
    if (view.state === next && view.note === note) return { kind: 'none' };
    return {
      kind: 'progress',
      state: next,
      note,
      ...(held ? { error: `held: ${status.reason ?? state}` } : {}),
      log: `Slurm ${task}: ${state}${note === null ? '' : ` (${note})`}`,
    };
  }
  if (ACTIVE_STATES.has(state)) {
    if (view.state === 'running') return { kind: 'none' };
    return { kind: 'progress', state: 'running', note: null, log: `Slurm ${task}: ${state} (job ${status.jobId})` };
  }
  switch (state) {
    case 'COMPLETED':
      if (record !== undefined) return { kind: 'result', result: fromRecord(record), log: `Slurm ${task}: COMPLETED` };
      if (context.unknownForMs < context.graceMs) return { kind: 'unknown' };
      return {
        kind: 'result',
        result: `failed: the Slurm task ${task} completed but its exit record never appeared (is the run directory on a filesystem the nodes share?)`,
        log: `Slurm ${task}: COMPLETED without an exit record`,
      };
    case 'FAILED':
      if (record !== undefined)
        return { kind: 'result', result: fromRecord(record), log: `Slurm ${task}: FAILED (${exitText(status)})` };
      return {
        kind: 'result',
        result: `failed: the Slurm task ${task} failed (${exitText(status) || 'no exit code'}) before writing its exit record; see its .err`,
        log: `Slurm ${task}: FAILED (${exitText(status)}), no exit record`,
      };
    case 'TIMEOUT':
    case 'DEADLINE':
      return {
        kind: 'result',
        result: `timeout: timed out: the Slurm task ${task} reached its time limit (--time=${context.timeMinutes} min, from --job-timeout)`,
        log: `Slurm ${task}: ${state}`,
      };
    case 'OUT_OF_MEMORY': {
      const asked = view.mem ?? context.mem;
      const more = view.mem === null ? doubleMemory(context.mem) : undefined;
      if (more !== undefined)
        return {
          kind: 'requeue',
          mem: more,
          log: `Slurm ${task}: OUT_OF_MEMORY with --mem=${asked ?? 'default'}; submitted again with --mem=${more}`,
        };
      return {
        kind: 'result',
        result: `permanent: the Slurm task ${task} ran out of memory (--mem=${asked ?? "the cluster's default"}${view.mem === null ? '' : ', after a retry with twice the memory'})`,
        log: `Slurm ${task}: OUT_OF_MEMORY`,
      };
    }
    case 'NODE_FAIL':
    case 'PREEMPTED':
    case 'BOOT_FAIL':
      if (view.requeues < MAX_REQUEUES)
        return {
          kind: 'requeue',
          log: `Slurm ${task}: ${state}${status.reason === undefined ? '' : ` (${status.reason})`}; submitted again (not the job's fault: no retry spent)`,
        };
      return {
        kind: 'result',
        result: `failed: the Slurm task ${task} ended with ${state} again after ${view.requeues} requeues`,
        log: `Slurm ${task}: ${state}, requeued ${view.requeues} times already`,
      };
    case 'CANCELLED':
      // cogd's own scancel (a removal, a deadline): the aborted `run` has settled the job already;
      // recorded all the same, so a job that is somehow followed again does not wait for ever.
      if (context.cancelledByCogd)
        return {
          kind: 'result',
          result: `failed: cancelled by cogd: the Slurm task ${task}`,
          log: `Slurm ${task}: CANCELLED by cogd`,
        };
      return {
        kind: 'result',
        result: `permanent: cancelled outside cogd${status.cancelledBy === undefined ? '' : ` (by uid ${status.cancelledBy})`}: the Slurm task ${task}`,
        log: `Slurm ${task}: CANCELLED${status.cancelledBy === undefined ? '' : ` by ${status.cancelledBy}`}, not by cogd`,
      };
    default:
      return {
        kind: 'result',
        result: `failed: Slurm ended the task ${task} as ${state}${exitText(status) === '' ? '' : ` (${exitText(status)})`}`,
        log: `Slurm ${task}: ${state}`,
      };
  }
}

/** What a recorded result means for the attempt. */
export type Outcome = { ok: true } | { ok: false; permanent: boolean; timeout: boolean; reason: string };

/** Reads back a recorded result; a timeout is permanent unless `retryTimeouts`. */
export function outcomeOf(result: string, retryTimeouts: boolean): Outcome {
  if (result === 'ok') return { ok: true };
  const m = /^(failed|permanent|timeout): ([\s\S]*)$/.exec(result);
  if (m === null) return { ok: false, permanent: false, timeout: false, reason: result };
  const kind = m[1]!;
  return {
    ok: false,
    permanent: kind === 'permanent' || (kind === 'timeout' && !retryTimeouts),
    timeout: kind === 'timeout',
    reason: m[2]!,
  };
}
