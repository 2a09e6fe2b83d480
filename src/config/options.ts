/**
 * Every option of every command, in one table: its flag, how its value is read and checked, its
 * default, its scope and a one-line doc. The command line, the typed settings, what `cogd config`
 * shows and the README's flag table are all made from it.
 *
 * Scopes:
 * - identity: names a watch (pattern, buckets, endpoint);
 * - watch: stored with the watch, honoured per watch; a later `start` changes only what it gives;
 * - home: stored in the home, read by the daemon from there; a change takes effect at its next start;
 * - command: this invocation only (where the home is, what to print, how long to wait).
 */
import os from 'node:os';
import { checkCreationOption } from '../convert/cog-options.js';
import type { ProfileName } from '../types.js';
import { shownUrl } from '../util/url.js';
import * as parse from './parse.js';
import type { Parser } from './parse.js';

export type Scope = 'identity' | 'watch' | 'home' | 'command';

export type Verb =
  | 'poll'
  | 'start'
  | 'status'
  | 'watch'
  | 'rm'
  | 'hold'
  | 'release'
  | 'retry'
  | 'stop'
  | 'logs'
  | 'config'
  | 'verify'
  | 'plan'
  | 'daemon';

/** What a default may depend on: the home, and the values settled before it in the table. */
export interface DefaultContext {
  home: string;
  values: Readonly<Record<string, unknown>>;
}

export interface OptionSpec<T = unknown, S extends Scope = Scope> {
  /** As commander reads it: `-m, --max-running <n>`. */
  flags: string;
  /** One line for `--help` and the README. */
  doc: string;
  scope: S;
  verbs: readonly Verb[];
  parse: Parser<T>;
  /** Undefined: the option has no value unless given. */
  default?: T | ((context: DefaultContext) => T);
  /** The default as people read it, where it is computed. */
  defaultText?: string;
  /** The allowed values, listed by `--help`. */
  choices?: readonly string[];
  /** A `--no-…` form sets it back to false. */
  negatable?: boolean;
  /** For a flag whose value is optional (`--http [addr:port]`): the value it takes when given bare. */
  bare?: string;
  /** The flag may be given several times; its values are collected (parse reads a JSON list). */
  repeatable?: boolean;
  /** How a value is shown (milliseconds as seconds…). @defaultValue String */
  show?: (value: T) => string;
}

const PROFILE_NAMES: readonly ProfileName[] = ['lzw', 'deflate', 'zstd', 'webp', 'jpeg', 'lerc', 'auto'];
const RESAMPLING = [
  'nearest',
  'mode',
  'average',
  'bilinear',
  'cubic',
  'cubicspline',
  'lanczos',
  'rms',
  'gauss',
] as const;

const define = <T, S extends Scope>(spec: OptionSpec<T, S>): OptionSpec<T, S> => spec;

const RUN: readonly Verb[] = ['poll', 'start'];
/** What `cogd plan FILE.csv` also takes: where the images are, and how outputs are named. */
const RUN_AND_PLAN: readonly Verb[] = [...RUN, 'plan'];
const ENGINE: readonly Verb[] = ['poll', 'start'];
/** The limits an image is checked against before any conversion: `cogd plan` checks them too. */
const LIMITS: readonly Verb[] = [...ENGINE, 'plan'];
const EVERY: readonly Verb[] = [
  'poll',
  'start',
  'status',
  'watch',
  'rm',
  'hold',
  'release',
  'retry',
  'stop',
  'logs',
  'config',
  'verify',
  'plan',
  'daemon',
];
const asSeconds = (ms: number): string => `${ms / 1000} s`;
/** A program and its arguments as typed (quoted where needed); `none` for no command. */
const showCommand = (argv: readonly string[]): string =>
  argv.length === 0
    ? 'none'
    : argv.map((word) => (/^[\w./:=+,@%-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)).join(' ');

export const OPTIONS = {
  // ---- the watch: what names it
  pattern: define({
    flags: '-p, --pattern <glob>',
    scope: 'identity',
    verbs: RUN,
    parse: parse.pattern,
    doc: 'manifest keys to claim; without "/" it matches the base name in any folder ("*raw.csv" matches a/b/x-raw.csv), with "/" the whole key. Only its literal prefix is listed',
  }),
  inputBucket: define({
    flags: '--input-bucket <name>',
    scope: 'identity',
    verbs: RUN_AND_PLAN,
    parse: parse.bucket,
    doc: 'bucket holding the manifests and the input GeoTIFFs',
  }),
  outputBucket: define({
    flags: '--output-bucket <name>',
    scope: 'identity',
    verbs: RUN_AND_PLAN,
    parse: parse.bucket,
    doc: 'bucket receiving the COGs and JPEG previews (never the input bucket)',
  }),
  s3Endpoint: define({
    flags: '-e, --s3-endpoint <host|url>',
    scope: 'identity',
    verbs: RUN_AND_PLAN,
    parse: parse.endpoint,
    defaultText: 'AWS',
    doc: 'S3 endpoint; a bare host means https, a URL is used as given (path-style addressing)',
  }),

  // ---- the watch: its own settings
  accessKeyFile: define({
    flags: '-a, --access-key <file>',
    scope: 'watch',
    verbs: RUN_AND_PLAN,
    parse: parse.file,
    defaultText: 'the AWS environment',
    doc: 'file holding the S3 access key id (trimmed); without -a/-s the AWS environment variables and profiles apply',
  }),
  secretKeyFile: define({
    flags: '-s, --secret-key <file>',
    scope: 'watch',
    verbs: RUN_AND_PLAN,
    parse: parse.file,
    defaultText: 'the AWS environment',
    doc: 'file holding the S3 secret access key',
  }),
  maxRunning: define({
    flags: '-m, --max-running <n>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.integer(1),
    default: 10000,
    doc: 'jobs of this watch in flight at most',
  }),
  retries: define({
    flags: '--retries <n>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.integer(0),
    default: 3,
    doc: 'retries of a failed job after its first attempt',
  }),
  retryDelayMs: define({
    flags: '--retry-delay <seconds>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.seconds(),
    default: 10_000,
    show: asSeconds,
    doc: 'delay before the first retry; doubles each retry, ±20% jitter',
  }),
  executor: define({
    flags: '--executor <name>',
    scope: 'watch',
    verbs: RUN_AND_PLAN,
    parse: parse.choice(['local', 'condor', 'slurm'] as const),
    choices: ['local', 'condor', 'slurm'],
    default: 'local' as const,
    doc: 'where jobs run: this machine, an HTCondor pool, or a Slurm cluster',
  }),
  schedule: define({
    flags: '--schedule <cron>',
    scope: 'watch',
    verbs: ['start'],
    parse: parse.cron,
    default: '*/15 * * * *',
    show: (cron) => `"${cron}"`,
    doc: 'when to poll: a cron expression (5 fields, or 6 with seconds)',
  }),

  profile: define({
    flags: '--profile <name>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.choice(PROFILE_NAMES),
    choices: PROFILE_NAMES,
    default: PROFILE_NAMES[0]!,
    doc: "COG compression: lzw (the reference tool's), deflate, zstd, webp (lossless), jpeg (RGB Byte, lossy), lerc (float/DEM, --max-z-error), or auto (picked by type)",
  }),
  creationOptions: define({
    flags: '--co <KEY=VALUE>',
    scope: 'watch',
    verbs: RUN,
    repeatable: true,
    default: [] as string[],
    show: (list) => (list.length === 0 ? 'none' : list.join(' ')),
    parse: parse.repeated((raw, flagName) => checkCreationOption(raw, flagName)),
    doc: 'a further COG creation option, checked against the options GDAL lists for its COG driver (repeat for more)',
  }),
  overviewResampling: define({
    flags: '--overview-resampling <method>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.choice(RESAMPLING),
    choices: RESAMPLING,
    defaultText: 'by content',
    doc: 'how overviews are made; by default nearest for paletted and 1-bit bands, average for continuous data',
  }),
  maxZError: define({
    flags: '--max-z-error <value>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.number(0),
    default: 0,
    doc: 'lerc profile: largest error allowed per pixel; 0 is lossless',
  }),
  previewBackground: define({
    flags: '--preview-background <colour>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.colour,
    default: 'white',
    doc: 'how nodata, alpha 0 and masked pixels look in previews (white, black, gray, #rrggbb, r,g,b), so a gap is never mistaken for dark data',
  }),
  previewMaxSize: define({
    flags: '--preview-max-size <pixels>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.integer(16, 65500),
    defaultText: 'full size',
    doc: "the longest side of a preview, at most (images over JPEG's 65,500 pixels a side are always scaled to fit)",
  }),

  stac: define({
    flags: '--stac',
    scope: 'watch',
    verbs: RUN_AND_PLAN,
    parse: parse.flag,
    default: true,
    negatable: true,
    doc: 'write a STAC item beside each COG and keep a STAC collection of them (--no-stac: neither)',
  }),
  stacItemSuffix: define({
    flags: '--stac-item-suffix <suffix>',
    scope: 'watch',
    verbs: RUN_AND_PLAN,
    parse: parse.suffix,
    default: '.json',
    doc: "what replaces a COG's .tif in its STAC item's key (x.tif → x.json)",
  }),
  stacCollection: define({
    flags: '--stac-collection <key>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.objectKey,
    default: 'collection.json',
    doc: 'the key of the STAC collection in the output bucket (watches writing there share it)',
  }),

  // ---- the watch: what happens once one of its runs has ended (src/daemon/run-ends.ts)
  onRunEnd: define({
    flags: '--on-run-end <command>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.command,
    default: [] as string[],
    defaultText: 'none',
    show: showCommand,
    doc: 'a program and its arguments, run after each run\'s post step without a shell (words split at spaces; \'…\' and "…" quote; no | ; > $ unquoted), the run\'s facts in COGD_* variables; "" for none',
  }),
  notifyUrl: define({
    flags: '--notify-url <url>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.httpUrl,
    default: null,
    defaultText: 'none',
    show: (url) => (url === null ? 'none' : shownUrl(url)),
    doc: 'an http(s) URL the run\'s facts are POSTed to as JSON after each run\'s post step, retried with back-off in the background (its credentials and query never shown); "" for none',
  }),

  // ---- the home: the engine on this machine
  cpuConcurrency: define({
    flags: '--cpu-concurrency <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1),
    default: () => os.availableParallelism(),
    defaultText: 'the cores',
    doc: 'GDAL processes at once on this machine',
  }),
  ioConcurrency: define({
    flags: '--io-concurrency <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1),
    default: 8,
    doc: 'S3 transfers at once',
  }),
  jobTimeoutMs: define({
    flags: '--job-timeout <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(1),
    default: 1_800_000,
    show: asSeconds,
    doc: 'a job working longer (queueing excluded) is killed with its process group and failed; HTCondor: allowed_execute_duration; Slurm: --time (whole minutes)',
  }),
  stepTimeoutMs: define({
    flags: '--step-timeout <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(1),
    show: asSeconds,
    defaultText: 'the job timeout',
    default: ({ values }) => values['jobTimeoutMs'] as number,
    doc: 'deadline of one GDAL command',
  }),
  inspectTimeoutMs: define({
    flags: '--inspect-timeout <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(1),
    default: 60_000,
    show: asSeconds,
    doc: 'deadline of the pre-flight gdalinfo',
  }),
  retryTimeouts: define({
    flags: '--retry-timeouts',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.flag,
    default: false,
    negatable: true,
    doc: 'retry jobs that timed out (--no-retry-timeouts: fail them)',
  }),
  maxPixels: define({
    flags: '--max-pixels <n>',
    scope: 'home',
    verbs: LIMITS,
    parse: parse.integer(1),
    default: 2_000_000_000,
    doc: 'inputs with more pixels are rejected before any conversion',
  }),
  maxBands: define({
    flags: '--max-bands <n>',
    scope: 'home',
    verbs: LIMITS,
    parse: parse.integer(1),
    default: 64,
    doc: 'inputs with more bands are rejected before any conversion',
  }),
  scratch: define({
    flags: '--scratch <dir>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.file,
    defaultText: '<home>/scratch',
    default: ({ home }) => `${home}/scratch`,
    doc: 'where jobs download and convert; cogd works in a subdirectory of its own (cogd-ID) and deletes nothing else there',
  }),
  scratchWaitMs: define({
    flags: '--scratch-wait <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(),
    default: 600_000,
    show: asSeconds,
    doc: 'how long a job waits for scratch space before failing',
  }),
  submitTemplate: define({
    flags: '--submit-template <file>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.existingFile('copy submit-templates/cog.sub and point at the copy'),
    defaultText: 'submit-templates/cog.sub',
    doc: 'condor: your copy of the submit description',
  }),
  containerImage: define({
    flags: '--container-image <ref>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.submitValue,
    default: 'docker://ghcr.io/osgeo/gdal:ubuntu-small-latest',
    doc: 'condor: the image the worker runs in (bash + GDAL; pin a version tag in production)',
  }),
  rowsPerJob: define({
    flags: '--rows-per-job <n>',
    scope: 'watch',
    verbs: RUN,
    parse: parse.integer(1, 1000),
    default: 1,
    doc: 'condor, slurm: manifest rows one cluster job converts in sequence (tiny images: fewer, longer jobs); each row keeps its own outcome, logs, retries and removal',
  }),
  condorBatchSize: define({
    flags: '--condor-batch-size <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1),
    default: 1000,
    doc: 'condor: rows per condor_submit',
  }),
  requestCpus: define({
    flags: '--request-cpus <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1),
    default: 1,
    doc: 'condor: request_cpus of each job',
  }),
  requestMemory: define({
    flags: '--request-memory <size>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.quantity,
    default: '1GB',
    doc: 'condor: request_memory of each job',
  }),
  requestDisk: define({
    flags: '--request-disk <size>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.quantity,
    default: '2GB',
    doc: 'condor: request_disk of each job',
  }),
  maxHolds: define({
    flags: '--max-holds <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1),
    default: 5,
    doc: 'condor: holds after which HTCondor removes a job',
  }),
  releaseDelayMs: define({
    flags: '--release-delay <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(1),
    default: 60_000,
    show: asSeconds,
    doc: 'condor: wait before releasing a held job; doubles with each hold',
  }),
  partition: define({
    flags: '--partition <name>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.slurmName,
    defaultText: "the cluster's default",
    doc: 'slurm: the partition jobs are submitted to',
  }),
  account: define({
    flags: '--account <name>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.slurmName,
    defaultText: 'your default account',
    doc: 'slurm: the account jobs are charged to',
  }),
  mem: define({
    flags: '--mem <size>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.slurmMemory,
    default: '2G',
    doc: 'slurm: memory of each job (a job that runs out is submitted again once with twice as much)',
  }),
  cpusPerTask: define({
    flags: '--cpus-per-task <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1),
    default: 1,
    doc: 'slurm: CPUs of each job (its GDAL processes at once)',
  }),
  sbatchArgs: define({
    flags: '--sbatch-arg <option>',
    scope: 'home',
    verbs: ENGINE,
    repeatable: true,
    default: [] as string[],
    show: (list) => (list.length === 0 ? 'none' : list.join(' ')),
    parse: parse.repeated(parse.sbatchArg),
    doc: 'slurm: a further sbatch option, one word with its value (--sbatch-arg=--qos=high; repeat for more)',
  }),
  slurmPollMs: define({
    flags: '--slurm-poll <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(2),
    default: 15_000,
    show: asSeconds,
    doc: 'slurm: how often cogd asks Slurm about its jobs (one squeue or sacct for all of them)',
  }),
  hookTimeoutMs: define({
    flags: '--hook-timeout <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(1),
    default: 600_000,
    show: asSeconds,
    doc: 'an --on-run-end command running longer is killed with its process group (SIGTERM, SIGKILL 5 s later); its run stays as it is',
  }),
  notifyAttempts: define({
    flags: '--notify-attempts <n>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.integer(1, 100),
    default: 5,
    doc: "--notify-url: POSTs of one run's facts at most (network errors, 408, 429 and 5xx are retried), then cogd gives up with a log line",
  }),
  notifyRetryDelayMs: define({
    flags: '--notify-retry-delay <seconds>',
    scope: 'home',
    verbs: ENGINE,
    parse: parse.seconds(0.1),
    default: 4000,
    show: asSeconds,
    doc: '--notify-url: delay before the second POST; doubles each time (at most 5 min), ±20% jitter',
  }),

  http: define({
    flags: '--http [addr:port]',
    scope: 'home',
    verbs: ['start'],
    parse: parse.listenAddress,
    bare: '127.0.0.1:9464',
    negatable: true,
    default: false,
    defaultText: 'off',
    show: (value) => (value === false ? 'off' : value),
    doc: 'serve the status page, its JSON API and Prometheus /metrics, read-only, on this address (127.0.0.1:9464 when given bare; --no-http: off). Any address but loopback needs --http-token-file',
  }),
  httpTokenFile: define({
    flags: '--http-token-file <file>',
    scope: 'home',
    verbs: ['start'],
    parse: parse.file,
    defaultText: 'none',
    doc: 'file holding a bearer token every HTTP request must send (Authorization: Bearer …); needed to serve on any address but loopback',
  }),
  httpOpenMetrics: define({
    flags: '--http-open-metrics',
    scope: 'home',
    verbs: ['start'],
    parse: parse.flag,
    default: false,
    negatable: true,
    doc: 'leave /metrics and /healthz open without the token (for a Prometheus that sends none)',
  }),

  // ---- this command only
  home: define({
    flags: '--home <dir>',
    scope: 'command',
    verbs: EVERY,
    parse: parse.file,
    defaultText: '$COGD_HOME or the current directory',
    doc: 'the cogd home: state DB (cogd.db), logs/, the daemon lock and pid file',
  }),
  wait: define({
    flags: '--wait',
    scope: 'command',
    verbs: ['poll'],
    parse: parse.flag,
    doc: 'convert what was claimed (and resume unfinished runs) before returning',
  }),
  dryRun: define({
    flags: '--dry-run',
    scope: 'command',
    verbs: ['poll'],
    parse: parse.flag,
    doc: "list what would be claimed and every row's verdict (the keys it would write, or why it would fail), with a total; writes nothing to S3 or the home, takes no lock",
  }),
  foreground: define({
    flags: '--foreground',
    scope: 'command',
    verbs: ['start'],
    parse: parse.flag,
    doc: 'run the daemon in this process until SIGINT/SIGTERM',
  }),
  verbose: define({
    flags: '-v, --verbose',
    scope: 'command',
    verbs: RUN,
    parse: parse.flag,
    doc: 'log progress events to stderr',
  }),
  debug: define({ flags: '--debug', scope: 'command', verbs: RUN, parse: parse.flag, doc: 'log everything to stderr' }),
  json: define({
    flags: '--json',
    scope: 'command',
    verbs: ['status', 'config', 'poll', 'plan'],
    parse: parse.flag,
    doc: 'print the same data as JSON (poll: with --dry-run)',
  }),
  jobs: define({
    flags: '--jobs, --nobatch',
    scope: 'command',
    verbs: ['status'],
    parse: parse.flag,
    doc: 'one line per job with its state and last error (condor_q -nobatch)',
  }),
  limit: define({
    flags: '--limit <n>',
    scope: 'command',
    verbs: ['status'],
    parse: parse.integer(0),
    default: 100,
    doc: 'with --jobs: jobs listed at most (0: all); a last line says how many more and how to see them',
  }),
  page: define({
    flags: '--page <n>',
    scope: 'command',
    verbs: ['status'],
    parse: parse.integer(1),
    default: 1,
    doc: 'with --jobs: which page of --limit jobs to list',
  }),
  jobState: define({
    flags: '--state <state>',
    scope: 'command',
    verbs: ['status'],
    parse: parse.choice(['idle', 'running', 'held', 'converted', 'failed', 'removed'] as const),
    doc: 'with --jobs: only jobs in this state (idle, running, held, converted, failed, removed)',
  }),
  watch: define({
    flags: '--watch',
    scope: 'command',
    verbs: ['status'],
    parse: parse.flag,
    doc: 'redraw a progress bar per run until they finish (Ctrl-C stops)',
  }),
  intervalMs: define({
    flags: '--interval <seconds>',
    scope: 'command',
    verbs: ['status', 'watch'],
    parse: parse.seconds(0.1),
    default: 1000,
    show: asSeconds,
    doc: 'refresh interval of the live view',
  }),
  reason: define({
    flags: '--reason <text>',
    scope: 'command',
    verbs: ['hold'],
    parse: parse.text,
    defaultText: 'held by user',
    doc: 'why it is held (shown by cogd status -hold)',
  }),
  now: define({
    flags: '--now',
    scope: 'command',
    verbs: ['hold'],
    parse: parse.flag,
    doc: 'also stop jobs already running (requeued without spending a retry); by default they finish',
  }),
  holdView: define({
    flags: '--hold',
    scope: 'command',
    verbs: ['status'],
    parse: parse.flag,
    doc: 'only what is held, with since when, by whom and why (condor_q -hold)',
  }),
  all: define({
    flags: '--all',
    scope: 'command',
    verbs: ['rm', 'retry'],
    parse: parse.flag,
    doc: 'rm: every unfinished run and every watch; retry: every row of the run, not only those that did not convert',
  }),
  rows: define({
    flags: '--rows <lines>',
    scope: 'command',
    verbs: ['retry'],
    parse: parse.lineList,
    doc: 'the manifest lines to run again, e.g. 3,7 or 3-9 (by default: every row that did not convert)',
  }),
  timeoutMs: define({
    flags: '--timeout <seconds>',
    scope: 'command',
    verbs: ['stop'],
    parse: parse.seconds(0),
    default: 120_000,
    show: asSeconds,
    doc: 'how long to wait for the daemon to stop',
  }),
  follow: define({
    flags: '-f, --follow',
    scope: 'command',
    verbs: ['logs'],
    parse: parse.flag,
    doc: 'keep printing what is appended until the run is done',
  }),
} as const;

export type OptionName = keyof typeof OPTIONS;

export type ValueOf<K extends OptionName> = (typeof OPTIONS)[K] extends OptionSpec<infer T> ? T : never;

/** The options of one scope, with their value types: e.g. `Values<'home'>`. */
export type Values<S extends Scope> = {
  [K in OptionName as (typeof OPTIONS)[K]['scope'] extends S ? K : never]: ValueOf<K>;
};

/** Names of the options of a scope, in table order. */
export function namesOf(scope: Scope): OptionName[] {
  return (Object.keys(OPTIONS) as OptionName[]).filter((name) => OPTIONS[name].scope === scope);
}

/** The long flag (`--max-running`). */
export function longFlag(name: OptionName): string {
  return /--[\w-]+/.exec(OPTIONS[name].flags)?.[0] ?? name;
}

/** The flag as messages name it: `-m/--max-running`, `--retries`. */
export function flagLabel(name: OptionName): string {
  const short = /^(-\w),/.exec(OPTIONS[name].flags)?.[1];
  return short === undefined ? longFlag(name) : `${short}/${longFlag(name)}`;
}

/** The flag as typed most often: `-m`, `--retries`. */
export function shortFlag(name: OptionName): string {
  return /^(-\w),/.exec(OPTIONS[name].flags)?.[1] ?? longFlag(name);
}

/** The attribute commander stores the option under (camel case of its last long flag). */
export function attributeOf(name: OptionName): string {
  const longs = OPTIONS[name].flags.match(/--[\w-]+/g) ?? [name];
  return longs[longs.length - 1]!.slice(2).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A value as people read it. */
export function showValue(name: OptionName, value: unknown): string {
  if (value === undefined) return OPTIONS[name].defaultText ?? 'unset';
  const show = (OPTIONS[name] as OptionSpec).show;
  if (show !== undefined) return show(value);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The default of an option, given the home and the values settled before it. */
export function defaultOf(name: OptionName, context: DefaultContext): unknown {
  const value = (OPTIONS[name] as OptionSpec).default;
  return typeof value === 'function' ? (value as (c: DefaultContext) => unknown)(context) : value;
}

/** The default as people read it (`--help`, the README). */
export function defaultText(name: OptionName): string | undefined {
  const spec = OPTIONS[name] as OptionSpec;
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined || typeof spec.default === 'function') return undefined;
  if (spec.parse === parse.flag) return spec.default === true ? 'on' : 'off';
  return showValue(name, spec.default);
}

/** The options a verb takes, in table order. */
export function optionsOf(verb: Verb): OptionName[] {
  return (Object.keys(OPTIONS) as OptionName[]).filter((name) => OPTIONS[name].verbs.includes(verb));
}

/**
 * Reads the options a command was given (commander hands over raw strings, `true` for flags and
 * `false` for their `--no-` form): each is parsed and checked. Options not given are absent.
 */
export function readGiven(verb: Verb, raw: Readonly<Record<string, unknown>>): Partial<Record<OptionName, unknown>> {
  const given: Partial<Record<OptionName, unknown>> = {};
  for (const name of optionsOf(verb)) {
    const value = raw[attributeOf(name)];
    if (value === undefined) continue;
    const spec = OPTIONS[name] as OptionSpec;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (value === true && spec.bare !== undefined) given[name] = spec.parse(spec.bare, flagLabel(name));
    else given[name] = typeof value === 'boolean' ? value : spec.parse(text, flagLabel(name));
  }
  return given;
}
