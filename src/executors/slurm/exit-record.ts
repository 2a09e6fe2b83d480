/**
 * The exit record: what a Slurm task leaves in the run's directory (on the filesystem the nodes
 * share) when it ends — its outcome, the reason of a failure, sizes and timings, and its STAC
 * item's summary — one JSON file per batch and task, written whole (a temporary file renamed), so
 * cogd never reads half a record. cogd decides a task's outcome from it and Slurm's state together,
 * and from it alone once Slurm has forgotten the task.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ItemSummary } from '../types.js';

export interface ExitRecord {
  version: 1;
  jobId: number;
  batch: number;
  task: number;
  /** SLURM_JOB_ID of the task (its own job id). */
  slurmJobId: string | undefined;
  host: string;
  outcome: 'ok' | 'failed';
  /** For a failure: no retry can fix it (not a TIFF, a profile that cannot hold the image…). */
  permanent?: boolean;
  /** cogd's error code (NoSuchKey, NotCog…). */
  code?: string;
  reason?: string;
  /** Bytes downloaded and uploaded. */
  sizes: { input?: number; cog?: number; preview?: number };
  startedAt: string;
  endedAt: string;
  ms: number;
  item?: ItemSummary;
}

/**
 * `<run dir>/slurm/exit/b<batch>-t<task>.json`; for a row of a group (`--rows-per-job`, several
 * rows per task) `b<batch>-t<task>-j<job id>.json`: each row its own record.
 */
export function exitRecordPath(runDir: string, batch: number, task: number, groupedJob?: number): string {
  return path.join(
    runDir,
    'slurm',
    'exit',
    `b${batch}-t${task}${groupedJob === undefined ? '' : `-j${groupedJob}`}.json`,
  );
}

/**
 * `<run dir>/slurm/skip/<job id>`: left by cogd for a row of a group removed while its task runs
 * on for the group's other rows; the task passes over a row with a marker.
 */
export function skipMarker(runDir: string, jobId: number): string {
  return path.join(runDir, 'slurm', 'skip', String(jobId));
}

/** Writes the record whole: a reader sees it complete or not at all. */
export async function writeExitRecord(file: string, record: ExitRecord): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The record of a task, if it wrote one that belongs to `jobId`; a file that is not a record (or
 * another job's) is an error, named.
 */
export async function readExitRecord(file: string, jobId: number): Promise<ExitRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const data = JSON.parse(text) as Partial<Record<keyof ExitRecord, unknown>>;
  if (data.version !== 1 || (data.outcome !== 'ok' && data.outcome !== 'failed') || !isNumber(data.jobId)) {
    throw new Error(`${file} is not a cogd exit record`);
  }
  if (data.jobId !== jobId) throw new Error(`${file} is the exit record of job ${data.jobId}, not of job ${jobId}`);
  return data as unknown as ExitRecord;
}
