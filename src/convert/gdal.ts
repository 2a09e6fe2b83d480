/**
 * Running GDAL: one process per command, never through a shell, output captured into the job's
 * `.out` / `.err` files and the command line into its `.log`.
 */
import { execa } from 'execa';
import { CogdError, PermanentError } from '../errors.js';
import type { StepFiles } from '../log/index.js';
import type { BandInfo, ImageInfo } from './rules.js';

/**
 * GDAL's environment for cogd's commands. PAM off: no `.aux.xml` sidecars next to inputs or previews.
 */
const GDAL_ENV = { GDAL_PAM_ENABLED: 'NO', CPL_LOG_ERRORS: 'ON' };

export interface GdalResult {
  stdout: string;
  stderr: string;
}

/** The last non-empty lines of GDAL's stderr: the part that says what went wrong. */
function tail(text: string, lines = 3): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-lines).join(' | ');
}

export async function runGdal(command: string, args: string[], files: StepFiles, signal?: AbortSignal): Promise<GdalResult> {
  signal?.throwIfAborted();
  files.log(`run ${command} ${args.map((a) => (/^[\w./:=+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`);
  const started = Date.now();
  // Each GDAL command leads its own process group, so a stop or a removal kills everything it
  // started, not just the first process.
  const subprocess = execa(command, args, { env: GDAL_ENV, reject: false, stripFinalNewline: false, detached: true });
  const kill = (): void => {
    if (subprocess.pid === undefined) return;
    try {
      process.kill(-subprocess.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  signal?.addEventListener('abort', kill, { once: true });
  const result = await subprocess;
  signal?.removeEventListener('abort', kill);
  files.out(result.stdout);
  files.err(result.stderr);
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  if (signal?.aborted === true) {
    files.log(`${command} stopped after ${seconds} s`);
    throw new CogdError('Cancelled', `${command} was stopped`);
  }
  if (result.failed) {
    const why = result.signal !== undefined ? `killed by ${result.signal}` : result.exitCode === undefined ? (result.originalMessage ?? 'could not start') : `exit code ${result.exitCode}`;
    files.log(`${command} failed after ${seconds} s: ${why}`);
    const detail = tail(result.stderr);
    throw new CogdError('GdalFailed', `${command} failed (${why})${detail === '' ? '' : `: ${detail}`}`, { cause: result });
  }
  files.log(`${command} done in ${seconds} s`);
  return { stdout: result.stdout, stderr: result.stderr };
}

interface GdalinfoBand {
  type?: string;
  colorInterpretation?: string;
  colorTable?: unknown;
  minimum?: number;
  maximum?: number;
  mean?: number;
  stdDev?: number;
}

/** Reads `gdalinfo -json` output into the facts the rules need. */
export function parseGdalinfo(json: string): ImageInfo {
  const doc = JSON.parse(json) as { driverShortName?: string; size?: number[]; bands?: GdalinfoBand[] };
  const bands: BandInfo[] = (doc.bands ?? []).map((b) => {
    const band: BandInfo = { type: b.type ?? 'Unknown', hasColorTable: b.colorTable !== undefined };
    if (b.colorInterpretation !== undefined) band.colorInterpretation = b.colorInterpretation;
    if (typeof b.minimum === 'number') band.min = b.minimum;
    if (typeof b.maximum === 'number') band.max = b.maximum;
    if (typeof b.mean === 'number') band.mean = b.mean;
    if (typeof b.stdDev === 'number') band.stdDev = b.stdDev;
    return band;
  });
  return { driver: doc.driverShortName ?? 'unknown', width: doc.size?.[0] ?? 0, height: doc.size?.[1] ?? 0, bands };
}

/**
 * Inspects an input. A file GDAL cannot open, or opens as something other than a TIFF, is a
 * permanent failure: no retry will make it readable.
 */
export async function inspect(file: string, files: StepFiles, options: { statistics: boolean; signal?: AbortSignal }): Promise<ImageInfo> {
  const args = ['-json', ...(options.statistics ? ['-approx_stats'] : []), file];
  let result: GdalResult;
  try {
    result = await runGdal('gdalinfo', args, files, options.signal);
  } catch (error) {
    if (error instanceof CogdError && error.code === 'GdalFailed') {
      throw new PermanentError('NotReadable', `not a readable TIFF: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const info = parseGdalinfo(result.stdout);
  if (info.driver !== 'GTiff' && info.driver !== 'COG') {
    throw new PermanentError('NotTiff', `not a TIFF: GDAL reads it as ${info.driver}`);
  }
  return info;
}
