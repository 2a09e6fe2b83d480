/**
 * The HTCondor executor end to end: the real CLI, the real S3 server, real GDAL in the worker, and
 * the test-only simulator of condor_submit / condor_q / condor_rm (test/fixtures/condor-sim) on
 * PATH. The simulator performs the S3 transfers the rendered submit description asks for, so a
 * wrong transfer_input_files or transfer_output_remaps fails these tests.
 */
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CrashPoint } from '../../src/util/crash.js';
import { parseEvents } from '../../src/executors/condor/eventlog.js';
import { featureTiff, pixel } from '../support/images.js';
import {
  baseArgs,
  cogd,
  download,
  freshBuckets,
  gdalinfo,
  getText,
  keys,
  makeTiff,
  put,
  putFile,
  ROOT,
  tempDir,
} from '../support/helpers.js';

const SIM = path.join(ROOT, 'test/fixtures/condor-sim');
const simDirs: string[] = [];

/** The environment that puts the simulator on PATH, with its own state directory. */
async function simEnv(knobs: Record<string, string> = {}): Promise<Record<string, string>> {
  const dir = await tempDir('condor-sim-');
  simDirs.push(dir);
  return {
    PATH: `${SIM}:${process.env['PATH'] ?? ''}`,
    CONDOR_SIM_DIR: dir,
    CONDOR_SIM_START_MS: '50',
    CONDOR_SIM_RELEASE_MS: '200',
    ...knobs,
  };
}

afterAll(() => {
  // No simulated schedd outlives the tests.
  for (const dir of simDirs) {
    for (const file of existsSync(dir) ? readdirSync(dir).filter((f) => /^schedd-\d+\.pid$/.test(f)) : []) {
      try {
        process.kill(Number(readFileSync(path.join(dir, file), 'utf8')), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

const CONDOR = ['--executor', 'condor', '--max-holds', '2', '--release-delay', '1', '--retries', '1'];

/** Images and a manifest with rows that convert and rows that fail for different reasons. */
async function stage(home: string, buckets: { input: string; output: string }): Promise<string[]> {
  await putFile(buckets.input, 'img/gray.tif', await makeTiff(path.join(home, 'gray.tif'), { bands: 1 }));
  await putFile(buckets.input, 'img/rgb.tif', await makeTiff(path.join(home, 'rgb.tif'), { bands: 3 }));
  await putFile(buckets.input, 'img/rgba.tif', await makeTiff(path.join(home, 'rgba.tif'), { bands: 4 }));
  await putFile(buckets.input, 'img/u16.tif', await makeTiff(path.join(home, 'u16.tif'), { bands: 3, type: 'UInt16' }));
  await put(buckets.input, 'img/notatiff.tif', 'this is not an image\n');
  const rows = [
    'img/gray.tif,1',
    'img/rgb.tif,3',
    'img/notatiff.tif,1',
    'img/rgba.tif,4',
    'img/missing.tif,1',
    'img/u16.tif,3',
    'img/bad.tif,many',
  ];
  await put(buckets.input, 'q/m-raw.csv', `${rows.join('\n')}\n`);
  return rows;
}

/** The processed and failed CSVs of the run (verbatim rows, sorted; [] when absent) and the errors CSV. */
async function results(bucket: string): Promise<{ processed: string[]; failed: string[]; errors: string }> {
  const all = await keys(bucket, 'q/');
  const text = async (kind: string): Promise<string> => {
    const key = all.find((k) => k.includes(`-${kind}-`));
    return key === undefined ? '' : getText(bucket, key);
  };
  const rows = (t: string): string[] => t.split('\n').filter(Boolean).sort();
  return { processed: rows(await text('processed')), failed: rows(await text('failed')), errors: await text('errors') };
}

/** One gray image per name and a manifest `q/m-raw.csv` of them; returns its rows. */
async function stageGray(home: string, buckets: { input: string; output: string }, names: string[]): Promise<string[]> {
  const rows: string[] = [];
  for (const name of names) {
    await putFile(buckets.input, `img/${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    rows.push(`img/${name}.tif,1`);
  }
  await put(buckets.input, 'q/m-raw.csv', `${rows.join('\n')}\n`);
  return rows;
}

function events(home: string): ReturnType<typeof parseEvents>['events'] {
  const runDir = readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!;
  return parseEvents(readFileSync(path.join(home, 'logs', runDir, 'condor.log'), 'utf8')).events;
}

describe('the condor executor', () => {
  it('converts a manifest with the same result CSVs as the local executor', async () => {
    const localHome = await tempDir();
    const localBuckets = await freshBuckets();
    await stage(localHome, localBuckets);
    const local = await cogd(['poll', '--wait', ...(await baseArgs(localBuckets, localHome)), '--retries', '1']);
    expect(local.exitCode, local.stderr).toBe(1);

    const home = await tempDir();
    const buckets = await freshBuckets();
    await stage(home, buckets);
    const env = await simEnv({ CONDOR_SIM_SPLIT_EVENTS: '1' });
    const condor = await cogd(
      ['poll', '--wait', ...(await baseArgs(buckets, home)), ...CONDOR, '--condor-batch-size', '2', '-m', '3'],
      { env },
    );
    expect(condor.exitCode, `${condor.stdout}\n${condor.stderr}`).toBe(1);
    expect(condor.stdout).toMatch(/7 rows, 4 processed, 3 failed/);

    const fromLocal = await results(localBuckets.input);
    const fromCondor = await results(buckets.input);
    expect(fromCondor.processed).toEqual(fromLocal.processed);
    expect(fromCondor.failed).toEqual(fromLocal.failed);
    expect(fromCondor.processed).toEqual(['img/gray.tif,1', 'img/rgb.tif,3', 'img/rgba.tif,4', 'img/u16.tif,3']);
    expect(await keys(buckets.output)).toEqual(await keys(localBuckets.output));
    // Every failure says why, in HTCondor's terms where HTCondor decided.
    expect(fromCondor.errors).toMatch(
      /img\/notatiff\.tif.*worker exited with code 2: cogd-worker: not a readable TIFF/,
    );
    expect(fromCondor.errors).toMatch(
      /img\/missing\.tif.*removed the job after repeated holds; last held: Transfer input files failure/,
    );

    // 6 valid rows, each submitted once (no retry: the failures are permanent), in batches of at
    // most 2 rows; every proc ended in the event log.
    const log = events(home);
    const submits = log.filter((e) => e.code === 0);
    expect(submits.length).toBe(6);
    const perCluster = new Map<number, number>();
    for (const e of submits) perCluster.set(e.cluster, (perCluster.get(e.cluster) ?? 0) + 1);
    expect(Math.max(...perCluster.values())).toBe(2); // batches of at most --condor-batch-size rows
    expect(log.filter((e) => e.code === 12).length).toBe(2); // missing.tif: held twice
    expect(log.filter((e) => e.code === 13).length).toBe(1); // released once, then removed
    expect(log.filter((e) => e.code === 9).length).toBe(1);
    // -m 3: never more than 3 jobs in the queue at once (submitted and not yet ended).
    let queued = 0;
    let most = 0;
    for (const e of log) {
      if (e.code === 0) queued += 1;
      if (e.code === 5 || e.code === 9) queued -= 1;
      most = Math.max(most, queued);
    }
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1);
    const runDir = path.join(
      home,
      'logs',
      readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!,
    );
    const submitFile = readFileSync(path.join(runDir, 'condor', 'batch-1.sub'), 'utf8');
    expect(submitFile).toMatch(/^universe\s+= container$/m);
    expect(submitFile).toMatch(/^submit_event_notes\s+= cogd run 1 batch 1$/m);
    expect(readFileSync(path.join(runDir, 'condor', 'batch-1.items'), 'utf8')).toBe(
      'img/gray.tif, img/gray.tif, img/gray.jpg, gray\nimg/rgb.tif, img/rgb.tif, img/rgb.jpg, rgb\n',
    );
  });

  it('releases held jobs and converts them; rejects keys HTCondor cannot carry, with the reason', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img/a.tif', await makeTiff(path.join(home, 'a.tif'), { bands: 3 }));
    await putFile(buckets.input, 'img/b.tif', await makeTiff(path.join(home, 'b.tif'), { bands: 1 }));
    await putFile(buckets.input, 'img/c d.tif', await makeTiff(path.join(home, 'cd.tif'), { bands: 1 }));
    await put(buckets.input, 'q/m-raw.csv', 'img/a.tif,3\nimg/b.tif,1\nimg/c d.tif,1\n');
    const env = await simEnv({ CONDOR_SIM_HOLD_FIRST: 'img/b.tif' });
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...CONDOR], { env });
    expect(run.stdout, run.stderr).toMatch(/3 rows, 2 processed, 1 failed/);
    const log = events(home);
    const held = log.filter((e) => e.code === 12);
    expect(held.length).toBe(1);
    expect(held[0]!.reason).toMatch(/Transfer input files failure.*CONDOR_SIM_HOLD_FIRST/);
    expect(log.filter((e) => e.code === 13 && e.cluster === held[0]!.cluster && e.proc === held[0]!.proc).length).toBe(
      1,
    );
    expect(
      log.filter((e) => e.code === 5 && e.termination?.normal === true && e.termination.returnValue === 0).length,
    ).toBe(2);
    const jobLog = readFileSync(
      path.join(
        home,
        'logs',
        readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!,
        'b.log',
      ),
      'utf8',
    );
    expect(jobLog).toMatch(/held: Transfer input files failure/);
    expect(jobLog).toMatch(/released/);
    expect(await keys(buckets.output)).toEqual(['img/a.jpg', 'img/a.tif', 'img/b.jpg', 'img/b.tif']);
    const { errors } = await results(buckets.input);
    expect(errors).toMatch(/img\/c d\.tif.*HTCondor item data cannot carry safely/);
  });

  it("cogd rm removes the run's clusters with condor_rm", async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c', 'd']);
    // Jobs wait in the queue for a minute: long enough to remove them there.
    const env = await simEnv({ CONDOR_SIM_START_MS: '60000' });
    const args = await baseArgs(buckets, home);
    const start = await cogd(['start', ...args, ...CONDOR, '--schedule', '0 0 1 1 *'], { env });
    expect(start.exitCode, start.stderr).toBe(0);
    try {
      const queued = async (): Promise<string[]> =>
        (await execa('condor_q', ['-af', 'ClusterId', 'ProcId', 'JobStatus'], { env })).stdout
          .split('\n')
          .filter(Boolean);
      const deadline = Date.now() + 60_000;
      while ((await queued()).length < 4) {
        if (Date.now() > deadline) throw new Error('the jobs never reached the simulated queue');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect((await queued()).every((line) => line.endsWith(' 1'))).toBe(true); // idle
      const rm = await cogd(['rm', '1', '--home', home], { env });
      expect(rm.stdout).toMatch(/All jobs in run 1 have been marked for removal/);
      while ((await queued()).length > 0) {
        if (Date.now() > deadline) {
          throw new Error(
            `condor_rm never reached the queue: ${(await queued()).join(', ')}\n${readFileSync(path.join(home, 'logs', 'cogd.log'), 'utf8').slice(-3000)}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const removedDir = path.join(env['CONDOR_SIM_DIR']!, 'removed');
      expect(readdirSync(removedDir)).toEqual(['101']); // one condor_rm of the whole cluster
      let failed = '';
      while (!/-failed-/.test(failed)) {
        if (Date.now() > deadline) throw new Error('the run never finished after cogd rm');
        failed = (await keys(buckets.input, 'q/')).join(' ');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const { failed: rowsFailed, errors } = await results(buckets.input);
      expect(rowsFailed).toEqual(rows);
      expect(errors).toMatch(/removed by user/);
      expect(events(home).filter((e) => e.code === 9).length).toBe(4);
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
  });

  it('cogd stop leaves queued jobs in HTCondor; the next start follows them without resubmitting', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c', 'd']);
    const env = await simEnv({ CONDOR_SIM_START_MS: '4000', CONDOR_SIM_SLOTS: '1' });
    const args = [...(await baseArgs(buckets, home)), ...CONDOR, '--schedule', '0 0 1 1 *'];
    const queued = async (): Promise<number> =>
      (await execa('condor_q', ['-af', 'ClusterId'], { env })).stdout.split('\n').filter(Boolean).length;
    const deadline = Date.now() + 90_000;
    const waitFor = async (what: string, done: () => Promise<boolean>): Promise<void> => {
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    try {
      await waitFor('the jobs in the queue', async () => (await queued()) === 4);
      const stop = await cogd(['stop', '--home', home], { env });
      expect(stop.exitCode, stop.stderr).toBe(0);
      expect(await queued()).toBe(4); // a stop is not a condor_rm
      expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
      await waitFor('the run to finish', async () => {
        const status = JSON.parse((await cogd(['status', '--json', '--home', home])).stdout) as {
          runs: Array<{ state: string }>;
        };
        return status.runs[0]?.state === 'done';
      });
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
    expect(events(home).filter((e) => e.code === 0).length).toBe(4); // submitted once each
    const { processed } = await results(buckets.input);
    expect(processed).toEqual(rows);
    const jobs = JSON.parse((await cogd(['status', '--json', '--jobs', '--home', home])).stdout) as {
      jobs: Array<{ attempts: number; state: string }>;
    };
    expect(jobs.jobs.map((j) => [j.state, j.attempts])).toEqual(rows.map(() => ['converted', 1]));
  });

  const POINTS: CrashPoint[] = ['condor:batch-recorded', 'condor:submitted', 'condor:result-recorded'];

  it.each(POINTS)('neither loses nor duplicates a job after SIGKILL at %s', async (point) => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows: string[] = [];
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      await putFile(
        buckets.input,
        `img/${name}.tif`,
        await makeTiff(path.join(home, `${name}.tif`), { bands: name === 'c' ? 3 : 1 }),
      );
      rows.push(`img/${name}.tif,${name === 'c' ? 3 : 1}`);
    }
    await put(buckets.input, 'q/m-raw.csv', `${rows.join('\n')}\n`);
    const env = await simEnv({ CONDOR_SIM_SLOTS: '1' });
    const args = ['poll', '--wait', ...(await baseArgs(buckets, home)), ...CONDOR, '--condor-batch-size', '3'];
    const crashed = await cogd(args, { env: { ...env, COGD_TEST_CRASH_AT: point } });
    expect(crashed.exitCode, `${crashed.stdout}${crashed.stderr}`).toBe(-1);
    const again = await cogd(args, { env });
    expect(again.stdout, again.stderr).toMatch(/5 rows, 5 processed, 0 failed/);
    expect(again.exitCode).toBe(0);
    // Every row went through HTCondor exactly once (a batch that never reached condor_submit
    // is submitted after the restart; one that did is never submitted again).
    const submits = events(home).filter((e) => e.code === 0);
    expect(submits.length).toBe(5);
    expect(events(home).filter((e) => e.code === 5).length).toBe(5);
    expect(await keys(buckets.output)).toEqual(
      ['a', 'b', 'c', 'd', 'e'].flatMap((n) => [`img/${n}.jpg`, `img/${n}.tif`]),
    );
    const { processed } = await results(buckets.input);
    expect(processed).toEqual(rows);
  });

  it("converts with the watch's profile and preview settings, checked on the execute node", async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img/dem.tif', await featureTiff(home, 'u16-nodata'));
    await put(buckets.input, 'q/m-raw.csv', 'img/dem.tif,1\n');
    const env = await simEnv();
    const run = await cogd(
      [
        'poll',
        '--wait',
        ...(await baseArgs(buckets, home)),
        ...CONDOR,
        '--profile',
        'zstd',
        '--preview-background',
        'gray',
      ],
      { env },
    );
    expect(run.stdout, run.stderr).toMatch(/1 rows, 1 processed, 0 failed/);
    const cog = await download(buckets.output, 'img/dem.tif', path.join(home, 'out.tif'));
    const structure = (await gdalinfo(cog)).metadata?.['IMAGE_STRUCTURE'] ?? {};
    expect(structure['COMPRESSION']).toBe('ZSTD');
    expect(structure['PREDICTOR']).toBe('2');
    // Nodata (the left half) is drawn in the background colour; the data is stretched over 8 bits.
    const preview = await download(buckets.output, 'img/dem.jpg', path.join(home, 'out.jpg'));
    const [gap] = await pixel(preview, 100, 200);
    expect(Math.abs(gap! - 128), `nodata drawn as ${gap}`).toBeLessThanOrEqual(2);
    expect((await pixel(preview, 599, 399))[0]).toBeGreaterThan(225);
    // The worker said what it did and that its own gate and fidelity check passed.
    const runDir = path.join(
      home,
      'logs',
      readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!,
    );
    const said = readFileSync(path.join(runDir, 'dem.err'), 'utf8');
    expect(said).toMatch(
      /cogd-worker: profile zstd: lossless; preview from band\(s\) 1, masked pixels drawn as the background/,
    );
    expect(said).toMatch(/cogd-worker: gdal_translate -q -of COG -co COMPRESS=ZSTD -co PREDICTOR=2 /);
    expect(said).toMatch(/cogd-worker: checked: a valid COG, faithful to the input, pixels identical/);
  });

  it('refuses to start without S3 key files, and explains', async () => {
    const home = await tempDir();
    const run = await cogd([
      'poll',
      '-p',
      '*raw.csv',
      '--input-bucket',
      'in-x',
      '--output-bucket',
      'out-x',
      '--home',
      home,
      '--executor',
      'condor',
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/--executor condor needs the S3 keys in files.*-a\/--access-key FILE/);
  });
});
