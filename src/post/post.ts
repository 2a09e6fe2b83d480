/**
 * The post step, a run's final node: confirm every converted row's outputs exist, write the result
 * CSVs next to the manifest (rows verbatim, so a failed CSV can be renamed back to `*raw.csv`), an
 * errors CSV with each failure's reason, then delete the processing file. The run is then final.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
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

/** Jobs read from the state DB at a time: the post step holds one page of rows, never the run. */
const PAGE = 1000;

/** A result CSV up to this size is sent in one PUT from memory; a bigger one is streamed from its file. */
export const INLINE_CSV_BYTES = 8 * 1024 * 1024;

const NEWLINE = Buffer.from('\n');
const ERRORS_COLUMNS = ['key', 'reason', 'line'];

/** A row as a line, byte for byte (a row that is not valid UTF-8 stays as it was). */
const line = (row: string | Buffer): Buffer[] => [typeof row === 'string' ? Buffer.from(row) : row, NEWLINE];

/** Column 1 of a row as text, for the errors CSV (a report: bytes that are not UTF-8 show as U+FFFD). */
const firstField = (raw: string | Buffer): string =>
  (typeof raw === 'string' ? raw : raw.toString('utf8')).split(',')[0] ?? '';

/** The run's jobs in manifest order, a page at a time. */
function* pages(db: StateDB, runId: number): Generator<JobRecord[]> {
  for (let after = 0; ;) {
    const page = db.jobsAfter(runId, after, PAGE);
    if (page.length > 0) yield page;
    if (page.length < PAGE) return;
    after = page.at(-1)!.line;
  }
}

/** A file written in order, waiting for the disk when it falls behind (memory stays one page). */
class Sink {
  readonly stream: WriteStream;
  bytes = 0;
  constructor(readonly file: string) {
    this.stream = createWriteStream(file);
  }
  async write(chunks: Buffer[]): Promise<void> {
    if (chunks.length === 0) return;
    const chunk = Buffer.concat(chunks);
    this.bytes += chunk.length;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

export async function post(
  deps: { db: StateDB; storage: Storage; log: Log },
  run: RunRecord,
  options: { inlineBytes?: number } = {},
): Promise<PostResult> {
  const { db, storage, log } = deps;
  const inlineBytes = options.inlineBytes ?? INLINE_CSV_BYTES;
  const upload = async (key: string, sink: Sink): Promise<void> => {
    if (sink.bytes <= inlineBytes) await storage.put(run.inputBucket, key, await readFile(sink.file), 'text/csv');
    else await storage.uploadFile(run.inputBucket, key, sink.file, 'text/csv');
  };
  db.setRunState(run.id, 'post');
  const outputsOf = (job: JobRecord): string[] => [
    job.imageKey!,
    previewKey(job.imageKey!),
    ...(itemOf(job) === undefined ? [] : [itemOf(job)!.key]),
  ];
  // What must exist in the output bucket, and the STAC items to add: of converted jobs only.
  const outputs: string[] = [];
  const items: ItemSummary[] = [];
  let rows = 0;
  for (const page of pages(db, run.id)) {
    rows += page.length;
    for (const job of page) {
      if (job.state !== 'converted') continue;
      outputs.push(...outputsOf(job));
      const item = itemOf(job);
      if (item !== undefined) items.push(item);
    }
  }
  const existing = await existingKeys(storage, run.outputBucket, outputs);
  outputs.length = 0;

  // The result CSVs and the failure lines of post.out are written to the run's directory as the
  // pages go by, then uploaded from there.
  const processedFile = new Sink(path.join(run.runDir, 'processed.csv.part'));
  const failedFile = new Sink(path.join(run.runDir, 'failed.csv.part'));
  const errorsFile = new Sink(path.join(run.runDir, 'errors.csv'));
  const failureLines = new Sink(path.join(run.runDir, 'post.out.part'));
  let processed = 0;
  let failures = 0;
  const written: string[] = [];
  try {
    await errorsFile.write([Buffer.from(stringify([], { header: true, columns: ERRORS_COLUMNS }))]);
    const fail = async (list: Array<[key: string, at: number | '', reason: string]>): Promise<void> => {
      if (list.length === 0) return;
      failures += list.length;
      const records = list.map(([key, at, reason]) => [key, reason, at]);
      await errorsFile.write([Buffer.from(stringify(records, { columns: ERRORS_COLUMNS }))]);
      const text = list.map(([key, at, reason]) => `failed${at === '' ? '' : ` line ${at}`}: ${key}: ${reason}\n`);
      await failureLines.write([Buffer.from(text.join(''))]);
    };
    for (const page of pages(db, run.id)) {
      const processedRows: Buffer[] = [];
      const failedRows: Buffer[] = [];
      const pageFailures: Array<[string, number, string]> = [];
      for (const job of page) {
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
          processedRows.push(...line(String(job.raw))); // valid rows are text
          processed += 1;
        } else {
          failedRows.push(...line(job.raw));
          pageFailures.push([job.imageKey ?? firstField(job.raw), job.line, reason]);
        }
      }
      await processedFile.write(processedRows);
      await failedFile.write(failedRows);
      await fail(pageFailures);
    }
    if (rows === 0) {
      // The whole manifest was rejected: its content goes to the failed CSV unchanged, nothing lost.
      const manifest = path.join(run.runDir, MANIFEST_FILE);
      await pipeline(createReadStream(manifest), failedFile.stream, { end: false });
      failedFile.bytes += (await stat(manifest)).size;
      await fail([[run.manifestKey, '', run.error ?? 'the manifest was rejected']]);
    }
    await Promise.all([processedFile.close(), failedFile.close(), errorsFile.close(), failureLines.close()]);

    // The watch's collection gains this run's items (converted and all in place) before any CSV says so.
    const collection = db.runConversion(run.id)?.stacCollection;
    if (items.length > 0 && collection !== undefined) {
      await extendCollection(storage, run.outputBucket, collection, items);
      log.info('Run:CollectionExtended', { collection: `s3://${run.outputBucket}/${collection}`, items: items.length });
    }

    if (processed > 0) {
      const key = resultKey(run.base, 'processed', run.ts);
      await upload(key, processedFile);
      written.push(key);
    }
    if (failures > 0) {
      const failedKey = resultKey(run.base, 'failed', run.ts);
      await upload(failedKey, failedFile);
      const errorsKey = resultKey(run.base, 'errors', run.ts);
      await upload(errorsKey, errorsFile);
      written.push(failedKey, errorsKey);
    }
    crashPoint('post:csv-written');
    await storage.delete(run.inputBucket, run.processingKey);
    crashPoint('post:processing-deleted');

    const summary = [
      `manifest s3://${run.inputBucket}/${run.manifestKey}`,
      rows === 0 ? `manifest rejected: ${run.error ?? ''}` : `rows ${rows}, processed ${processed}, failed ${failures}`,
      ...written.map((key) => `wrote s3://${run.inputBucket}/${key}`),
      `deleted s3://${run.inputBucket}/${run.processingKey}`,
    ];
    const out = path.join(run.runDir, 'post.out');
    await writeFile(out, `${summary.join('\n')}\n`);
    await pipeline(createReadStream(failureLines.file), createWriteStream(out, { flags: 'a' }));
  } finally {
    for (const sink of [processedFile, failedFile, failureLines]) {
      sink.stream.destroy();
      await rm(sink.file, { force: true });
    }
    if (!errorsFile.stream.closed) errorsFile.stream.destroy();
  }
  const failedCount = rows === 0 ? 0 : failures;
  db.finishRun(run.id, processed, failedCount);
  log.info('Run:Done', { processed, failed: failedCount, manifestRejected: rows === 0 });
  return { processed, failed: failedCount, written };
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
