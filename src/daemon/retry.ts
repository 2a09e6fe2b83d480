/**
 * `cogd retry RUN`, the rescue DAG of cogd: the rows of a finished run that did not convert (or the
 * rows named, or all) become a new run of the same watch, linked to the original. The rows come
 * from the manifest copy in the original's run directory — never from the bucket, where the
 * processing file is long gone — and keep their manifest line numbers. The new run is recorded as
 * claimed and planned: a processing object with its rows is put first (the post step deletes it as
 * for any run), then the run and its jobs in one transaction; whoever works on the home executes
 * it. The original's records and result CSVs are not touched.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { planManifest } from '../dag/plan.js';
import { CogdError, UsageError } from '../errors.js';
import { MANIFEST_FILE, resultKey, timestamp } from '../manifest/names.js';
import type { NewJob, RunRecord, StateDB } from '../state/db.js';
import type { Storage } from '../storage/s3.js';
import type { Watch } from '../types.js';
import { uniqueRunDir } from '../watch/claim.js';

export interface RetryChoice {
  /** Manifest lines to run again; by default every row that did not convert. */
  rows?: readonly number[];
  /** Every row the run had. */
  all?: boolean;
}

export interface RetryDeps {
  db: StateDB;
  /** `<home>/logs` */
  logDir: string;
  storageFor: (watch: Watch) => Promise<Storage>;
  now?: () => Date;
}

/** The original run and its watch, checked: finished, of a watch still watched, its manifest copy on disk. */
function original(db: StateDB, runId: number): { run: RunRecord; watch: Watch; manifest: string } {
  const run = db.run(runId);
  if (run === undefined) throw new CogdError('UnknownRun', `there is no run ${runId}`, { hint: 'see `cogd status`' });
  if (run.state !== 'done') {
    throw new CogdError('RunNotFinished', `run ${runId} is not finished (it is ${run.state})`, {
      hint: `retry it once it is done; \`cogd status ${runId}\` shows where it is`,
    });
  }
  const watch = db.watch(run.watchId);
  if (watch === undefined || watch.removedAt !== null) {
    throw new CogdError('WatchRemoved', `run ${runId}'s watch w${run.watchId} was removed`, {
      hint: 'start the watch again (cogd start -p …) and retry',
    });
  }
  const manifest = path.join(run.runDir, MANIFEST_FILE);
  if (!existsSync(manifest)) {
    throw new CogdError('ManifestCopyGone', `run ${runId}'s manifest copy ${manifest} is gone`, {
      hint: 'upload the manifest to the bucket again instead',
    });
  }
  return { run, watch, manifest };
}

/** Which planned rows to run again: among the rows the run had (a retry has only some). */
function chooseRows(db: StateDB, run: RunRecord, planned: NewJob[], choice: RetryChoice): NewJob[] {
  const jobs = db.jobs(run.id);
  const lines = new Set(jobs.map((j) => j.line));
  planned = planned.filter((j) => lines.has(j.line));
  if (choice.rows !== undefined) {
    const unknown = choice.rows.filter((line) => !lines.has(line));
    if (unknown.length > 0) {
      throw new UsageError(
        `--rows: run ${run.id} has no row on line ${unknown.join(', ')}`,
        `its rows are on lines ${[...lines].slice(0, 40).join(', ')}${lines.size > 40 ? ', …' : ''}`,
      );
    }
    const chosen = new Set(choice.rows);
    return planned.filter((j) => chosen.has(j.line));
  }
  if (choice.all === true) return planned;
  const converted = new Set(jobs.filter((j) => j.state === 'converted').map((j) => j.line));
  return planned.filter((j) => !converted.has(j.line));
}

/** The rows as a CSV: each row's bytes as the manifest had them (a non-UTF-8 row too). */
function rowsCsv(jobs: readonly NewJob[]): Buffer {
  return Buffer.concat(
    jobs.flatMap((j) => [typeof j.raw === 'string' ? Buffer.from(j.raw) : j.raw, Buffer.from('\n')]),
  );
}

/** Records the retry run; resolves it with the lines it runs again. */
export async function retryRun(
  deps: RetryDeps,
  runId: number,
  choice: RetryChoice,
): Promise<{ run: RunRecord; lines: number[] }> {
  const { db } = deps;
  if (choice.rows !== undefined && choice.all === true) {
    throw new UsageError('give --rows or --all, not both');
  }
  const { run: first, watch, manifest } = original(db, runId);
  const plan = await planManifest(manifest);
  if (plan.error !== null) {
    throw new CogdError('ManifestRejected', `run ${runId}'s manifest was rejected as a whole: ${plan.error}`, {
      hint: 'nothing to retry; fix the manifest and upload it again',
    });
  }
  const jobs = chooseRows(db, first, plan.jobs, choice);
  if (jobs.length === 0) {
    throw new CogdError('NothingToRetry', `every row of run ${runId} converted: nothing to retry`, {
      hint: '--all runs every row again, --rows 3,7 the rows named',
    });
  }

  // Its own result names: the timestamp of now, moved on while another run of the manifest has it.
  let when = (deps.now ?? (() => new Date()))();
  let ts = timestamp(when);
  while (db.runTsTaken(first.inputBucket, first.base, ts)) {
    when = new Date(when.getTime() + 1000);
    ts = timestamp(when);
  }
  const runDir = uniqueRunDir({ db, logDir: deps.logDir }, ts);
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  await copyFile(manifest, path.join(runDir, MANIFEST_FILE));
  const lines = jobs.map((j) => j.line);
  const processingKey = resultKey(first.base, 'processing', ts);
  const storage = await deps.storageFor(watch);
  try {
    await storage.put(first.inputBucket, processingKey, rowsCsv(jobs), 'text/csv');
  } finally {
    storage.close();
  }
  const run = db.insertRetryRun(
    {
      watchId: first.watchId,
      inputBucket: first.inputBucket,
      outputBucket: watch.outputBucket,
      manifestKey: first.manifestKey,
      manifestEtag: `retry:${first.id}:${path.basename(runDir)}`,
      manifestMtime: when.toISOString(),
      base: first.base,
      ts,
      processingKey,
      runDir,
      batchName: first.batchName,
    },
    first.id,
    watch.conversion,
    jobs,
  );
  await writeFile(
    path.join(runDir, 'run.json'),
    `${JSON.stringify(
      {
        run: run.id,
        retryOf: first.id,
        manifest: `s3://${run.inputBucket}/${run.manifestKey}`,
        lines,
        processing: processingKey,
      },
      null,
      2,
    )}\n`,
  );
  return { run, lines };
}
