/**
 * The one place that reads `process.env`. Layers: defaults < environment < flags.
 * Everything is validated here, at start, with messages that say how to fix the input.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validate as validateCron } from 'node-cron';
import { UsageError } from './errors.js';
import { DEFAULT_LIMITS } from './convert/rules.js';
import type { ExecutorName, S3Settings } from './types.js';

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

export interface Config extends EngineConfig {
  pattern: string;
  inputBucket: string;
  outputBucket: string;
  s3: S3Settings;
  /** Jobs of this watch in flight at most (`-m`). @defaultValue 10000 */
  maxRunning: number;
  /** @defaultValue `*\/15 * * * *` */
  schedule: string;
  /** @defaultValue `local` */
  executor: ExecutorName;
}

export const DEFAULT_SCHEDULE = '*/15 * * * *';
export const DEFAULT_MAX_RUNNING = 10000;

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
    retries: integer('--retries', flags.retries, 3, 0),
    retryDelayMs: seconds('--retry-delay', flags.retryDelay, 10_000),
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
    scratch: flags.scratch === undefined ? path.join(home, 'scratch') : path.resolve(flags.scratch),
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
  const executor = flags.executor ?? 'local';
  if (executor !== 'local' && executor !== 'condor') {
    throw new UsageError(`--executor "${executor}" is unknown`, 'use local or condor');
  }
  if (executor === 'condor' && (flags.accessKey === undefined || flags.secretKey === undefined)) {
    throw new UsageError(
      '--executor condor needs the S3 keys in files: HTCondor reads them through aws_access_key_id_file / aws_secret_access_key_file',
      'pass -a/--access-key FILE and -s/--secret-key FILE (files readable by your user only)',
    );
  }
  const schedule = flags.schedule ?? DEFAULT_SCHEDULE;
  if (!validateCron(schedule)) {
    throw new UsageError(`--schedule "${schedule}" is not a cron expression`, 'for example "*/15 * * * *"');
  }
  return {
    ...resolveEngine(flags, env),
    pattern,
    inputBucket: checkBucketName('--input-bucket', flags.inputBucket),
    outputBucket: checkBucketName('--output-bucket', flags.outputBucket),
    s3: {
      endpoint: flags.s3Endpoint === undefined ? undefined : normalizeEndpoint(flags.s3Endpoint),
      accessKeyFile: flags.accessKey === undefined ? undefined : path.resolve(flags.accessKey),
      secretKeyFile: flags.secretKey === undefined ? undefined : path.resolve(flags.secretKey),
      region: env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
    },
    maxRunning: integer('-m/--max-running', flags.maxRunning, DEFAULT_MAX_RUNNING, 1),
    schedule,
    executor,
  };
}

/**
 * Test-only: the named point at which the process kills itself with SIGKILL (COGD_TEST_CRASH_AT),
 * so crash tests can stop cogd between any two steps. Unset in normal use.
 */
export function testCrashPoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env['COGD_TEST_CRASH_AT'];
  return value === undefined || value === '' ? undefined : value;
}
