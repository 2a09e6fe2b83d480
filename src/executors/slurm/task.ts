/**
 * One Slurm array task: converts one manifest row on a compute node, with the very code the local
 * executor runs (`LocalExecutor`: download from S3, inspect, convert, the COG gate, the fidelity
 * check, upload and verify, the STAC item) — one definition, not a second implementation — and
 * writes the task's exit record into the run's directory.
 *
 *   node dist/executors/slurm/task.js <run dir>/slurm/batch-N.json      (SLURM_ARRAY_TASK_ID = row)
 *
 * The S3 keys are read from the key files the batch file names (on the shared filesystem); they
 * never appear in the script, its arguments, its environment or a log. Work files go to a fresh
 * directory under the node's local temporary directory, removed on every exit path.
 *
 * Exit code: 0 converted, 2 failed for good (no retry can fix it), 1 failed otherwise, 3 no exit
 * record could be written (then Slurm's state and this task's .err are all there is).
 *
 * With `--rows-per-job` above 1 the batch file's `groups` name the rows of each task: it converts
 * them in sequence, each with its own logs and its own exit record, one failing never stopping the
 * next; it exits 0 once every row has its record (3 otherwise): the records carry the outcomes.
 */
import { appendFile, mkdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CogdError, describeError, isPermanent } from '../../errors.js';
import { createLog, StepFiles } from '../../log/index.js';
import { createStorage, type Storage } from '../../storage/s3.js';
import { JobClock } from '../../util/clock.js';
import { LocalExecutor } from '../local.js';
import type { JobOutput } from '../types.js';
import { readBatchFile, type BatchFile } from './batch-file.js';
import { exitRecordPath, skipMarker, writeExitRecord, type ExitRecord } from './exit-record.js';

/** Slurm enforces the task's time limit (--time); the conversion's own clock never expires. */
const NO_DEADLINE_MS = 2 ** 31 - 1;

/** The storage, with what it moved counted for the exit record. */
function counting(storage: Storage, sizes: ExitRecord['sizes'], keys: { cog: string; preview: string }): Storage {
  const counted = Object.create(storage) as Storage;
  counted.download = async (...args) => {
    const bytes = await storage.download(...args);
    sizes.input = bytes;
    return bytes;
  };
  counted.uploadFile = async (bucket, key, ...rest) => {
    const uploaded = await storage.uploadFile(bucket, key, ...rest);
    if (key === keys.cog) sizes.cog = uploaded.size;
    if (key === keys.preview) sizes.preview = uploaded.size;
    return uploaded;
  };
  return counted;
}

export async function runTask(batchFile: string, index: number, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const batch = await readBatchFile(batchFile);
  const grouped = batch.groups !== undefined;
  const rows = grouped ? batch.groups![index] : [index];
  const count = grouped ? batch.groups!.length : batch.tasks.length;
  if (rows === undefined || rows.some((r) => batch.tasks[r] === undefined))
    throw new Error(`${batchFile} has no task ${index} (it has ${count})`);
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => () =>
    controller.abort(new CogdError('SlurmSignal', `stopped by Slurm (${signal}): cancelled or over its time limit`));
  process.once('SIGTERM', stop('SIGTERM'));
  process.once('SIGINT', stop('SIGINT'));
  let code = 0;
  for (const r of rows) {
    const rowCode = await runRow(batch, r, index, grouped, controller, env);
    if (!grouped) return rowCode;
    if (rowCode === 3) code = 3;
  }
  return code;
}

/** Converts row `r` of the batch as (part of) array task `index`; returns the row's exit code. */
async function runRow(
  batch: BatchFile,
  r: number,
  index: number,
  grouped: boolean,
  controller: AbortController,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const row = batch.tasks[r]!;
  const record: ExitRecord = {
    version: 1,
    jobId: row.jobId,
    batch: batch.batch,
    task: index,
    slurmJobId: env['SLURM_JOB_ID'],
    host: os.hostname(),
    outcome: 'failed',
    sizes: {},
    startedAt: new Date().toISOString(),
    endedAt: '',
    ms: 0,
  };
  const files = new StepFiles(batch.runDir, row.logName);
  files.log(
    `Slurm task ${env['SLURM_ARRAY_JOB_ID'] ?? '?'}_${index} (job ${env['SLURM_JOB_ID'] ?? '?'}) on ${record.host}: converting s3://${batch.inputBucket}/${row.imageKey}`,
  );
  if (grouped) files.log(`one of the rows of this task's group (batch ${batch.batch}, row ${r} of its batch file)`);
  const log = createLog({ consoleLevel: 'warn' });
  const scratch = path.join(
    env['TMPDIR'] ?? os.tmpdir(),
    `cogd-task-${env['SLURM_JOB_ID'] ?? process.pid}${grouped ? `-${row.jobId}` : ''}`,
  );
  let storage: Storage | undefined;
  let output: JobOutput | undefined;
  try {
    // A row of a group removed (`cogd rm`) before its turn: not converted, its task goes on.
    if (grouped && (await stat(skipMarker(batch.runDir, row.jobId)).catch(() => undefined)) !== undefined) {
      throw new CogdError('Removed', 'removed by user before its turn in its group task');
    }
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    storage = await createStorage(batch.s3, { log });
    const executor = new LocalExecutor({
      scratch,
      cpu: batch.engine.cpu,
      io: 4,
      stepTimeoutMs: batch.engine.stepTimeoutMs,
      inspectTimeoutMs: batch.engine.inspectTimeoutMs,
      limits: batch.engine.limits,
      scratchWaitMs: batch.engine.scratchWaitMs,
    });
    output = await executor.run(
      {
        jobId: row.jobId,
        runId: batch.runId,
        imageKey: row.imageKey,
        declaredBands: row.declaredBands,
        inputBucket: batch.inputBucket,
        outputBucket: batch.outputBucket,
        cogKey: row.cogKey,
        previewKey: row.previewKey,
        conversion: batch.conversion,
        storage: counting(storage, record.sizes, { cog: row.cogKey, preview: row.previewKey }),
        started: () => undefined,
        clock: new JobClock(NO_DEADLINE_MS, () => undefined),
        files,
        log,
      },
      controller.signal,
    );
    record.outcome = 'ok';
    if (output?.item !== undefined) record.item = output.item;
  } catch (caught) {
    // Stopped by Slurm: that is the reason, whatever the step that was interrupted says.
    const error: unknown = controller.signal.aborted ? controller.signal.reason : caught;
    const reason = describeError(error);
    record.reason = reason;
    record.permanent = isPermanent(error);
    if (error instanceof CogdError) record.code = error.code;
    files.log(`failed: ${reason}`);
    process.stderr.write(`cogd-task: ${grouped ? `${row.logName}: ` : ''}${reason}\n`);
    // A group's stderr is the group's: the row's own .err says it too.
    if (grouped) await appendFile(files.path('err'), `cogd-task: ${reason}\n`).catch(() => undefined);
  } finally {
    storage?.close();
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
  const ended = new Date();
  record.endedAt = ended.toISOString();
  record.ms = ended.getTime() - Date.parse(record.startedAt);
  files.log(`Slurm task done: ${record.outcome} in ${(record.ms / 1000).toFixed(2)} s`);
  await files.flush();
  await log.close();
  const file = exitRecordPath(batch.runDir, batch.batch, index, grouped ? row.jobId : undefined);
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeExitRecord(file, record);
  } catch (error) {
    process.stderr.write(`cogd-task: cannot write the exit record ${file}: ${describeError(error)}\n`);
    return 3;
  }
  return record.outcome === 'ok' ? 0 : record.permanent === true ? 2 : 1;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const [batchFile] = process.argv.slice(2);
  const index = Number(process.env['SLURM_ARRAY_TASK_ID']);
  if (batchFile === undefined || !Number.isInteger(index) || index < 0) {
    process.stderr.write('usage: SLURM_ARRAY_TASK_ID=N node task.js BATCH.json (run by cogd through sbatch)\n');
    process.exitCode = 3;
  } else {
    runTask(batchFile, index).then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        process.stderr.write(`cogd-task: ${describeError(error)}\n`);
        process.exitCode = 3;
      },
    );
  }
}
