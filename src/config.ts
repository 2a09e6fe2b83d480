/**
 * The one place that reads `process.env`. Layers: defaults < environment < flags.
 * Everything is validated here, at start, with messages that say how to fix the input.
 */
import { existsSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validate as validateCron } from 'node-cron';
import { UsageError } from './errors.js';
import { DEFAULT_LIMITS } from './convert/rules.js';
import type { WatchIdentity, WatchSettings } from './types.js';

/** Flags shared by `poll` and `start`, as commander hands them over (all strings). */
export interface RunFlags {
  pattern?: string;
  inputBucket?: string;
  outputBucket?: string;
  s3Endpoint?: string;
  accessKey?: string;
  secretKey?: string;
  maxRunning?: string;
  home?: string;
  schedule?: string;
  retries?: string;
  retryDelay?: string;
  executor?: string;
  ioConcurrency?: string;
  cpuConcurrency?: string;
  jobTimeout?: string;
  stepTimeout?: string;
  inspectTimeout?: string;
  retryTimeouts?: boolean;
  maxPixels?: string;
  maxBands?: string;
  scratch?: string;
  scratchWait?: string;
  submitTemplate?: string;
  containerImage?: string;
  condorBatchSize?: string;
  requestCpus?: string;
  requestMemory?: string;
  requestDisk?: string;
  maxHolds?: string;
  releaseDelay?: string;
}

/** The watch a `poll` or `start` names, and the settings given for it on the command line. */
export interface WatchRequest {
  identity: WatchIdentity;
  /**
   * Settings given by flags (or the environment). A new watch takes the defaults for the rest; an
   * existing one keeps its stored values.
   */
  given: Partial<WatchSettings>;
}

export interface Config extends EngineConfig {
  watch: WatchRequest;
}

export const DEFAULT_SCHEDULE = '*/15 * * * *';
export const DEFAULT_MAX_RUNNING = 10000;

/** A new watch's settings where no flag says otherwise. */
export const DEFAULT_WATCH_SETTINGS: WatchSettings = {
  accessKeyFile: undefined,
  secretKeyFile: undefined,
  region: 'us-east-1',
  schedule: DEFAULT_SCHEDULE,
  /** The reference tool's default. */
  maxRunning: DEFAULT_MAX_RUNNING,
  retries: 3,
  retryDelayMs: 10_000,
  executor: 'local',
};

/** How each watch setting is named on the command line, and shown when it changes. */
export const WATCH_SETTING_FLAGS: Record<keyof WatchSettings, { flag: string; show: (value: unknown) => string }> = {
  accessKeyFile: { flag: '-a/--access-key', show: (v) => String(v ?? 'the AWS environment') },
  secretKeyFile: { flag: '-s/--secret-key', show: (v) => String(v ?? 'the AWS environment') },
  region: { flag: 'AWS_REGION', show: String },
  schedule: { flag: '--schedule', show: (v) => `"${String(v)}"` },
  maxRunning: { flag: '-m', show: String },
  retries: { flag: '--retries', show: String },
  retryDelayMs: { flag: '--retry-delay', show: (v) => `${Number(v) / 1000} s` },
  executor: { flag: '--executor', show: String },
};

export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env['COGD_HOME'] ?? process.cwd());
}

/** `-e host` means https; a URL is taken as given. */
export function normalizeEndpoint(value: string): string {
  const trimmed = value.trim();
  if (trimmed === '') throw new UsageError('--s3-endpoint is empty', 'give a host name or a URL such as http://127.0.0.1:9000');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--s3-endpoint "${value}" is not a host name or URL`, 'for example: s3.example.org or http://127.0.0.1:9000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--s3-endpoint "${value}" uses ${url.protocol}; only http and https are supported`);
  }
  return withScheme.replace(/\/+$/, '');
}

function integer(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`${name} must be a whole number, got "${value}"`);
  const n = Number(value.trim());
  if (n < min) throw new UsageError(`${name} must be at least ${min}, got ${n}`);
  return n;
}

function seconds(name: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number of seconds, got "${value}"`);
  return Math.round(n * 1000);
}

/** Daemon-wide settings: what `cogd daemon` and `poll` need beyond a watch. */
export function resolveEngine(flags: RunFlags, env: NodeJS.ProcessEnv = process.env) {
  const home = resolveHome(flags.home, env);
  const jobTimeoutMs = seconds('--job-timeout', flags.jobTimeout, 30 * 60 * 1000);
  return {
    home,
    cpuConcurrency: integer('--cpu-concurrency', flags.cpuConcurrency, os.availableParallelism(), 1),
    ioConcurrency: integer('--io-concurrency', flags.ioConcurrency, 8, 1),
    jobTimeoutMs,
    stepTimeoutMs: seconds('--step-timeout', flags.stepTimeout, jobTimeoutMs),
    inspectTimeoutMs: seconds('--inspect-timeout', flags.inspectTimeout, 60_000),
    retryTimeouts: flags.retryTimeouts === true,
    limits: {
      maxPixels: integer('--max-pixels', flags.maxPixels, DEFAULT_LIMITS.maxPixels, 1),
      maxBands: integer('--max-bands', flags.maxBands, DEFAULT_LIMITS.maxBands, 1),
    },
    scratch: flags.scratch === undefined ? path.join(home, 'scratch') : checkScratch(path.resolve(flags.scratch), home),
    scratchWaitMs: seconds('--scratch-wait', flags.scratchWait, 10 * 60 * 1000),
    condor: {
      submitTemplate: flags.submitTemplate === undefined ? undefined : existingFile('--submit-template', flags.submitTemplate),
      containerImage: nonEmpty('--container-image', flags.containerImage, DEFAULT_CONTAINER_IMAGE),
      batchSize: integer('--condor-batch-size', flags.condorBatchSize, 1000, 1),
      requestCpus: integer('--request-cpus', flags.requestCpus, 1, 1),
      requestMemory: quantity('--request-memory', flags.requestMemory, '1GB'),
      requestDisk: quantity('--request-disk', flags.requestDisk, '2GB'),
      maxHolds: integer('--max-holds', flags.maxHolds, 5, 1),
      releaseDelayS: Math.max(1, Math.round(seconds('--release-delay', flags.releaseDelay, 60_000) / 1000)),
      jobTimeoutS: Math.max(1, Math.round(jobTimeoutMs / 1000)),
    },
  };
}

/** The real path of `p` where it exists (symlinks resolved), else `p` itself. */
function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

const within = (child: string, parent: string): boolean => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : `${parent}${path.sep}`);

/**
 * cogd works in its own subdirectory of the scratch directory and removes only that; still, a
 * scratch that is the home, holds the home, or lies in its logs would mix cogd's temporary files
 * with its state: refused.
 */
function checkScratch(scratch: string, home: string): string {
  const s = real(scratch);
  const h = real(home);
  if (within(h, s)) {
    throw new UsageError(`--scratch ${scratch} ${s === h ? 'is' : 'contains'} the cogd home ${home}`, 'point --scratch at a directory outside the home, e.g. a larger disk');
  }
  if (within(s, path.join(h, 'logs'))) {
    throw new UsageError(`--scratch ${scratch} is inside the home's logs/`, 'point --scratch at a directory outside logs/, or leave it out (default: <home>/scratch)');
  }
  return scratch;
}

export const DEFAULT_CONTAINER_IMAGE = 'docker://ghcr.io/osgeo/gdal:ubuntu-small-latest';

function existingFile(name: string, value: string): string {
  const file = path.resolve(value);
  if (!existsSync(file)) throw new UsageError(`${name} ${value}: no such file`, 'copy submit-templates/cog.sub and point at the copy');
  return file;
}

function nonEmpty(name: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (value.trim() === '' || /[\n\r"]/.test(value)) throw new UsageError(`${name} "${value}" is empty or contains a quote or newline`);
  return value.trim();
}

/** An HTCondor quantity such as 1GB, 512MB or 2048 (MB for memory, KB for disk, as condor_submit reads bare numbers). */
function quantity(name: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (!/^\d+(\.\d+)?\s*([KMGT]i?B?)?$/i.test(value.trim())) throw new UsageError(`${name} "${value}" is not a size`, 'for example 1GB, 512MB or 2048');
  return value.trim();
}

export type EngineConfig = ReturnType<typeof resolveEngine>;

/** S3 bucket naming rules (the strict subset every implementation accepts). */
export function checkBucketName(flag: string, name: string | undefined): string {
  if (name === undefined || name === '') throw new UsageError(`${flag} is required`, `pass ${flag} NAME`);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes('..')) {
    throw new UsageError(
      `${flag} "${name}" is not a valid bucket name`,
      'bucket names are 3-63 characters of lower-case letters, digits, dots and hyphens',
    );
  }
  return name;
}

export function resolveConfig(flags: RunFlags, env: NodeJS.ProcessEnv = process.env): Config {
  const pattern = flags.pattern;
  if (pattern === undefined || pattern.trim() === '') {
    throw new UsageError('-p/--pattern is required', 'for example: -p "*raw.csv"');
  }
  if ((flags.accessKey === undefined) !== (flags.secretKey === undefined)) {
    throw new UsageError('-a/--access-key and -s/--secret-key go together', 'pass both key files, or neither to use the AWS environment');
  }
  const inputBucket = checkBucketName('--input-bucket', flags.inputBucket);
  const outputBucket = checkBucketName('--output-bucket', flags.outputBucket);
  if (inputBucket === outputBucket) {
    throw new UsageError(
      `--input-bucket and --output-bucket are both "${inputBucket}": every COG would overwrite its source image (the same key in the same bucket)`,
      'write the outputs to another bucket',
    );
  }
  const given: Partial<WatchSettings> = {};
  if (flags.executor !== undefined) {
    if (flags.executor !== 'local' && flags.executor !== 'condor') {
      throw new UsageError(`--executor "${flags.executor}" is unknown`, 'use local or condor');
    }
    given.executor = flags.executor;
  }
  if (flags.schedule !== undefined) {
    if (!validateCron(flags.schedule)) {
      throw new UsageError(`--schedule "${flags.schedule}" is not a cron expression`, 'for example "*/15 * * * *"');
    }
    given.schedule = flags.schedule;
  }
  if (flags.maxRunning !== undefined) given.maxRunning = integer('-m/--max-running', flags.maxRunning, DEFAULT_MAX_RUNNING, 1);
  if (flags.retries !== undefined) given.retries = integer('--retries', flags.retries, 3, 0);
  if (flags.retryDelay !== undefined) given.retryDelayMs = seconds('--retry-delay', flags.retryDelay, 10_000);
  if (flags.accessKey !== undefined && flags.secretKey !== undefined) {
    given.accessKeyFile = path.resolve(flags.accessKey);
    given.secretKeyFile = path.resolve(flags.secretKey);
  }
  const region = env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
  if (region !== undefined && region !== '') given.region = region;
  return {
    ...resolveEngine(flags, env),
    watch: {
      identity: {
        pattern,
        inputBucket,
        outputBucket,
        endpoint: flags.s3Endpoint === undefined ? undefined : normalizeEndpoint(flags.s3Endpoint),
      },
      given,
    },
  };
}

/**
 * Checks a watch's settings as they will be stored (given over stored over defaults): what no
 * single flag can show wrong.
 */
export function checkWatchSettings(settings: WatchSettings): void {
  if (settings.executor === 'condor' && (settings.accessKeyFile === undefined || settings.secretKeyFile === undefined)) {
    throw new UsageError(
      '--executor condor needs the S3 keys in files: HTCondor reads them through aws_access_key_id_file / aws_secret_access_key_file',
      'pass -a/--access-key FILE and -s/--secret-key FILE (files readable by your user only)',
    );
  }
}
