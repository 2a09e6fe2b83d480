/**
 * Settings, resolved: the one place that reads `process.env` (but for the test-only crash hook).
 * Layers, lowest first: defaults (the option table) < what the home or the watch has stored < the
 * environment < flags. Everything is checked here, at start, with messages that say how to fix it.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { isLoopback, splitAddress } from './parse.js';
import type { WatchIdentity, WatchSettings } from '../types.js';
import type { Backoff } from '../util/backoff.js';
import {
  defaultOf,
  namesOf,
  shortFlag,
  OPTIONS,
  readGiven,
  showValue,
  type OptionName,
  type Values,
  type ValueOf,
  type Verb,
} from './options.js';

export { OPTIONS, flagLabel, namesOf, showValue, type OptionName, type Verb } from './options.js';

/** The home's settings: the engine on this machine. */
export type HomeSettings = Values<'home'>;

/** The watch a `poll` or `start` names, and the settings given for it on the command line. */
export interface WatchRequest {
  identity: WatchIdentity;
  /**
   * Settings given by flags (or the environment). A new watch takes the defaults for the rest; an
   * existing one keeps its stored values.
   */
  given: Partial<WatchSettings>;
}

/** What a command was given, by scope, checked. */
export interface Given {
  identity: Partial<Values<'identity'>>;
  watch: Partial<Values<'watch'>>;
  home: Partial<HomeSettings>;
  command: Partial<Values<'command'>>;
}

/** Where a setting's value comes from, as `cogd config` shows it. */
export type Source = 'default' | 'stored' | 'given' | 'environment';

/** The engine's settings in the shape its parts take them. */
export interface EngineConfig {
  home: string;
  cpuConcurrency: number;
  ioConcurrency: number;
  jobTimeoutMs: number;
  stepTimeoutMs: number;
  inspectTimeoutMs: number;
  retryTimeouts: boolean;
  limits: { maxPixels: number; maxBands: number };
  /** The directory given as scratch (cogd works in its own subdirectory of it). */
  scratch: string;
  scratchWaitMs: number;
  condor: {
    submitTemplate: string | undefined;
    containerImage: string;
    batchSize: number;
    requestCpus: number;
    requestMemory: string;
    requestDisk: string;
    maxHolds: number;
    releaseDelayS: number;
    jobTimeoutS: number;
  };
  slurm: {
    partition: string | undefined;
    account: string | undefined;
    mem: string;
    cpusPerTask: number;
    extra: string[];
    pollMs: number;
    /** --job-timeout as Slurm's --time, whole minutes. */
    timeMinutes: number;
  };
  /** What runs' ends do: hooks' deadline and what they take from cogd's environment; notifications' retries. */
  runEnd: {
    hookTimeoutMs: number;
    hookEnvironment: Record<string, string>;
    notifyAttempts: number;
    notifyBackoff: Backoff;
  };
}

/** What `poll` and `start` were asked: the home, the watch, and the rest of what was given. */
export interface RunRequest {
  home: string;
  watch: WatchRequest;
  given: Given;
}

export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env['COGD_HOME'] ?? process.cwd());
}

/** Reads and checks what a command was given, split by scope. */
export function readOptions(verb: Verb, flags: Readonly<Record<string, unknown>>): Given {
  const given: Given = { identity: {}, watch: {}, home: {}, command: {} };
  for (const [name, value] of Object.entries(readGiven(verb, flags)) as Array<[OptionName, unknown]>) {
    (given[OPTIONS[name].scope] as Record<string, unknown>)[name] = value;
  }
  return given;
}

/** A new watch's settings where no flag says otherwise. */
export const DEFAULT_WATCH_SETTINGS: WatchSettings = {
  accessKeyFile: undefined,
  secretKeyFile: undefined,
  region: 'us-east-1',
  maxRunning: fixedDefault('maxRunning'),
  retries: fixedDefault('retries'),
  retryDelayMs: fixedDefault('retryDelayMs'),
  executor: fixedDefault('executor'),
  schedule: fixedDefault('schedule'),
  profile: fixedDefault('profile'),
  creationOptions: fixedDefault('creationOptions'),
  overviewResampling: undefined,
  maxZError: fixedDefault('maxZError'),
  previewBackground: fixedDefault('previewBackground'),
  previewMaxSize: undefined,
  stac: fixedDefault('stac'),
  stacItemSuffix: fixedDefault('stacItemSuffix'),
  stacCollection: fixedDefault('stacCollection'),
  rowsPerJob: fixedDefault('rowsPerJob'),
  onRunEnd: fixedDefault('onRunEnd'),
  notifyUrl: fixedDefault('notifyUrl'),
};

/** The default of an option that depends on nothing. */
function fixedDefault<K extends OptionName>(name: K): ValueOf<K> {
  return defaultOf(name, { home: '', values: {} }) as ValueOf<K>;
}

/** How a change of a watch setting is said: `-m 2000 → 500`. */
export function describeChange(key: keyof WatchSettings, before: unknown, after: unknown): string {
  if (key === 'region') return `AWS_REGION ${String(before)} → ${String(after)}`;
  return `${shortFlag(key)} ${showValue(key, before)} → ${showValue(key, after)}`;
}

/**
 * The home's settings: each given value over the stored one over the default; with where each
 * came from. The scratch directory is checked against the home.
 */
export function resolveHomeSettings(
  home: string,
  stored: Partial<HomeSettings>,
  given: Partial<HomeSettings>,
): { settings: HomeSettings; sources: Record<keyof HomeSettings, Source> } {
  const values: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const name of namesOf('home')) {
    const key = name as keyof HomeSettings;
    if (given[key] !== undefined) [values[name], sources[name]] = [given[key], 'given'];
    else if (stored[key] !== undefined) [values[name], sources[name]] = [stored[key], 'stored'];
    else [values[name], sources[name]] = [defaultOf(name, { home, values }), 'default'];
  }
  const settings = values as unknown as HomeSettings;
  if (sources['scratch'] !== 'default') checkScratch(settings.scratch, home);
  return { settings, sources };
}

/** The stored home settings that are still settings (a name a later version dropped is ignored). */
export function storedHomeValues(stored: Readonly<Record<string, { value: unknown }>>): Partial<HomeSettings> {
  const names = new Set<string>(namesOf('home'));
  const values: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(stored)) if (names.has(name)) values[name] = setting.value;
  return values;
}

/** The engine of a home: given settings over stored ones over defaults. */
export function engineOf(
  home: string,
  stored: Readonly<Record<string, { value: unknown }>>,
  given: Partial<HomeSettings> = {},
): EngineConfig {
  return engineConfig(home, resolveHomeSettings(home, storedHomeValues(stored), given).settings);
}

/**
 * What a run-end hook takes from cogd's environment: PATH, HOME and LANG, where set; nothing else
 * (no AWS_* variable, no key file path, nothing a user's shell exported into the daemon).
 */
export function hookEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const passed: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG']) {
    const value = env[name];
    if (value !== undefined) passed[name] = value;
  }
  return passed;
}

/** The engine's settings from the home's. */
export function engineConfig(home: string, s: HomeSettings, env: NodeJS.ProcessEnv = process.env): EngineConfig {
  return {
    home,
    cpuConcurrency: s.cpuConcurrency,
    ioConcurrency: s.ioConcurrency,
    jobTimeoutMs: s.jobTimeoutMs,
    stepTimeoutMs: s.stepTimeoutMs,
    inspectTimeoutMs: s.inspectTimeoutMs,
    retryTimeouts: s.retryTimeouts,
    limits: { maxPixels: s.maxPixels, maxBands: s.maxBands },
    scratch: s.scratch,
    scratchWaitMs: s.scratchWaitMs,
    condor: {
      submitTemplate: s.submitTemplate,
      containerImage: s.containerImage,
      batchSize: s.condorBatchSize,
      requestCpus: s.requestCpus,
      requestMemory: s.requestMemory,
      requestDisk: s.requestDisk,
      maxHolds: s.maxHolds,
      releaseDelayS: Math.max(1, Math.round(s.releaseDelayMs / 1000)),
      jobTimeoutS: Math.max(1, Math.round(s.jobTimeoutMs / 1000)),
    },
    slurm: {
      partition: s.partition,
      account: s.account,
      mem: s.mem,
      cpusPerTask: s.cpusPerTask,
      extra: s.sbatchArgs,
      pollMs: s.slurmPollMs,
      timeMinutes: Math.max(1, Math.ceil(s.jobTimeoutMs / 60_000)),
    },
    runEnd: {
      hookTimeoutMs: s.hookTimeoutMs,
      hookEnvironment: hookEnvironment(env),
      notifyAttempts: s.notifyAttempts,
      notifyBackoff: { kind: 'exponential', baseMs: s.notifyRetryDelayMs, factor: 2, maxMs: 300_000, jitter: 0.2 },
    },
  };
}

/**
 * What `poll` and `start` were asked, checked: the watch their flags name (given settings only: the
 * stored ones are merged when it is registered), and every other option given.
 */
export function readRunRequest(
  verb: Verb,
  flags: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): RunRequest {
  const given = readOptions(verb, flags);
  const home = resolveHome(given.command.home, env);
  const { pattern, inputBucket, outputBucket, s3Endpoint } = given.identity;
  if (pattern === undefined) throw new UsageError('-p/--pattern is required', 'for example: -p "*raw.csv"');
  if (inputBucket === undefined) throw new UsageError('--input-bucket is required', 'pass --input-bucket NAME');
  if (outputBucket === undefined) throw new UsageError('--output-bucket is required', 'pass --output-bucket NAME');
  if ((given.watch.accessKeyFile === undefined) !== (given.watch.secretKeyFile === undefined)) {
    throw new UsageError(
      '-a/--access-key and -s/--secret-key go together',
      'pass both key files, or neither to use the AWS environment',
    );
  }
  if (inputBucket === outputBucket) {
    throw new UsageError(
      `--input-bucket and --output-bucket are both "${inputBucket}": every COG would overwrite its source image (the same key in the same bucket)`,
      'write the outputs to another bucket',
    );
  }
  if (given.watch.onRunEnd !== undefined && given.watch.onRunEnd.length > 0)
    checkProgram(given.watch.onRunEnd[0]!, env['PATH'] ?? '');
  const watchGiven: Partial<WatchSettings> = { ...given.watch };
  const region = env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
  if (region !== undefined && region !== '') watchGiven.region = region;
  // The home settings given are checked now (the scratch against the home), before anything starts.
  resolveHomeSettings(home, {}, given.home);
  return {
    home,
    given,
    watch: { identity: { pattern, inputBucket, outputBucket, endpoint: s3Endpoint }, given: watchGiven },
  };
}

/** One line per home setting that `given` changes from what was in effect (`--io-concurrency 8 → 4`). */
export function homeChanges(home: string, stored: Partial<HomeSettings>, given: Partial<HomeSettings>): string[] {
  const before = resolveHomeSettings(home, stored, {}).settings;
  const lines: string[] = [];
  for (const [name, value] of Object.entries(given) as Array<[keyof HomeSettings, unknown]>) {
    if (value === undefined || JSON.stringify(value) === JSON.stringify(before[name])) continue;
    lines.push(`${shortFlag(name)} ${showValue(name, before[name])} → ${showValue(name, value)}`);
  }
  return lines;
}

/**
 * Checks a watch's settings as they will be stored (given over stored over defaults): what no
 * single flag can show wrong.
 */
export function checkWatchSettings(settings: WatchSettings): void {
  if (
    settings.executor === 'condor' &&
    (settings.accessKeyFile === undefined || settings.secretKeyFile === undefined)
  ) {
    throw new UsageError(
      '--executor condor needs the S3 keys in files: HTCondor reads them through aws_access_key_id_file / aws_secret_access_key_file',
      'pass -a/--access-key FILE and -s/--secret-key FILE (files readable by your user only)',
    );
  }
  if (settings.executor === 'slurm' && (settings.accessKeyFile === undefined || settings.secretKeyFile === undefined)) {
    throw new UsageError(
      '--executor slurm needs the S3 keys in files: the jobs read them on the compute nodes, from the shared filesystem',
      'pass -a/--access-key FILE and -s/--secret-key FILE (files readable by your user only, on a filesystem the nodes share)',
    );
  }
}

/** Whether `file` is a file this user may execute. */
function executable(file: string): boolean {
  try {
    return statSync(file).isFile() && (accessSync(file, constants.X_OK), true);
  } catch {
    return false;
  }
}

/**
 * The program of `--on-run-end` must be there when it is given: an executable file at the path
 * given, or, for a bare name, in a directory of PATH (where the daemon, started from here, finds it).
 */
function checkProgram(program: string, searchPath: string): void {
  if (program.includes('/')) {
    if (!executable(program))
      throw new UsageError(
        `--on-run-end: ${program} is not an executable file`,
        'give the path of a program or script (chmod +x it), or the name of one on PATH',
      );
    return;
  }
  const dirs = searchPath.split(path.delimiter).filter((dir) => dir !== '');
  if (!dirs.some((dir) => executable(path.join(dir, program))))
    throw new UsageError(
      `--on-run-end: no program "${program}" on PATH`,
      'give its path, or the name of a program on PATH (the command runs without a shell)',
    );
}

/**
 * The status page shows bucket names, keys and errors: it is served on loopback, or elsewhere only
 * behind a bearer token.
 */
export function checkHttp(settings: { http: string | false; httpTokenFile: string | undefined }): void {
  if (settings.http === false || settings.httpTokenFile !== undefined) return;
  const { host } = splitAddress(settings.http);
  if (!isLoopback(host)) {
    throw new UsageError(
      `--http ${settings.http} would serve the status page beyond this machine without a token`,
      'pass --http-token-file FILE (a bearer token clients must send), or serve on loopback (--http 127.0.0.1:9464) behind an SSH tunnel or a proxy',
    );
  }
}

/** The real path of `p` where it exists (symlinks resolved), else `p` itself. */
function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

const within = (child: string, parent: string): boolean =>
  child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : `${parent}${path.sep}`);

/**
 * cogd works in its own subdirectory of the scratch directory and removes only that; still, a
 * scratch that is the home, holds the home, or lies in its logs would mix cogd's temporary files
 * with its state: refused.
 */
function checkScratch(scratch: string, home: string): void {
  const s = real(scratch);
  const h = real(home);
  if (within(h, s)) {
    throw new UsageError(
      `--scratch ${scratch} ${s === h ? 'is' : 'contains'} the cogd home ${home}`,
      'point --scratch at a directory outside the home, e.g. a larger disk',
    );
  }
  if (within(s, path.join(h, 'logs'))) {
    throw new UsageError(
      `--scratch ${scratch} is inside the home's logs/`,
      'point --scratch at a directory outside logs/, or leave it out (default: <home>/scratch)',
    );
  }
}
