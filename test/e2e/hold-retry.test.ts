/**
 * The DAGMan-style controls, with real child processes on a real S3 server: `cogd hold` /
 * `cogd release` of a watch (no polls), of a run (no new jobs, across a restart) and of a job with
 * `--now` (stopped and requeued without spending a retry); `cogd retry` of a finished run's failed
 * rows as a new run linked to the original.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  baseArgs,
  cogd,
  freshBuckets,
  getText,
  keys,
  makeTiff,
  put,
  putFile,
  resultKeyOf,
  ROOT,
  status,
  tempDir,
  until,
} from '../support/helpers.js';

const GATED = path.join(ROOT, 'test/fixtures/gated-gdal');
const homes: string[] = [];

afterEach(async () => {
  for (const home of homes.splice(0)) await cogd(['stop', '--home', home]);
});

interface HoldStatus {
  watches: Array<{ id: string; hold: { reason: string; by: string; since: string } | null }>;
  runs: Array<{ id: number; state: string; retryOf: number | null; counts: Record<string, number> }>;
  jobs?: Array<{ id: string; state: string; attempts: number }>;
  holds?: Array<{ id: string; owner: string; reason: string }>;
}

const holdStatus = async (home: string, ...args: string[]): Promise<HoldStatus> =>
  (await status(home, ...args)) as unknown as HoldStatus;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('cogd hold / release', () => {
  it('a held watch is not polled, across processes; released, the next poll claims', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const args = await baseArgs(buckets, home);
    const first = await cogd(['poll', ...args]);
    expect(first.exitCode, first.stderr).toBe(0); // the watch exists now (w1)

    const held = await cogd(['hold', 'w1', '--reason', 'bucket migration', '--home', home]);
    expect(held.exitCode, held.stderr).toBe(0);
    expect(held.stdout).toBe('Watch w1 has been held');
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    await put(buckets.input, 'm-raw.csv', 'img.tif,1\n');
    for (let n = 0; n < 2; n += 1) {
      const polled = await cogd(['poll', '--wait', ...args]);
      expect(polled.exitCode, polled.stderr).toBe(0);
      expect(polled.stdout).toMatch(/^watch w1 is held by \S+ since \S+: bucket migration; not polling/m);
    }
    expect(await keys(buckets.input)).toEqual(['img.tif', 'm-raw.csv']); // nothing claimed
    const s = await holdStatus(home, '--hold');
    expect(s.watches[0]!.hold?.reason).toBe('bucket migration');
    expect(s.holds?.map((h) => [h.id, h.reason])).toEqual([['w1', 'bucket migration']]);
    const text = await cogd(['status', '--home', home]);
    expect(text.stdout).toMatch(/COG-Pipeline-Crondor-\*raw\.csv +\S+ \S+ +_ +_ +_ +H +_ +w1$/m);
    expect(text.stdout).toMatch(/^watch w1: held by \S+ since .*: bucket migration; not polling \(cogd release w1\)$/m);
    const view = await cogd(['status', '-hold', '--home', home]);
    expect(view.stdout).toMatch(/^ID +OWNER +HELD_SINCE +HOLD_REASON$/m);
    expect(view.stdout).toMatch(/^w1 +\S+ +\d+\/\d+ \d\d:\d\d +bucket migration$/m);

    const again = await cogd(['hold', 'w1', '--home', home]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/nothing unfinished and not held matches w1/);
    const released = await cogd(['release', 'w1', '--home', home]);
    expect(released.stdout).toBe('Watch w1 has been released');
    const polled = await cogd(['poll', '--wait', ...args]);
    expect(polled.exitCode, polled.stderr).toBe(0);
    expect(polled.stdout).toMatch(/run 1 .*m-raw\.csv: 1 rows, 1 processed, 0 failed/);
  });

  it('a held run starts no job, even after a restart; released, every row runs once', async () => {
    const home = await tempDir();
    homes.push(home);
    const gate = path.join(home, 'gate');
    const buckets = await freshBuckets();
    for (const name of ['a', 'b', 'c']) {
      await putFile(buckets.input, `${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    }
    const env = { PATH: `${GATED}:${process.env['PATH'] ?? ''}`, COGD_TEST_GDAL_GATE: gate };
    const args = [...(await baseArgs(buckets, home)), '-m', '1', '--schedule', '*/1 * * * * *'];
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    await put(buckets.input, 'm-raw.csv', 'a.tif,1\nb.tif,1\nc.tif,1\n');
    await until('job 1.1 running', async () =>
      (await holdStatus(home, '--jobs')).jobs?.find((j) => j.id === '1.1' && j.state === 'running'),
    );
    const held = await cogd(['hold', '1', '--reason', 'quota', '--home', home]);
    expect(held.stdout).toBe('All jobs in run 1 have been held');
    await writeFile(gate, ''); // the running job finishes; nothing new starts
    await until('job 1.1 converted', async () =>
      (await holdStatus(home, '--jobs')).jobs?.find((j) => j.id === '1.1' && j.state === 'converted'),
    );
    await sleep(3000);
    let s = await holdStatus(home, '--jobs');
    expect(s.jobs?.map((j) => j.state)).toEqual(['converted', 'held', 'held']);
    expect(s.runs[0]!.counts).toMatchObject({ done: 1, held: 2, idle: 0, running: 0 });
    const text = await cogd(['status', '--home', home]);
    expect(text.stdout).toMatch(/^run 1 .*m-raw\.csv: held by \S+ since .*: quota; starts no job \(cogd release 1\)$/m);

    // Holds are state: a restarted daemon keeps them.
    expect((await cogd(['stop', '--home', home])).exitCode).toBe(0);
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    await sleep(3000);
    s = await holdStatus(home, '--jobs');
    expect(s.jobs?.map((j) => j.state)).toEqual(['converted', 'held', 'held']);

    const released = await cogd(['release', '1', '--home', home]);
    expect(released.stdout).toBe('All jobs in run 1 have been released');
    const done = await until('run 1 done', async () => {
      const now = await holdStatus(home, '--jobs');
      return now.runs[0]?.state === 'done' ? now : undefined;
    });
    expect(done.jobs?.map((j) => [j.state, j.attempts])).toEqual([
      ['converted', 1],
      ['converted', 1],
      ['converted', 1],
    ]);
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'm-', 'processed'))!)).toBe(
      'a.tif,1\nb.tif,1\nc.tif,1\n',
    );
  });

  it('hold --now stops a running job and requeues it without spending a retry', async () => {
    const home = await tempDir();
    homes.push(home);
    const gate = path.join(home, 'gate');
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'a.tif', await makeTiff(path.join(home, 'a.tif'), { bands: 1 }));
    const env = { PATH: `${GATED}:${process.env['PATH'] ?? ''}`, COGD_TEST_GDAL_GATE: gate };
    const args = [...(await baseArgs(buckets, home)), '--retries', '0', '--schedule', '*/1 * * * * *'];
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    await put(buckets.input, 'm-raw.csv', 'a.tif,1\n');
    await until('job 1.1 running', async () =>
      (await holdStatus(home, '--jobs')).jobs?.find((j) => j.id === '1.1' && j.state === 'running'),
    );
    const held = await cogd(['hold', '1.1', '--now', '--reason', 'node maintenance', '--home', home]);
    expect(held.stdout).toBe('Job 1.1 has been held');
    const waiting = await until('job 1.1 back in the queue, held', async () =>
      (await holdStatus(home, '--jobs')).jobs?.find((j) => j.id === '1.1' && j.state === 'held'),
    );
    expect(waiting.attempts).toBe(0); // with --retries 0, a spent attempt would have failed the row
    const view = await cogd(['status', '-hold', '--home', home]);
    expect(view.stdout).toMatch(/^1\.1 +\S+ +\d+\/\d+ \d\d:\d\d +node maintenance$/m);
    await writeFile(gate, '');
    expect((await cogd(['release', '1.1', '--home', home])).exitCode).toBe(0);
    const done = await until('run 1 done', async () => {
      const now = await holdStatus(home, '--jobs');
      return now.runs[0]?.state === 'done' ? now : undefined;
    });
    expect(done.jobs?.map((j) => [j.state, j.attempts])).toEqual([['converted', 1]]);
  });
});

describe('cogd retry', () => {
  it("re-runs a finished run's failed rows as a new run; the original's CSVs stay as they were", async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const args = await baseArgs(buckets, home);
    for (const name of ['a', 'b']) {
      await putFile(buckets.input, `${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    }
    await put(buckets.input, 'm-raw.csv', 'a.tif,1\nx.tif,1\nb.tif,1\ny.tif,1\nz.tif,1\n');
    const first = await cogd(['poll', '--wait', ...args]);
    expect(first.stdout).toMatch(/run 1 .*: 5 rows, 2 processed, 3 failed/);
    const before = new Map<string, string>();
    for (const key of (await keys(buckets.input)).filter((k) => k.startsWith('m-'))) {
      before.set(key, await getText(buckets.input, key));
    }
    expect([...before.keys()].map((k) => k.replace(/\d{8}-\d{6}/, 'TS')).sort()).toEqual([
      'm-errors-TS.csv',
      'm-failed-TS.csv',
      'm-processed-TS.csv',
    ]);

    // Usage errors name the bad input.
    const unknownRow = await cogd(['retry', '1', '--rows', '2,9', '--home', home]);
    expect(unknownRow.exitCode).toBe(2);
    expect(unknownRow.stderr).toMatch(/--rows: run 1 has no row on line 9/);
    const both = await cogd(['retry', '1', '--rows', '2', '--all', '--home', home]);
    expect(both.exitCode).toBe(2);
    const none = await cogd(['retry', '7', '--home', home]);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/there is no run 7/);

    // The images are fixed in the bucket meanwhile.
    for (const name of ['x', 'y', 'z']) {
      await putFile(buckets.input, `${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    }
    const retried = await cogd(['retry', '1', '--home', home]);
    expect(retried.exitCode, retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(/^run 2 s3:\/\/\S+\/m-raw\.csv: retry of 1, 3 rows \(lines 2, 4, 5\)/m);
    expect(retried.stdout).toMatch(/no daemon is running/);
    const second = await cogd(['poll', '--wait', ...args]);
    expect(second.exitCode, second.stderr).toBe(0);

    const s = await holdStatus(home, '--jobs');
    const run2 = s.runs.find((r) => r.id === 2)!;
    expect(run2).toMatchObject({ state: 'done', retryOf: 1 });
    expect(run2.counts).toMatchObject({ done: 3, failed: 0, total: 3 });
    expect(s.jobs?.filter((j) => j.id.startsWith('2.')).map((j) => j.id)).toEqual(['2.2', '2.4', '2.5']);
    const text = await cogd(['status', '--home', home]);
    expect(text.stdout).toMatch(/^run 2 s3:\/\/\S+\/m-raw\.csv: retry of 1$/m);

    // The original's result CSVs are as they were; the retry wrote its own.
    for (const [key, body] of before) expect(await getText(buckets.input, key)).toBe(body);
    const results = (await keys(buckets.input)).filter((k) => k.startsWith('m-') && !before.has(k));
    expect(results.map((k) => k.replace(/\d{8}-\d{6}/, 'TS'))).toEqual(['m-processed-TS.csv']);
    expect(await getText(buckets.input, results[0]!)).toBe('x.tif,1\ny.tif,1\nz.tif,1\n');
    expect(await keys(buckets.output)).toEqual(
      ['collection.json', ...['a', 'b', 'x', 'y', 'z'].flatMap((n) => [`${n}.jpg`, `${n}.json`, `${n}.tif`])].sort(),
    );

    const nothing = await cogd(['retry', '2', '--home', home]);
    expect(nothing.exitCode).toBe(1);
    expect(nothing.stderr).toMatch(/every row of run 2 converted: nothing to retry/);
    const chosen = await cogd(['retry', '1', '--rows', '1', '--home', home]);
    expect(chosen.stdout).toMatch(/^run 3 .*: retry of 1, 1 row \(lines 1\)/m);
  });
});
