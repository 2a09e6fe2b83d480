/** What an executor is asked to do: convert one image, once. Retries are the scheduler's business. */
import type { Log, StepFiles } from '../log/index.js';
import type { Storage } from '../storage/s3.js';
import type { JobClock } from './clock.js';

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

export interface Executor {
  readonly name: string;
  /** Converts one image; resolves when both outputs are uploaded and verified, rejects with the reason otherwise. */
  run(job: JobSpec, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
