/** What an executor is asked to do: convert one image, once. Retries are the scheduler's business. */
import type { Log, StepFiles } from '../log/index.js';
import type { Storage } from '../storage/s3.js';
import type { JobClock } from '../util/clock.js';
import type { ConversionSettings } from '../types.js';

export interface JobSpec {
  jobId: number;
  runId: number;
  /** Key of the input image, in the input bucket. */
  imageKey: string;
  /** Band count the manifest declares (the file's own count decides). */
  declaredBands: number;
  inputBucket: string;
  outputBucket: string;
  /** Key of the COG in the output bucket. */
  cogKey: string;
  /** Key of the JPEG preview in the output bucket. */
  previewKey: string;
  /** How the run's watch converts images: profile, creation options, preview. */
  conversion: ConversionSettings;
  /** The S3 client of the run's endpoint. */
  storage: Storage;
  /** Called once the executor really starts the job (until then it waits for a slot: idle). */
  started: () => void;
  /** The job's deadline: executors run their work inside `clock.ticking()`. */
  clock: JobClock;
  /** `<name>.log/.out/.err` of this image. */
  files: StepFiles;
  log: Log;
}

/** What a converted job leaves for its run's post step. */
export interface JobOutput {
  /** Its STAC item, where the watch writes them: what the collection needs of it. */
  item?: ItemSummary;
}

/** A STAC item as the collection sees it. */
export interface ItemSummary {
  /** The item's key in the output bucket. */
  key: string;
  /** Its bbox in EPSG:4326; null for an image without georeferencing. */
  bbox: number[] | null;
  /** Its datetime (ISO 8601). */
  datetime: string;
}

/** Why the scheduler aborts a job's attempt (the signal's reason). */
export class Shutdown extends Error {
  constructor() {
    super('interrupted by shutdown');
  }
}

/** A job stopped by `cogd hold --now`: requeued, its attempt given back. */
export class HoldNow extends Error {
  constructor() {
    super('stopped by a hold');
  }
}

export class Removal extends Error {
  constructor() {
    super('removed by user');
  }
}

/**
 * The executor seam: all the scheduler (`src/dag/scheduler.ts`) and the daemon know of an engine
 * that converts images. An engine lives in one place — `src/executors/<engine>.ts`, or a folder
 * `src/executors/<engine>/` for an engine that hands work to an outside queue (HTCondor,
 * Slurm) — and the daemon picks one per run (`Daemon.executorFor`). Adding an engine changes
 * no scheduler code; its bookkeeping goes in state DB columns of its own (see the last paragraph).
 *
 * One call of `run` is one attempt of one job. Every engine implements the same lifecycle:
 *
 *   submit     `run(job, signal)` hands the job over: the local engine starts at once (within its
 *              limits); a batch engine queues the row for its next submission (`SubmitQueue`).
 *   follow     the same `run` learns the attempt's progress — `job.started()` when it really
 *              runs — and its outcome, and settles with it.
 *   verify     `run` resolves only once both outputs are in S3 and checked (`verifyOutputs` where
 *              someone else uploaded them). A resolved `run` is what records the job `converted`.
 *   cancel     aborting `run`'s signal stops a followed job; `cancel(jobIds)` stops the detached
 *              work of removed jobs that no `run` follows.
 *   re-attach  `detached(jobId)` says the attempt lives on outside this process. After a restart
 *              the scheduler calls `run` for it again (first, and not counted as a new attempt),
 *              and `run` follows the existing attempt from the saved state instead of submitting.
 *
 * State goes into the state DB (`StateDB`) before anything depends on it:
 *   - before the outside tool is called, what it will be asked (a batch and which job is which
 *     row), so a crash in between is recognised from the tool's own records, never submitted twice;
 *   - the tool's answer (a cluster, a job id) as soon as it comes;
 *   - progress read from the engine (events, a log offset, the attempt's outcome) in one
 *     transaction with the position it was read up to, so a restart resumes exactly there.
 * The scheduler owns the job row (state, attempts, error, retry times); an engine writes only its
 * own columns and, while it holds a job, the progress states idle/running/held (never over a final
 * state). Ending an attempt (`setJobState(..., { endAttempt: true })`) must forget the engine's
 * submission in the same write, so `detached` turns false with it, and `requeueRunning` must leave
 * detached jobs `running`: both name the engine's columns (HTCondor's `condor_*`, Slurm's `slurm_*`).
 */
export interface Executor {
  /** `local`, `condor`, …: the watch setting that picks the engine. */
  readonly name: string;
  /**
   * Attempts the engine works on at once, all runs together; the scheduler hands it no more (jobs
   * beyond stay waiting in the DB, not parked in memory), whatever -m says. Engines that queue
   * elsewhere (HTCondor, Slurm) leave it out: -m alone limits them.
   */
  readonly capacity?: number;
  /**
   * Runs one attempt of a job: resolves when both outputs are uploaded and verified, rejects with
   * the reason otherwise — a `PermanentError` for what no retry can fix (the job fails at once),
   * anything else to be retried as a new attempt. Retries are never the engine's: one call, one
   * attempt (what a queue does within an attempt, like HTCondor releasing a held job, is fine).
   *
   * Calls `job.started()` when the work really starts (possibly again, after an eviction); until
   * then the job shows idle. Works inside `job.clock.ticking()` where it spends the job's time.
   *
   * If `detached(job.jobId)` is true when called, it must not submit again: it follows the existing
   * attempt, and settles at once if that attempt's outcome was recorded while nobody followed.
   *
   * On abort (the signal's reason):
   *   - `Shutdown`: stop following, but leave detached work where it is, with its state in the DB:
   *     `detached` stays true and the next start re-attaches. Work that lives in this process stops.
   *   - `Removal`, a job timeout, anything else: stop the work, detached work included (the
   *     engine's remove command), then reject.
   */
  run(job: JobSpec, signal: AbortSignal): Promise<JobOutput | undefined>;
  /**
   * Whether the job's current attempt lives on outside this process (queued in HTCondor or Slurm): decided
   * from the state DB alone — synchronous and cheap, as the scheduler asks often, and the same
   * after a restart. True from the moment the outside tool confirmed the submission until the
   * scheduler ends the attempt. Engines without outside work leave it out.
   */
  detached?(jobId: number): boolean;
  /**
   * Stops the detached work of jobs that will not `run` here again (removed by the user while no
   * `run` follows them). Idempotent: ids without detached work, or whose work already ended, are
   * passed over. Leaves the job rows to the caller (which records `removed`) and never rejects —
   * callers do not wait for it; a failing remove command is logged.
   */
  cancel?(jobIds: number[]): Promise<void>;
  /**
   * Stops timers and waits for submissions in progress, so what they did is recorded; leaves
   * detached work in place for the next start. Idempotent.
   */
  close(): Promise<void>;
}
