/**
 * Crash safety: cogd killed with SIGKILL at named points between steps (a test-only hook,
 * COGD_TEST_CRASH_AT), then started again, must end with every row in exactly one result CSV, no
 * manifest lost or claimed twice, no run left unfinished and no scratch left behind.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CrashPoint } from '../../src/util/crash.js';
import { homeId } from '../../src/daemon/home.js';
import { baseArgs, cogd, freshBuckets, getText, keys, makeTiff, put, putFile, tempDir } from '../support/helpers.js';

const POINTS: CrashPoint[] = [
  'claim:recorded',
  'claim:downloaded',
  'claim:copied',
  'claim:raw-deleted',
  'plan:stored',
  'job:downloaded',
  'job:converted',
  'job:uploaded',
  'post:csv-written',
  'post:processing-deleted',
];

describe('crash safety', () => {
  it.each(POINTS)('recovers from SIGKILL at %s', async (point) => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img/a.tif', await makeTiff(path.join(home, 'a.tif'), { bands: 3 }));
    await putFile(buckets.input, 'img/b.tif', await makeTiff(path.join(home, 'b.tif'), { bands: 1, type: 'UInt16' }));
    const rows = ['img/a.tif,3', 'img/missing.tif,1', 'img/b.tif,1'];
    await put(buckets.input, 'q/m-raw.csv', `${rows.join('\n')}\n`);
    const args = ['poll', '--wait', ...(await baseArgs(buckets, home))];

    const crashed = await cogd(args, { env: { COGD_TEST_CRASH_AT: point } });
    expect(crashed.exitCode, `${point}: ${crashed.stdout}${crashed.stderr}`).toBe(-1); // killed by the signal
    const again = await cogd(args);
    expect(again.stdout).toMatch(/run 1 s3:\/\/\S+\/q\/m-raw\.csv: 3 rows, 2 processed, 1 failed/);
    expect(again.exitCode).toBe(1);

    const input = await keys(buckets.input, 'q/');
    expect(input.filter((k) => /raw|processing/.test(k))).toEqual([]);
    const processed = input.filter((k) => k.includes('-processed-'));
    const failed = input.filter((k) => k.includes('-failed-'));
    expect(processed.length).toBe(1);
    expect(failed.length).toBe(1);
    const inProcessed = (await getText(buckets.input, processed[0]!)).split('\n').filter(Boolean);
    const inFailed = (await getText(buckets.input, failed[0]!)).split('\n').filter(Boolean);
    expect(inProcessed.sort()).toEqual(['img/a.tif,3', 'img/b.tif,1']);
    expect(inFailed).toEqual(['img/missing.tif,1']);
    expect(await keys(buckets.output)).toEqual([
      'collection.json',
      'img/a.jpg',
      'img/a.json',
      'img/a.tif',
      'img/b.jpg',
      'img/b.json',
      'img/b.tif',
    ]);

    const status = JSON.parse((await cogd(['status', '--json', '--home', home])).stdout) as {
      runs: Array<{ state: string }>;
    };
    expect(status.runs.map((r) => r.state)).toEqual(['done']); // claimed once, finished
    // Only cogd's own scratch directory, and nothing in it.
    expect(await readdir(path.join(home, 'scratch'))).toEqual([`cogd-${homeId(home)}`]);
    expect(await readdir(path.join(home, 'scratch', `cogd-${homeId(home)}`))).toEqual([]);
    // Nothing left to do.
    const third = await cogd(args);
    expect(third.stdout).toMatch(/no new manifests/);
  });
});
