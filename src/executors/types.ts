/** What an executor is asked to do: convert one image, once. Retries are the scheduler's business. */
import type { Log, StepFiles } from '../log/index.js';
import type { Storage } from '../storage/s3.js';
import type { JobClock } from '../util/clock.js';

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

/** Why the scheduler aborts a job's attempt (the signal's reason). */
export class Shutdown extends Error {
  constructor() {
    super('interrupted by shutdown');
  }
}

export class Removal extends Error {
  constructor() {
    super('removed by user');
  }
}

export interface Executor {
  readonly name: string;
  /**
   * Converts one image; resolves when both outputs are uploaded and verified, rejects with the
   * reason otherwise. On abort: a `Shutdown` leaves work that lives outside this process (an
   * HTCondor job) where it is; anything else stops the work.
   */
  run(job: JobSpec, signal: AbortSignal): Promise<void>;
  /**
   * Whether the job's current attempt lives on outside this process (queued in HTCondor): the next
   * `run` re-attaches to it instead of starting a new attempt.
   */
  detached?(jobId: number): boolean;
  /** Stops the detached work of jobs that will not `run` here again (removed by the user). */
  cancel?(jobIds: number[]): Promise<void>;
  close(): Promise<void>;
}
