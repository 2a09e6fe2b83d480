/**
 * The post step streams its result CSVs from the state DB a page at a time. On a run of 50,000 rows
 * in every final and unfinished state (rejected rows, rows that are not UTF-8, reasons with commas
 * and quotes, converted rows whose outputs are missing) the CSVs it uploads and the errors.csv it
 * keeps are byte for byte what a plain writer makes of the same rows held in memory — the way the
 * post step wrote them before it streamed.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'csv-stringify/sync';
import { TEST_WATCH_SETTINGS } from '../support/state.js';
import { planRows } from '../../src/dag/plan.js';
import { createLog } from '../../src/log/index.js';
import { previewKey, resultKey } from '../../src/manifest/names.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { post } from '../../src/post/post.js';
import { StateDB, type JobRecord } from '../../src/state/db.js';
import { createStorage, type Storage } from '../../src/storage/s3.js';
import { cogd, endpoint, freshBuckets, put, s3, tempDir } from '../support/helpers.js';

const ROWS = 50_000;
let dir: string;
let db: StateDB;
let storage: Storage;

beforeAll(async () => {
  dir = await tempDir('cogd-post-');
  db = new StateDB(path.join(dir, 'cogd.db'));
  const { keyFiles } = await import('../support/helpers.js');
  const { access, secret } = await keyFiles(dir);
  storage = await createStorage({
    endpoint: endpoint(),
    accessKeyFile: access,
    secretKeyFile: secret,
    region: 'us-east-1',
  });
});

afterAll(() => {
  storage.close();
  db.close();
});

async function object(bucket: string, key: string): Promise<Buffer> {
  const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** The result files of a run's jobs, written in memory by the simplest code that does it. */
function expected(jobs: JobRecord[], present: (key: string) => boolean, outputBucket: string) {
  const processed: Buffer[] = [];
  const failed: Buffer[] = [];
  const errors: Array<[string, string, number]> = [];
  for (const job of jobs) {
    let reason: string | null = null;
    if (job.state === 'converted') {
      const missing = [job.imageKey!, previewKey(job.imageKey!)].filter((key) => !present(key));
      if (missing.length > 0)
        reason = `converted, but ${missing.map((k) => `s3://${outputBucket}/${k}`).join(' and ')} missing at post`;
    } else if (job.state === 'removed') reason = 'removed by user';
    else reason = job.error ?? `not finished (${job.state})`;
    const raw = typeof job.raw === 'string' ? Buffer.from(job.raw) : job.raw;
    if (reason === null) processed.push(raw, Buffer.from('\n'));
    else {
      failed.push(raw, Buffer.from('\n'));
      const key = job.imageKey ?? raw.toString('utf8').split(',')[0]!;
      errors.push([key, reason, job.line]);
    }
  }
  return {
    processed: Buffer.concat(processed),
    failed: Buffer.concat(failed),
    errors: Buffer.from(stringify(errors, { header: true, columns: ['key', 'reason', 'line'] })),
    failures: errors.length,
  };
}

describe('post on a big run', () => {
  it(`writes byte-identical CSVs for ${ROWS} rows, a page at a time`, { timeout: 120_000 }, async () => {
    const buckets = await freshBuckets();
    const watch = db.saveWatch(
      { pattern: '*raw.csv', inputBucket: buckets.input, outputBucket: buckets.output, endpoint: endpoint() },
      { ...TEST_WATCH_SETTINGS, retries: 0, retryDelayMs: 0 },
    );
    const runDir = path.join(dir, 'run');
    await mkdir(runDir);
    const run = db.insertRun({
      watchId: watch.id,
      inputBucket: buckets.input,
      outputBucket: buckets.output,
      manifestKey: 'big-raw.csv',
      manifestEtag: '"e"',
      manifestMtime: '2026-01-01T00:00:00.000Z',
      base: 'big-',
      ts: '20260101-000000',
      processingKey: 'big-processing-20260101-000000.csv',
      runDir,
      batchName: 'COG-Pipeline-DAG-*raw.csv',
    });
    // Rows of every kind: valid, not .tif (rejected), bad band count (rejected), Latin-1 bytes.
    const lines: Buffer[] = [];
    for (let i = 0; i < ROWS; i += 1) {
      if (i % 997 === 0) lines.push(Buffer.from(`d${i % 7}/not-an-image-${i}.png,3`));
      else if (i % 991 === 0) lines.push(Buffer.from(`d${i % 7}/bands-${i}.tif,zero`));
      else if (i % 983 === 0)
        lines.push(Buffer.concat([Buffer.from(`d${i % 7}/caf`), Buffer.from([0xe9]), Buffer.from(`-${i}.tif,3`)]));
      else lines.push(Buffer.from(`d${i % 7}/img-${i}.tif,3`));
      lines.push(Buffer.from('\n'));
    }
    db.insertJobs(run.id, planRows(parseManifest(Buffer.concat(lines))));
    // Final and unfinished states; converted rows with both outputs, one, or none in the bucket.
    const present = new Set<string>();
    const uploads: Array<Promise<void>> = [];
    db.transaction(() => {
      for (const job of db.jobs(run.id)) {
        if (job.state === 'failed') continue; // rejected at planning
        const k = job.line % 10;
        if (k === 0 && job.line % 200 === 0) {
          db.setJobState(job.id, 'converted');
          const wanted =
            job.line % 600 === 0
              ? []
              : job.line % 400 === 0
                ? [job.imageKey!]
                : [job.imageKey!, previewKey(job.imageKey!)];
          for (const key of wanted) present.add(key);
        } else if (k === 1) db.setJobState(job.id, 'removed', { error: 'removed by user' });
        else if (k === 2) db.setJobState(job.id, 'idle');
        else
          db.setJobState(job.id, 'failed', {
            error: `the image s3://x/${job.imageKey} does not exist, "really" (line ${job.line})`,
          });
      }
    });
    for (const key of present) uploads.push(put(buckets.output, key, 'x'));
    await Promise.all(uploads);
    await put(buckets.input, run.processingKey, 'manifest');
    const before = db.jobs(run.id);
    const want = expected(before, (key) => present.has(key), buckets.output);
    expect(want.failures).toBeGreaterThan(40_000);
    expect(want.processed.length).toBeGreaterThan(0);

    // Streamed from the files (as a CSV over 8 MB is), then again in one PUT each (as a small one is):
    // the same bytes. The second post finds the rows the first failed failed, with the same reasons.
    for (const inlineBytes of [0, undefined]) {
      for (const kind of ['processed', 'failed', 'errors'] as const)
        await s3().send(new DeleteObjectCommand({ Bucket: buckets.input, Key: resultKey('big-', kind, run.ts) }));
      const deps = { db, storage, log: createLog({ consoleLevel: 'silent' }) };
      const result = await post(deps, db.run(run.id)!, inlineBytes === undefined ? {} : { inlineBytes });
      expect(result.processed + result.failed).toBe(ROWS);
      expect(result.failed).toBe(want.failures);
      const processed = await object(buckets.input, resultKey('big-', 'processed', run.ts));
      const failed = await object(buckets.input, resultKey('big-', 'failed', run.ts));
      const errors = await object(buckets.input, resultKey('big-', 'errors', run.ts));
      expect(processed.equals(want.processed)).toBe(true);
      expect(failed.equals(want.failed)).toBe(true);
      expect(errors.equals(want.errors)).toBe(true);
      expect((await readFile(path.join(runDir, 'errors.csv'))).equals(want.errors)).toBe(true);
      const out = (await readFile(path.join(runDir, 'post.out'), 'utf8')).split('\n');
      expect(out[1]).toBe(`rows ${ROWS}, processed ${result.processed}, failed ${want.failures}`);
      expect(out.filter((l) => l.startsWith('failed line '))).toHaveLength(want.failures);
      // The converted rows with an output missing are failed in the DB too.
      expect(db.jobCounts(run.id).converted).toBe(result.processed);
    }
  });
});

describe('cogd status --jobs pages', () => {
  it('refuses a state that is not one (exit 2, naming it) and a limit that is not a number', async () => {
    const home = await tempDir('cogd-status-');
    const bad = await cogd(['status', '--jobs', '--state', 'broken', '--home', home]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--state "broken" is unknown');
    expect(bad.stderr).toContain('idle, running, held, converted, failed, removed');
    const limit = await cogd(['status', '--jobs', '--limit', 'ten', '--home', home]);
    expect(limit.exitCode).toBe(2);
    expect(limit.stderr).toContain('--limit must be a whole number, got "ten"');
  });
});
