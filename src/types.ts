/**
 * Terminology (see DESIGN.md):
 *
 * - watch: a standing order — poll input bucket B on schedule S for keys matching glob P.
 *   HTCondor analogue: the crondor job `COG-Pipeline-Crondor-<pattern>`.
 * - manifest: a CSV in the input bucket listing images, one row each: `key/of/image.tif,<NUM_BANDS>`.
 * - row: one line of a manifest, kept verbatim so result CSVs can be renamed back to `*raw.csv`.
 * - run: one claimed manifest and everything done for it (HTCondor: the DAG `COG-Pipeline-DAG-<pattern>`).
 * - job: the conversion of one image, i.e. one valid row (HTCondor: one DAG node / proc).
 * - post: the final step of a run — reconcile outputs, write the result CSVs, delete the processing file.
 * - home: the working directory of a cogd installation — state DB, `logs/`, pid file.
 * - executor: what runs jobs — `local` (a process pool on this machine), `condor` or `slurm`.
 */

/** Where a run is in its life. Only `done` is final. */
export type RunState = 'claiming' | 'running' | 'post' | 'done';

/**
 * Where a claim is. Each step is recorded before the next starts, so a restart resumes the claim.
 * claimed → downloaded → copied (processing object exists) → raw-deleted (claim complete).
 */
export type ClaimStep = 'claimed' | 'downloaded' | 'copied' | 'raw-deleted';

/**
 * Where a job is.
 * - idle: planned, waiting for a slot (or for its retry back-off)
 * - running: in the executor (HTCondor: executing on an execute node)
 * - held: HTCondor held it (the reason is the job's error); released, it is idle again
 * - converted: both outputs uploaded and verified
 * - failed: gave up (permanent error, retries exhausted, or rejected row)
 * - removed: removed by the user
 */
export type JobState = 'idle' | 'running' | 'held' | 'converted' | 'failed' | 'removed';

/** States of a job that is not finished. */
export const LIVE_JOB_STATES: ReadonlySet<JobState> = new Set(['idle', 'running', 'held']);

export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['converted', 'failed', 'removed']);

/** The executors cogd knows. */
export type ExecutorName = 'local' | 'condor' | 'slurm';

/** Connection settings of the S3 endpoint. Secrets are read from files, never stored here. */
export interface S3Settings {
  /** Full endpoint URL (`https://host` for a bare host), or undefined for AWS itself. */
  endpoint?: string | undefined;
  /** Path of a file holding the access key id (`-a`). */
  accessKeyFile?: string | undefined;
  /** Path of a file holding the secret access key (`-s`). */
  secretKeyFile?: string | undefined;
  /** @defaultValue `AWS_REGION`, else `us-east-1` */
  region: string;
}

/** A watch as stored in the state DB. */
export interface Watch {
  id: number;
  pattern: string;
  inputBucket: string;
  outputBucket: string;
  schedule: string;
  s3: S3Settings;
  /** Where its jobs run. */
  executor: ExecutorName;
  createdAt: string;
  removedAt: string | null;
  /** Whether the endpoint enforces conditional writes (safe claims across daemons); null: not probed. */
  conditionalWrites: boolean | null;
  /** Something the user should know (a key file readable by others); shown by `cogd status`. */
  warning: string | null;
  /** Jobs of this watch in flight at most (`-m`). */
  maxRunning: number;
  /** Retries of a failed job after its first attempt. */
  retries: number;
  /** First retry delay; doubles each retry. */
  retryDelayMs: number;
  /** How its images are converted. */
  conversion: ConversionSettings;
  /** The user's hold (`cogd hold w3`): no polls while set. */
  hold: { reason: string; since: string; by: string; now: boolean } | null;
  /** What is done once one of its runs has ended. */
  runEnd: RunEndSettings;
}

/** What names a watch: a second `cogd start` with the same identity changes that watch's settings. */
export interface WatchIdentity {
  pattern: string;
  inputBucket: string;
  outputBucket: string;
  /** The endpoint URL; undefined for AWS. */
  endpoint: string | undefined;
}

/** How a watch's images are converted: the COG profile and the preview. */
export type ProfileName = 'lzw' | 'deflate' | 'zstd' | 'webp' | 'jpeg' | 'lerc' | 'auto';

export interface ConversionSettings {
  /** The COG profile (`--profile`). */
  profile: ProfileName;
  /** Further COG creation options, `KEY=VALUE` as given (`--co`). */
  creationOptions: string[];
  /** Overview resampling; undefined: by content (nearest for palettes, average otherwise). */
  overviewResampling: string | undefined;
  /** LERC's maximum error per pixel; 0 is lossless. */
  maxZError: number;
  /** What masked pixels (nodata, alpha 0, mask) look like in previews: white, black, #rrggbb or r,g,b. */
  previewBackground: string;
  /** The longest side of a preview, at most; undefined: full size (within JPEG's 65,500). */
  previewMaxSize: number | undefined;
  /** Whether a STAC item is written beside each COG, and the collection kept. */
  stac: boolean;
  /** What replaces the COG's extension in its item's key: `x.tif` → `x.json`. */
  stacItemSuffix: string;
  /** The key of the collection in the output bucket. */
  stacCollection: string;
  /** Manifest rows one cluster job (HTCondor proc, Slurm task) converts in sequence (`--rows-per-job`). */
  rowsPerJob: number;
}

/**
 * What a watch does once one of its runs has ended (its post step done, the run final). Read from
 * the watch when the run ends: a change applies to its runs still in progress.
 */
export interface RunEndSettings {
  /** A program and its arguments, run without a shell (`--on-run-end`); empty: none. */
  onRunEnd: string[];
  /** Where the run's facts are POSTed as JSON (`--notify-url`), as given; null: nowhere. Never printed unredacted. */
  notifyUrl: string | null;
}

/** A watch's own settings, stored with it. */
export interface WatchSettings extends ConversionSettings, RunEndSettings {
  accessKeyFile: string | undefined;
  secretKeyFile: string | undefined;
  region: string;
  schedule: string;
  maxRunning: number;
  retries: number;
  retryDelayMs: number;
  executor: ExecutorName;
}
