/**
 * Groups of rows (`--rows-per-job N` above 1): one HTCondor proc converts up to N rows in sequence
 * (`submit-templates/cog-group.sh`, which runs the run's `cog-worker.sh` once per row), while each
 * row keeps its own job in cogd — its own outcome, logs, retries and removal.
 *
 *   forming    a row joins a group until an attempt of it failed; a retry goes alone (a one-row
 *              group), so a row that failed never takes others with it a second time (an attempt
 *              a crash or a shutdown interrupted is no failure: its row may join a group again). Each row's input is
 *              HEADed first: HTCondor transfers a proc's inputs all or nothing, so a missing one
 *              is left out of the transfer and its row fails alone, in the group, saying so
 *   submitting one cluster per batch, one proc per group (`cog-group.sub` and a block per group:
 *              its inputs from S3, its output directory, a `queue`)
 *   finishing  HTCondor brings each group's directory back to `<run dir>/condor/groups/`; once the
 *              proc terminated, each row's exit code, logs and outputs are read from there — its
 *              `.out`/`.err` filed as the row's logs, the outputs of a row that converted uploaded
 *              by cogd (HTCondor transfers outputs all or nothing: it cannot skip a failed row's)
 *
 * A proc that fails as a whole (held until removed, killed) fails each of its rows with a
 * transient error: each is retried alone.
 */
import { copyFile, mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { CogdError, PermanentError } from '../../errors.js';
import type { Waiter } from '../batch.js';
import type { JobSpec } from '../types.js';
import { WORKER_PERMANENT_EXIT } from './events.js';
import { condorUnsafeKey, TEMPLATES_DIR, WORKER_FACTS } from './render.js';
import { factsFiles } from './stac.js';

export const GROUP_WORKER = path.join(TEMPLATES_DIR, 'cog-group.sh');
export const GROUP_TEMPLATE = path.join(TEMPLATES_DIR, 'cog-group.sub');

/** Where the groups of a run come back to (the procs' initialdir). */
export const groupsDir = (runDir: string): string => path.join(runDir, 'condor', 'groups');

/** The name of proc `proc` of batch `batch`: its rows file, its directory, its stdout/stderr. */
export const groupName = (batch: number, proc: number): string => `batch-${batch}.${proc}`;

/** The exit code cog-group.sh gives a row whose input was missing (transient: it may appear). */
export const MISSING_INPUT_EXIT = 3;

/**
 * Splits a batch into groups of at most `rowsPerJob` rows: rows together, retries alone (`failed`
 * says whether an attempt of the job failed). `absent` names the jobs whose input object a HEAD
 * did not find (a failed HEAD counts as found: HTCondor's transfer then says what is wrong).
 */
export async function formGroups(
  batch: Waiter[],
  rowsPerJob: number,
  failed: (jobId: number) => boolean,
): Promise<{ groups: Waiter[][]; absent: Set<number> }> {
  const together = batch.filter(({ job }) => !failed(job.jobId));
  const groups: Waiter[][] = [];
  for (let i = 0; i < together.length; i += rowsPerJob) groups.push(together.slice(i, i + rowsPerJob));
  for (const waiter of batch) if (failed(waiter.job.jobId)) groups.push([waiter]);
  const absent = new Set<number>();
  await Promise.all(
    batch.map(async ({ job }) => {
      const head = await job.storage.head(job.inputBucket, job.imageKey).catch(() => null);
      if (head === undefined) absent.add(job.jobId);
    }),
  );
  return { groups, absent };
}

/** A path HTCondor's comma-separated file lists and the submit description can carry. */
function checkPath(file: string): string {
  if (/[\s,;="]/.test(file))
    throw new PermanentError(
      'Template',
      `${file} contains white space, ",", ";", "=" or a quote, which HTCondor's file lists cannot carry`,
      { hint: 'use a --home without them, or --rows-per-job 1' },
    );
  return file;
}

/**
 * The per-group blocks of a batch's submit description, and the rows files they name (to write
 * before condor_submit). `inputUrl` is the input bucket's S3 URL; `worker` the run's cog-worker.sh.
 */
export function groupBlocks(
  runDir: string,
  batch: number,
  groups: Waiter[][],
  inputUrl: string,
  worker: string,
  absent: Set<number>,
): { blocks: string; rowsFiles: Array<[file: string, text: string]> } {
  const dir = checkPath(groupsDir(runDir));
  const blocks: string[] = [];
  const rowsFiles: Array<[string, string]> = [];
  groups.forEach((group, proc) => {
    const name = groupName(batch, proc);
    const rowsFile = path.join(dir, `${name}.rows`);
    const lines: string[] = [];
    const inputs: string[] = [];
    for (const { job } of group) {
      for (const key of [job.imageKey, job.files.name]) {
        const reason = condorUnsafeKey(key);
        if (reason !== undefined) throw new CogdError('UnsafeKey', reason);
      }
      if (absent.has(job.jobId)) {
        lines.push(`- ${job.files.name}`);
        continue;
      }
      lines.push(`${path.posix.basename(job.imageKey)} ${job.files.name}`);
      inputs.push(`${inputUrl}/${job.imageKey}`);
    }
    rowsFiles.push([rowsFile, `${lines.join('\n')}\n`]);
    blocks.push(
      `# group ${proc}: ${group.length} row${group.length === 1 ? '' : 's'}`,
      `transfer_input_files    = ${[checkPath(worker), rowsFile, ...inputs].join(', ')}`,
      `transfer_output_files   = ${name}`,
      `arguments               = ${name}`,
      `output                  = ${path.join(dir, `${name}.out`)}`,
      `error                   = ${path.join(dir, `${name}.err`)}`,
      'queue',
      '',
    );
  });
  return { blocks: blocks.join('\n'), rowsFiles };
}

/**
 * A row's outcome once its group's proc terminated normally: its logs filed as the row's own, and
 * for a row that converted its outputs uploaded and its STAC facts put where a one-row job's land.
 * Rejects with the row's own reason (a `PermanentError` for the worker's permanent exit).
 */
export async function finishRow(job: JobSpec, runDir: string, batch: number, proc: number): Promise<void> {
  const dir = path.join(groupsDir(runDir), groupName(batch, proc));
  const name = job.files.name;
  const said = await readFile(path.join(dir, `${name}.exit`), 'utf8').catch(() => undefined);
  if (said === undefined) {
    throw new CogdError(
      'CondorJobFailed',
      `the group job ${groupName(batch, proc)} ended without an outcome for this row (see ${path.relative(runDir, dir)}.err)`,
    );
  }
  await Promise.all(
    (['out', 'err'] as const).map((kind) =>
      copyFile(path.join(dir, `${name}.${kind}`), job.files.path(kind)).catch(() => undefined),
    ),
  );
  const code = Number(said.trim());
  if (code !== 0) {
    const err = await readFile(job.files.path('err'), 'utf8').catch(() => '');
    const lines = err.split('\n').filter((l) => l.trim() !== '');
    const reason = [...lines].reverse().find((l) => l.startsWith('cogd-worker:')) ?? lines.at(-1);
    const ErrorType = code === WORKER_PERMANENT_EXIT ? PermanentError : CogdError;
    if (code === MISSING_INPUT_EXIT) {
      throw new CogdError(
        'CondorJobFailed',
        `s3://${job.inputBucket}/${job.imageKey} does not exist (no object when its group was submitted)`,
      );
    }
    throw new ErrorType(
      'CondorJobFailed',
      `the worker exited with code ${said.trim()}${reason === undefined ? '' : `: ${reason}`}`,
    );
  }
  const out = path.join(dir, name);
  if (job.conversion.stac) {
    const facts = factsFiles(runDir, name);
    await mkdir(path.dirname(facts.facts), { recursive: true });
    for (const [fact, file] of Object.entries(WORKER_FACTS) as Array<[keyof typeof WORKER_FACTS, string]>) {
      await rename(path.join(out, file), facts[fact]).catch((error: unknown) => {
        // Already moved by an earlier finish of this row (a restart between the two).
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      });
    }
  }
  await job.storage.uploadFile(job.outputBucket, job.cogKey, path.join(out, 'cog.tif'), 'image/tiff');
  await job.storage.uploadFile(job.outputBucket, job.previewKey, path.join(out, 'preview.jpg'), 'image/jpeg');
  job.files.log(`uploaded the outputs the group job ${groupName(batch, proc)} brought back`);
}
