/**
 * Settings, resolved: the one place that reads `process.env` (but for the test-only crash hook).
 * Layers, lowest first: defaults (the option table) < what the home or the watch has stored < the
 * environment < flags. Everything is checked here, at start, with messages that say how to fix it.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { WatchIdentity, WatchSettings } from '../types.js';
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

/** The engine's settings from the home's. */
export function engineConfig(home: string, s: HomeSettings): EngineConfig {
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
