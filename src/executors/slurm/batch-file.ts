/**
 * The files a batch leaves in `<run dir>/slurm/` before sbatch runs: `batch-N.json`, the array task
 * index → manifest row mapping with everything a task needs to convert its row (buckets, endpoint,
 * the paths of the key files — never the keys —, the run's conversion settings and the home's
 * limits), and `batch-N.names`, the image's log name per task, one a line, for the task script.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Limits } from '../../convert/rules.js';
import type { ConversionSettings, S3Settings } from '../../types.js';

export interface BatchRow {
  jobId: number;
  imageKey: string;
  cogKey: string;
  previewKey: string;
  /** The image's `<name>` in the run's directory (`<name>.log/.out/.err`). */
  logName: string;
  declaredBands: number;
}

/** What a task converts with: the same settings the local executor takes from the home. */
export interface TaskEngine {
  limits: Limits;
  stepTimeoutMs: number;
  inspectTimeoutMs: number;
  scratchWaitMs: number;
  /** GDAL processes at once within the task (its --cpus-per-task). */
  cpu: number;
}

export interface BatchFile {
  version: 1;
  runId: number;
  batch: number;
  runDir: string;
  inputBucket: string;
  outputBucket: string;
  s3: S3Settings;
  conversion: ConversionSettings;
  engine: TaskEngine;
  /** Task index → row; with `groups`, the rows the groups name. */
  tasks: BatchRow[];
  /**
   * `--rows-per-job` above 1: array task index → the indexes in `tasks` of the rows it converts in
   * sequence. Absent: task i converts row i.
   */
  groups?: number[][];
}

/** `<run dir>/slurm/batch-N` (add `.json` or `.names`). */
export function batchBase(runDir: string, batch: number): string {
  return path.join(runDir, 'slurm', `batch-${batch}`);
}

export async function writeBatchFiles(file: BatchFile): Promise<string> {
  const base = batchBase(file.runDir, file.batch);
  // A log name is a key's base name: the manifest's checks refused control characters in keys.
  for (const row of file.tasks) {
    if (/[\n\r]/.test(row.logName)) throw new Error(`the log name of job ${row.jobId} contains a line break`);
  }
  // Where each array task's own stdout/stderr go: its row's .out/.err, or for a group the group's
  // (each row's own logs are written by the task, row by row).
  const names =
    file.groups === undefined
      ? file.tasks.map((t) => t.logName)
      : file.groups.map((_, index) => `slurm/batch-${file.batch}-group-${index}`);
  await writeFile(`${base}.names`, `${names.join('\n')}\n`, { mode: 0o600 });
  await writeFile(`${base}.json`, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  return `${base}.json`;
}

export async function readBatchFile(file: string): Promise<BatchFile> {
  const data = JSON.parse(await readFile(file, 'utf8')) as Partial<BatchFile>;
  if (data.version !== 1 || !Array.isArray(data.tasks) || typeof data.runDir !== 'string') {
    throw new Error(`${file} is not a cogd batch file`);
  }
  return data as BatchFile;
}
