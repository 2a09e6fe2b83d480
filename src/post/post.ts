/**
 * The post step, a run's final node: confirm every converted row's outputs exist, write the result
 * CSVs next to the manifest (rows verbatim, so a failed CSV can be renamed back to `*raw.csv`), an
 * errors CSV with each failure's reason, then delete the processing file. The run is then final.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { crashPoint } from '../util/crash.js';
import { describeError } from '../errors.js';
import type { Log } from '../log/index.js';
import { MANIFEST_FILE, previewKey, resultKey } from '../manifest/names.js';
import type { RunRecord, StateDB } from '../state/db.js';
import type { Storage } from '../storage/s3.js';
import type { ItemSummary } from '../executors/types.js';
import type { JobRecord } from '../state/db.js';
import { extendCollection } from './collection.js';
import { existingKeys } from './reconcile.js';

/** The STAC item a converted job wrote, if it wrote one. */
function itemOf(job: JobRecord): ItemSummary | undefined {
  return job.item === null ? undefined : (JSON.parse(job.item) as ItemSummary);
}

export interface PostResult {
  processed: number;
  failed: number;
  /** Keys written in the input bucket. */
  written: string[];
}

interface Failure {
  key: string;
  line: number | '';
  reason: string;
}

/** Rows as lines, byte for byte (a row that is not valid UTF-8 stays as it was). */
const lines = (rows: Array<string | Buffer>): Buffer =>
  Buffer.concat(rows.flatMap((row) => [typeof row === 'string' ? Buffer.from(row) : row, NEWLINE]));
const NEWLINE = Buffer.from('\n');

/** Column 1 of a row as text, for the errors CSV (a report: bytes that are not UTF-8 show as U+FFFD). */
const firstField = (raw: string | Buffer): string =>
  (typeof raw === 'string' ? raw : raw.toString('utf8')).split(',')[0] ?? '';

export async function post(deps: { db: StateDB; storage: Storage; log: Log }, run: RunRecord): Promise<PostResult> {
  const { db, storage, log } = deps;
  db.setRunState(run.id, 'post');
  const jobs = db.jobs(run.id);
  const outputsOf = (job: JobRecord): string[] => [
    job.imageKey!,
    previewKey(job.imageKey!),
    ...(itemOf(job) === undefined ? [] : [itemOf(job)!.key]),
  ];
  const outputs = jobs.filter((job) => job.state === 'converted').flatMap(outputsOf);
  const existing = await existingKeys(storage, run.outputBucket, outputs);

  const processed: string[] = [];
  const failedRows: Array<string | Buffer> = [];
  const failures: Failure[] = [];
  for (const job of jobs) {
    let reason: string | null = null;
    if (job.state === 'converted') {
      const missing = outputsOf(job).filter((key) => !existing.has(key));
      if (missing.length > 0) {
        reason = `converted, but ${missing.map((key) => `s3://${run.outputBucket}/${key}`).join(' and ')} missing at post`;
        db.setJobState(job.id, 'failed', { error: reason });
      }
    } else if (job.state === 'removed') {
      reason = 'removed by user';
    } else {
      reason = job.error ?? `not finished (${job.state})`;
    }
    if (reason === null) {
      processed.push(String(job.raw)); // valid rows are text
    } else {
      failedRows.push(job.raw);
      failures.push({ key: job.imageKey ?? firstField(job.raw), line: job.line, reason });
    }
  }

  // The watch's collection gains this run's items (converted and all in place) before any CSV says so.
  const items = jobs.filter((job) => job.state === 'converted').flatMap((job) => itemOf(job) ?? []);
  const collection = db.runConversion(run.id)?.stacCollection;
  if (items.length > 0 && collection !== undefined) {
    await extendCollection(storage, run.outputBucket, collection, items);
    log.info('Run:CollectionExtended', { collection: `s3://${run.outputBucket}/${collection}`, items: items.length });
  }

  let failedBody = lines(failedRows);
  if (jobs.length === 0) {
    // The whole manifest was rejected: its content goes to the failed CSV unchanged, nothing lost.
    failedBody = await readFile(path.join(run.runDir, MANIFEST_FILE));
    failures.push({ key: run.manifestKey, line: '', reason: run.error ?? 'the manifest was rejected' });
  }

  const written: string[] = [];
  const errorsCsv = stringify(
    failures.map((f) => [f.key, f.reason, f.line]),
    { header: true, columns: ['key', 'reason', 'line'] },
  );
  await writeFile(path.join(run.runDir, 'errors.csv'), errorsCsv);
  if (processed.length > 0) {
    const key = resultKey(run.base, 'processed', run.ts);
    await storage.put(run.inputBucket, key, lines(processed), 'text/csv');
    written.push(key);
  }
  if (failures.length > 0) {
    const failedKey = resultKey(run.base, 'failed', run.ts);
    await storage.put(run.inputBucket, failedKey, failedBody, 'text/csv');
    const errorsKey = resultKey(run.base, 'errors', run.ts);
    await storage.put(run.inputBucket, errorsKey, errorsCsv, 'text/csv');
    written.push(failedKey, errorsKey);
  }
  crashPoint('post:csv-written');
  await storage.delete(run.inputBucket, run.processingKey);
  crashPoint('post:processing-deleted');

  const summary = [
    `manifest s3://${run.inputBucket}/${run.manifestKey}`,
    jobs.length === 0
      ? `manifest rejected: ${run.error ?? ''}`
      : `rows ${jobs.length}, processed ${processed.length}, failed ${failures.length}`,
    ...written.map((key) => `wrote s3://${run.inputBucket}/${key}`),
    `deleted s3://${run.inputBucket}/${run.processingKey}`,
    ...failures.map((f) => `failed${f.line === '' ? '' : ` line ${f.line}`}: ${f.key}: ${f.reason}`),
  ];
  await writeFile(path.join(run.runDir, 'post.out'), `${summary.join('\n')}\n`);
  const failedCount = jobs.length === 0 ? 0 : failures.length;
  db.finishRun(run.id, processed.length, failedCount);
  log.info('Run:Done', { processed: processed.length, failed: failedCount, manifestRejected: jobs.length === 0 });
  return { processed: processed.length, failed: failedCount, written };
}

/** Records a post step that could not finish; the run stays in `post` and the next poll retries it. */
export async function recordPostFailure(
  deps: { db: StateDB; log: Log },
  run: RunRecord,
  error: unknown,
): Promise<void> {
  const reason = describeError(error);
  deps.db.setPostError(run.id, reason);
  deps.log.error('Run:PostFailed', { reason });
  await writeFile(path.join(run.runDir, 'post.err'), `${new Date().toISOString()} post failed: ${reason}\n`, {
    flag: 'a',
  });
}
