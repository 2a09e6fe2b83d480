/**
 * `cogd poll --dry-run` and `cogd plan FILE.csv` with real parts: the loopback S3 server, real
 * GeoTIFFs made with GDAL, the real CLI as a child process. A dry run writes nothing: the buckets
 * (keys and ETags) and the home (every file's path, size, mode, mtime and bytes) are compared before
 * and after; its verdicts are then checked against what a real `cogd poll --wait` does.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateDB } from '../../src/state/db.js';
import {
  cogd,
  endpoint,
  freshBuckets,
  getText,
  keyFiles,
  keys,
  makeTiff,
  put,
  putFile,
  resultKeyOf,
  s3,
  tempDir,
} from '../support/helpers.js';

/** What a dry run prints with --json (the parts tests read). */
interface Report {
  notes: string[];
  manifests: Array<{
    source: string;
    key: string;
    verdict: 'claim' | 'skip' | 'not-claimed';
    reason: string | null;
    results: string[];
    rows: Array<{
      line: number;
      row: string;
      key: string | null;
      verdict: 'convert' | 'fail';
      outputs: string[];
      reason: string | null;
      warning: string | null;
    }>;
  }>;
  totals: { manifests: number; rows: number; convert: number; fail: number; warnings: number; notClaimed: number };
}

/** Every object of a bucket with its ETag, size and modification time. */
async function listing(bucket: string): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? [])
      found.push(`${o.Key} ${o.ETag} ${o.Size} ${o.LastModified?.toISOString() ?? ''}`);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return found.sort();
}

/** Every entry under `dir`: path, type, mode, size, mtime and a hash of its bytes; [] when it does not exist. */
async function tree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const name of (await readdir(at)).sort()) {
      const full = path.join(at, name);
      const s = await lstat(full);
      const rel = path.relative(dir, full);
      if (s.isDirectory()) {
        out.push(`${rel}/ ${s.mode.toString(8)} ${s.mtimeMs}`);
        await walk(full);
      } else {
        const hash = createHash('sha256')
          .update(await readFile(full))
          .digest('hex');
        out.push(`${rel} ${s.mode.toString(8)} ${s.size} ${s.mtimeMs} ${hash}`);
      }
    }
  };
  out.push(`. ${(await lstat(dir)).mtimeMs}`);
  await walk(dir);
  return out;
}

/** The flags naming the test watch, with key files in `keyDir` (a dry run's home may not exist). */
async function watchArgs(
  buckets: { input: string; output: string },
  home: string,
  keyDir: string,
  pattern = 'jobs/*.csv',
): Promise<string[]> {
  const { access, secret } = await keyFiles(keyDir);
  const identity = ['-p', pattern, '--input-bucket', buckets.input, '--output-bucket', buckets.output];
  return [...identity, '-e', endpoint(), '-a', access, '-s', secret, '--home', home];
}

const MANIFEST = [
  'imgs/rgb.tif,3', // good
  'imgs/gray.tif,1', // good
  'imgs/missing.tif,3', // no such object
  '/imgs/rgb.tif,3', // validation: leading "/"
  'imgs/one-band.tif,3', // the file has 1 band: the file decides (a warning), as in a run
  'imgs/text.tif,1', // an object that is no TIFF
  'imgs/notes.png,1', // validation: not .tif
];

/** The verdict of each line, as every test expects it. */
function expectVerdicts(report: Report, input: string | undefined): void {
  const claimed = report.manifests.filter((m) => m.verdict === 'claim');
  expect(claimed).toHaveLength(1);
  const rows = claimed[0]!.rows;
  const at = (line: number) => rows.find((r) => r.line === line)!;
  expect(rows.map((r) => r.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(at(1)).toMatchObject({
    verdict: 'convert',
    key: 'imgs/rgb.tif',
    outputs: ['imgs/rgb.tif', 'imgs/rgb.jpg', 'imgs/rgb.json'],
    reason: null,
    warning: null,
  });
  expect(at(2)).toMatchObject({ verdict: 'convert', outputs: ['imgs/gray.tif', 'imgs/gray.jpg', 'imgs/gray.json'] });
  expect(at(3).verdict).toBe('fail');
  expect(at(3).outputs).toEqual([]);
  expect(at(4)).toMatchObject({ verdict: 'fail', key: null });
  expect(at(4).reason).toMatch(/starts with "\/"/);
  expect(at(5)).toMatchObject({
    verdict: 'convert',
    outputs: ['imgs/one-band.tif', 'imgs/one-band.jpg', 'imgs/one-band.json'],
  });
  expect(at(5).warning).toBe("the manifest declares 3 bands, the file has 1; the file's 1 would be used");
  expect(at(6).verdict).toBe('fail');
  expect(at(7)).toMatchObject({ verdict: 'fail', key: null });
  expect(at(7).reason).toMatch(/does not name a GeoTIFF/);
  if (input !== undefined) {
    // Checked in the bucket.
    expect(at(3).reason).toMatch(new RegExp(`the image s3://${input}/imgs/missing\\.tif does not exist`));
    expect(at(6).reason).toMatch(
      /not a readable TIFF: .*imgs\/text\.tif \(19 bytes\) does not begin with a TIFF header/,
    );
  }
}

/** Fresh buckets holding the images, the manifest, a result file of an earlier run and an unmatched object. */
async function stock(work: string): Promise<{ input: string; output: string }> {
  const buckets = await freshBuckets();
  await putFile(buckets.input, 'imgs/rgb.tif', await makeTiff(path.join(work, 'rgb.tif'), { bands: 3 }));
  await putFile(
    buckets.input,
    'imgs/gray.tif',
    await makeTiff(path.join(work, 'gray.tif'), { bands: 1, type: 'UInt16' }),
  );
  await putFile(buckets.input, 'imgs/one-band.tif', await makeTiff(path.join(work, 'one.tif'), { bands: 1 }));
  await put(buckets.input, 'imgs/text.tif', 'this is not a TIFF\n');
  await put(buckets.input, 'jobs/batch-raw.csv', `${MANIFEST.join('\n')}\n`);
  await put(buckets.input, 'jobs/other.txt', 'not matched\n');
  await put(buckets.input, 'jobs/old-processed-20250101-000000.csv', 'imgs/rgb.tif,3\n');
  return buckets;
}

const TOTAL_LINE =
  '1 manifest, 7 rows: 3 would convert (1 with a warning), 4 would fail; 1 object would not be claimed';

describe('cogd poll --dry-run', () => {
  it('lists every row with its verdict and a total, and writes nothing: buckets and home unchanged', async () => {
    const work = await tempDir();
    const buckets = await stock(work);
    const home = path.join(work, 'home'); // does not exist: a dry run must not make it
    const args = await watchArgs(buckets, home, work);
    const inputBefore = await listing(buckets.input);
    const outputBefore = await listing(buckets.output);
    const workBefore = await tree(work);

    const human = await cogd(['poll', '--dry-run', ...args]);
    expect(human.stderr).toBe('');
    expect(human.exitCode).toBe(0); // it could plan, though rows would fail
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[1]).toBe(`${home} has no state DB: every matching manifest counts as new`);
    expect(lines).toContain(
      `s3://${buckets.input}/jobs/batch-raw.csv: would be claimed, 7 rows (results jobs/batch-{processed,failed,errors}-<TS>.csv)`,
    );
    expect(lines).toContain(
      `  line 1: imgs/rgb.tif → s3://${buckets.output}/imgs/rgb.tif, imgs/rgb.jpg, imgs/rgb.json`,
    );
    expect(lines).toContain(
      `  line 3: imgs/missing.tif → would fail: the image s3://${buckets.input}/imgs/missing.tif does not exist (check the key in the manifest)`,
    );
    expect(human.stdout).toMatch(
      /^ {2}line 4: \/imgs\/rgb\.tif,3 → would fail: the key "\/imgs\/rgb\.tif" starts with "\/"/m,
    );
    expect(lines).toContain(
      `  line 5: imgs/one-band.tif → s3://${buckets.output}/imgs/one-band.tif, imgs/one-band.jpg, imgs/one-band.json (warning: the manifest declares 3 bands, the file has 1; the file's 1 would be used)`,
    );
    expect(lines).toContain(
      `s3://${buckets.input}/jobs/old-processed-20250101-000000.csv: would not be claimed: one of cogd's own result files`,
    );
    expect(human.stdout).not.toContain('other.txt'); // the pattern does not match it
    expect(lines.at(-1)).toBe(TOTAL_LINE);

    const json = await cogd(['poll', '--dry-run', '--json', ...args]);
    expect(json.exitCode, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as Report;
    expectVerdicts(report, buckets.input);
    expect(report.totals).toMatchObject({ manifests: 1, rows: 7, convert: 3, fail: 4, warnings: 1, notClaimed: 1 });

    // Nothing written anywhere: no object added, changed or removed, no home, no logs, no scratch.
    expect(await listing(buckets.input)).toEqual(inputBefore);
    expect(await listing(buckets.output)).toEqual(outputBefore);
    expect(existsSync(home)).toBe(false);
    expect(await tree(work)).toEqual(workBefore);
  });

  it('in a home with a state DB: reads it without changing a byte, and a real run then does what it said', async () => {
    const work = await tempDir();
    const buckets = await stock(work);
    const home = await tempDir();
    const args = await watchArgs(buckets, home, work);
    // A home where a poll has run (its state DB holds a watch), on a pattern that claims nothing.
    const first = await cogd(['poll', ...(await watchArgs(buckets, home, work, 'none/*.csv'))]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(existsSync(path.join(home, 'cogd.db'))).toBe(true);
    // Closed cleanly, no write-ahead log: the dry run reads a copy of the file in memory.
    expect(existsSync(path.join(home, 'cogd.db-wal'))).toBe(false);
    const homeBefore = await tree(home);
    const inputBefore = await listing(buckets.input);
    const outputBefore = await listing(buckets.output);

    const dry = await cogd(['poll', '--dry-run', '--json', ...args, '-m', '5', '--io-concurrency', '2']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    const report = JSON.parse(dry.stdout) as Report;
    expectVerdicts(report, buckets.input);
    expect(report.notes).toContain(`a new watch for ${home} (its settings: the defaults and the flags given)`);
    expect(report.notes).toContain(
      'settings given (-a, -s, -m, --io-concurrency) are used for this dry run, not stored',
    );
    expect(await tree(home)).toEqual(homeBefore);
    expect(await listing(buckets.input)).toEqual(inputBefore);
    expect(await listing(buckets.output)).toEqual(outputBefore);

    // The real thing: what the dry run said would convert is processed, with those outputs; what
    // it said would fail is in the failed CSV.
    const run = await cogd(['poll', '--wait', ...args, '--retries', '0']);
    expect(run.exitCode).toBe(1); // rows failed
    const rows = report.manifests.find((m) => m.verdict === 'claim')!.rows;
    const processed = await getText(buckets.input, (await resultKeyOf(buckets.input, 'jobs/', 'processed'))!);
    const failed = await getText(buckets.input, (await resultKeyOf(buckets.input, 'jobs/', 'failed'))!);
    const rowsOf = (verdict: string): string[] =>
      rows
        .filter((r) => r.verdict === verdict)
        .map((r) => r.row)
        .sort();
    expect(processed.trimEnd().split('\n').sort()).toEqual(rowsOf('convert'));
    expect(failed.trimEnd().split('\n').sort()).toEqual(rowsOf('fail'));
    const written = await keys(buckets.output);
    for (const key of rows.flatMap((r) => r.outputs)) expect(written).toContain(key);

    // Claimed now: a second dry run, with the watch's stored settings, would claim nothing.
    const after = await cogd(['poll', '--dry-run', ...args]);
    expect(after.exitCode, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/^watch 2 of .*, with its stored settings and the flags given$/m);
    expect(after.stdout).toMatch(/jobs\/batch-failed-\S+\.csv: would not be claimed: one of cogd's own result files/);
    expect(after.stdout).not.toContain('batch-raw.csv');
    expect(after.stdout).toMatch(
      /^0 manifests, 0 rows: 0 would convert, 0 would fail; 4 objects would not be claimed$/m,
    );
  });

  it('a home in use (write-ahead log open, as a daemon keeps it) is read in place, read-only, and left as it was', async () => {
    const work = await tempDir();
    const buckets = await stock(work);
    const home = await tempDir();
    const first = await cogd(['poll', ...(await watchArgs(buckets, home, work, 'none/*.csv'))]);
    expect(first.exitCode, first.stderr).toBe(0);
    const writer = new StateDB(path.join(home, 'cogd.db'));
    try {
      writer.homeSettings();
      expect(existsSync(path.join(home, 'cogd.db-wal'))).toBe(true);
      // SQLite's shared-memory index is for every reader to update; every other file must stay.
      const files = async (): Promise<string[]> => (await tree(home)).filter((e) => !e.startsWith('cogd.db-shm'));
      const before = await files();
      const dry = await cogd(['poll', '--dry-run', ...(await watchArgs(buckets, home, work))]);
      expect(dry.exitCode, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/^a new watch for .* \(its settings: the defaults and the flags given\)$/m);
      expect(dry.stdout.trimEnd().split('\n').at(-1)).toBe(TOTAL_LINE);
      expect(await files()).toEqual(before);
    } finally {
      writer.close();
    }
  });

  it('exits 1 with a clear message when S3 cannot be reached, 2 on bad usage', async () => {
    const work = await tempDir();
    const home = path.join(work, 'home');
    const { access, secret } = await keyFiles(work);
    const identity = ['-p', '*raw.csv', '--input-bucket', 'in-x', '--output-bucket', 'out-x', '--home', home];
    const dead = await cogd(['poll', '--dry-run', ...identity, '-e', 'http://127.0.0.1:9', '-a', access, '-s', secret]);
    expect(dead.exitCode).toBe(1);
    expect(dead.stderr).toMatch(/^cogd: list s3:\/\/in-x failed: .*ECONNREFUSED/);
    expect(dead.stdout).toBe('');

    const both = await cogd(['poll', '--dry-run', '--wait', ...identity]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/--dry-run and --wait exclude each other/);
    const missing = await cogd(['poll', '--dry-run', '-p', '*.csv', '--input-bucket', 'in-x', '--home', home]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/--output-bucket/);
    const json = await cogd(['poll', '--json', ...identity]);
    expect(json.exitCode).toBe(2);
    expect(json.stderr).toMatch(/--json goes with --dry-run/);
    expect(existsSync(home)).toBe(false);
  });
});

describe('cogd plan FILE.csv', () => {
  it('gives a local manifest the verdicts a dry run gives it; without --input-bucket, from the file alone', async () => {
    const work = await tempDir();
    const buckets = await stock(work);
    const file = path.join(work, 'batch-raw.csv');
    await writeFile(file, `${MANIFEST.join('\n')}\n`);
    const home = path.join(work, 'home');
    const { access, secret } = await keyFiles(work);
    const inputBefore = await listing(buckets.input);
    const outputBefore = await listing(buckets.output);
    const workBefore = await tree(work);

    const s3Args = ['--input-bucket', buckets.input, '-e', endpoint(), '-a', access, '-s', secret, '--home', home];
    const planned = await cogd(['plan', file, '--json', '--output-bucket', buckets.output, ...s3Args]);
    expect(planned.exitCode, planned.stderr).toBe(0);
    const report = JSON.parse(planned.stdout) as Report;
    expectVerdicts(report, buckets.input);
    expect(report.manifests[0]!.source).toBe(file);
    expect(report.totals).toMatchObject({ manifests: 1, rows: 7, convert: 3, fail: 4, warnings: 1 });

    const human = await cogd(['plan', file, '--output-bucket', buckets.output, ...s3Args]);
    expect(human.exitCode, human.stderr).toBe(0);
    expect(human.stdout).toContain(
      `  line 1: imgs/rgb.tif → s3://${buckets.output}/imgs/rgb.tif, imgs/rgb.jpg, imgs/rgb.json`,
    );
    expect(human.stdout).toContain(`${file}: 7 rows`);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe(
      '1 manifest, 7 rows: 3 would convert (1 with a warning), 4 would fail',
    );

    // From the file alone: the missing image and the text file cannot be told; the rest can.
    const alone = await cogd(['plan', file, '--json', '--no-stac', '--home', home]);
    expect(alone.exitCode, alone.stderr).toBe(0);
    const offline = JSON.parse(alone.stdout) as Report;
    expect(offline.manifests[0]!.rows.map((r) => r.verdict)).toEqual([
      'convert',
      'convert',
      'convert',
      'fail',
      'convert',
      'convert',
      'fail',
    ]);
    expect(offline.manifests[0]!.rows[0]!.outputs).toEqual(['imgs/rgb.tif', 'imgs/rgb.jpg']);
    expect(offline.notes.join('\n')).toMatch(/no --input-bucket: rows judged from the file alone/);

    // Limits given to plan apply: a 64 × 64 image is over --max-pixels 100.
    const small = await cogd(['plan', file, '--json', '--max-pixels', '100', ...s3Args]);
    expect(small.exitCode, small.stderr).toBe(0);
    const limited = JSON.parse(small.stdout) as Report;
    expect(limited.manifests[0]!.rows[0]!.reason).toMatch(/64 × 64 = 4096 pixels, over the limit of 100/);

    expect(await listing(buckets.input)).toEqual(inputBefore);
    expect(await listing(buckets.output)).toEqual(outputBefore);
    expect(await tree(work)).toEqual(workBefore);
    expect(existsSync(home)).toBe(false);

    const none = await cogd(['plan', path.join(work, 'nope.csv')]);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/cannot read the manifest .*nope\.csv: no such file/);
    const stray = await cogd(['plan', file, '-e', endpoint()]);
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toMatch(/-e\/--s3-endpoint is given without --input-bucket/);
  });
});
