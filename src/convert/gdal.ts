/**
 * Running GDAL: one process per command, never through a shell, in its own process group (a stop,
 * a removal or a deadline kills everything it started), with its output streamed to the job's
 * `.out` / `.err` files — never buffered whole — and the command line in its `.log`.
 */
import { execFileSync } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { CogdError, PermanentError } from '../errors.js';
import type { StepFiles } from '../log/index.js';
import { spawnProgram } from '../util/spawner.js';
import { parseGdalinfo, type ImageInfo } from './image.js';

export interface GdalOptions {
  signal?: AbortSignal;
  /** Kill the command after this long. @defaultValue no limit */
  timeoutMs?: number;
  /** Extra environment (GDAL_CACHEMAX, GDAL_NUM_THREADS…). */
  env?: Record<string, string>;
  /** Keep stdout in memory too (gdalinfo's JSON); otherwise it only goes to `.out`. */
  captureStdout?: boolean;
  /** Told when the process starts and when it has ended (a restart kills what a crash left running). */
  track?: ProcessTracker;
  /**
   * What the files in the arguments are to a user (`/scratch/…/input.tif` → `s3://bucket/key`):
   * a failure's reason names the object, never a scratch path that is gone once the job ends.
   */
  names?: Record<string, string>;
}

/** `text` with each local path replaced by the name a user knows it by. */
export function nameObjects(text: string, names: Record<string, string> | undefined): string {
  if (names === undefined) return text;
  let named = text;
  // Longest paths first, so a directory never replaces part of a file path inside it.
  for (const [file, name] of Object.entries(names).sort(([a], [b]) => b.length - a.length))
    named = named.split(file).join(name);
  return named;
}

/** Who keeps count of the GDAL processes running (the state DB, so a restart finds them). */
export interface ProcessTracker {
  started(pid: number, command: string): void;
  ended(pid: number): void;
}

/** PAM off: no `.aux.xml` sidecars next to inputs or previews. */
const BASE_ENV = { GDAL_PAM_ENABLED: 'NO' };

/** Up to the last `bytes` of a file written since `from`. */
async function readTail(file: string, from: number, bytes = 16_384): Promise<string> {
  try {
    const { size } = await stat(file);
    const start = Math.max(from, size - bytes);
    if (size <= start) return '';
    const handle = await open(file, 'r');
    try {
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      return buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** The last non-empty lines of GDAL's stderr: the part that says what went wrong. */
function lastLines(text: string, lines = 3): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-lines)
    .join(' | ');
}

export async function runGdal(
  command: string,
  args: string[],
  files: StepFiles,
  options: GdalOptions = {},
): Promise<string> {
  const { signal } = options;
  signal?.throwIfAborted();
  files.log(`run ${command} ${args.map((a) => (/^[\w./:=+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`);
  await files.flush(); // our lines first, then GDAL's
  const errFile = files.path('err');
  const errFrom = await sizeOf(errFile);
  const started = Date.now();
  // Started from the spawner helper, not forked from this (large) process: see src/util/spawner.ts.
  const { pid, ended } = await spawnProgram({
    command,
    args,
    env: { ...process.env, ...BASE_ENV, ...options.env },
    detached: true,
    stdoutFile: files.path('out'),
    stderrFile: errFile,
    captureStdout: options.captureStdout === true,
  });
  if (pid !== undefined) options.track?.started(pid, command);
  const deadline = { passed: false }; // set by the timer, read once the process has ended
  const kill = (): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          deadline.passed = true;
          kill();
        }, options.timeoutMs);
  signal?.addEventListener('abort', kill, { once: true });
  if (signal?.aborted === true) kill(); // stopped while it was being started
  const result = await ended;
  if (pid !== undefined) options.track?.ended(pid);
  if (timer !== undefined) clearTimeout(timer);
  signal?.removeEventListener('abort', kill);
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  if (signal?.aborted === true) {
    files.log(`${command} stopped after ${seconds} s`);
    throw new CogdError('Cancelled', `${command} was stopped`);
  }
  if (deadline.passed) {
    const limit = Math.round((options.timeoutMs ?? 0) / 1000);
    files.log(`${command} timed out after ${limit} s; killed with its process group`);
    throw new CogdError('StepTimeout', `${command} timed out after ${limit} s`);
  }
  if (result.error !== undefined || result.exitCode !== 0) {
    const why =
      result.signal !== undefined
        ? `killed by ${result.signal}`
        : result.exitCode === undefined
          ? (result.error ?? 'could not start')
          : `exit code ${result.exitCode}`;
    files.log(`${command} failed after ${seconds} s: ${why}`);
    const detail = nameObjects(lastLines(await readTail(errFile, errFrom)), options.names);
    throw new CogdError('GdalFailed', `${command} failed (${why})${detail === '' ? '' : `: ${detail}`}`);
  }
  files.log(`${command} done in ${seconds} s`);
  return options.captureStdout === true ? result.stdout.replace(/\r?\n$/, '') : '';
}

/**
 * Inspects an input. A file GDAL cannot open, or opens as something other than a TIFF, is a
 * permanent failure: no retry will make it readable.
 */
export async function inspect(
  file: string,
  files: StepFiles,
  options: GdalOptions & { statistics: boolean; checksum?: boolean },
): Promise<ImageInfo> {
  return (await inspectRaw(file, files, options)).info;
}

/** Like inspect(), with gdalinfo's JSON document as GDAL wrote it (STAC items are made from it). */
export async function inspectRaw(
  file: string,
  files: StepFiles,
  options: GdalOptions & { statistics: boolean; checksum?: boolean },
): Promise<{ info: ImageInfo; json: string }> {
  const args = [
    '-json',
    ...(options.statistics ? ['-approx_stats'] : []),
    ...(options.checksum === true ? ['-checksum'] : []),
    file,
  ];
  let json: string;
  try {
    json = await runGdal('gdalinfo', args, files, { ...options, captureStdout: true });
  } catch (error) {
    if (error instanceof CogdError && error.code === 'GdalFailed') {
      throw new PermanentError('NotReadable', `not a readable TIFF: ${error.message}`, { cause: error });
    }
    if (error instanceof CogdError && error.code === 'StepTimeout') {
      throw new PermanentError('InspectTimeout', `inspection (${error.message}) — the file hangs GDAL`, {
        cause: error,
      });
    }
    throw error;
  }
  let info: ImageInfo;
  try {
    info = parseGdalinfo(json);
  } catch (cause) {
    throw new PermanentError('NotReadable', 'not a readable TIFF: gdalinfo printed no valid JSON', { cause });
  }
  if (info.driver !== 'GTiff' && info.driver !== 'COG') {
    throw new PermanentError('NotTiff', `not a TIFF: GDAL reads it as ${info.driver}`);
  }
  return { info, json };
}

let version: string | undefined;

/** `gdal_translate --version`'s text ("GDAL 3.6.2, released 2023/01/02"), read once. */
export function gdalVersion(): string {
  version ??= (() => {
    try {
      return execFileSync('gdal_translate', ['--version'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 10_000,
      }).trim();
    } catch {
      return 'GDAL (version unknown)';
    }
  })();
  return version;
}
