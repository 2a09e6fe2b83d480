/**
 * The HTCondor executor end to end: the real CLI, the real S3 server, real GDAL in the worker, and
 * the test-only simulator of condor_submit / condor_q / condor_rm (test/fixtures/condor-sim) on
 * PATH. The simulator performs the S3 transfers the rendered submit description asks for, so a
 * wrong transfer_input_files or transfer_output_remaps fails these tests.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StacCollection, StacItem } from '../../src/stac/types.js';
import type { CrashPoint } from '../../src/util/crash.js';
import { parseEvents } from '../../src/executors/condor/eventlog.js';
import { featureTiff, pixel } from '../support/images.js';
import { STAC_SCHEMAS, stacValidator } from '../support/stac.js';
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
  tempDir,
} from '../support/helpers.js';
import { simEnv, stopSimulators } from '../support/condor-sim.js';

afterAll(stopSimulators);

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
    expect(await keys(buckets.output)).toEqual([
      'collection.json',
      ...['a', 'b'].flatMap((n) => [`img/${n}.jpg`, `img/${n}.json`, `img/${n}.tif`]),
    ]);
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
    // Items too, also of jobs whose outcome a restarted cogd found recorded: their facts were on disk.
    expect(await keys(buckets.output)).toEqual([
      'collection.json',
      ...['a', 'b', 'c', 'd', 'e'].flatMap((n) => [`img/${n}.jpg`, `img/${n}.json`, `img/${n}.tif`]),
    ]);
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

  it("writes the local executor's STAC items from the facts the worker leaves; none with --no-stac", async () => {
    const stageStac = async (home: string, buckets: { input: string; output: string }): Promise<void> => {
      await putFile(buckets.input, 'utm/scene.tif', await featureTiff(home, 'u16-nodata'));
      await putFile(buckets.input, 'utm/rgb.tif', await featureTiff(home, 'rgb'));
      const plain = path.join(home, 'plain.tif');
      await execa('gdal_create', ['-of', 'GTiff', '-outsize', '300', '200', '-bands', '1', '-burn', '7', plain]);
      await putFile(buckets.input, 'plain.tif', plain);
      // Taken at a known time: the item's datetime is the TIFF's, not the processing time.
      const dated = path.join(home, 'dated.tif');
      await execa('gdal_translate', ['-q', '-mo', 'TIFFTAG_DATETIME=2021:06:30 10:20:30', plain, dated]);
      await putFile(buckets.input, 'dated.tif', dated);
      await put(buckets.input, 'q/s-raw.csv', 'utm/scene.tif,1\nutm/rgb.tif,3\nplain.tif,1\ndated.tif,1\n');
    };
    const localHome = await tempDir();
    const localBuckets = await freshBuckets();
    await stageStac(localHome, localBuckets);
    const local = await cogd(['poll', '--wait', ...(await baseArgs(localBuckets, localHome))]);
    expect(local.exitCode, local.stderr).toBe(0);
    const home = await tempDir();
    const buckets = await freshBuckets();
    await stageStac(home, buckets);
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...CONDOR], { env: await simEnv() });
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(await keys(buckets.output)).toEqual(await keys(localBuckets.output));

    const validator = STAC_SCHEMAS === undefined ? undefined : stacValidator(STAC_SCHEMAS);
    /** An item without what differs between two conversions of one image: when they ran. */
    const timeless = (item: StacItem): StacItem => {
      const properties: StacItem['properties'] = { ...item.properties, 'processing:datetime': '(when)' };
      if (properties['cogd:datetime_source'] === 'processing') properties.datetime = '(when)';
      return { ...item, properties };
    };
    for (const name of ['utm/scene', 'utm/rgb', 'plain', 'dated']) {
      const item = JSON.parse(await getText(buckets.output, `${name}.json`)) as StacItem;
      // (in its own buckets, which the items name)
      const twin = JSON.parse(
        (await getText(localBuckets.output, `${name}.json`)).replaceAll(localBuckets.output, buckets.output),
      ) as StacItem;
      if (validator !== undefined) expect(validator.validateItem(item), name).toEqual([]);
      // Checksums of the bytes in the bucket (the worker's, of what HTCondor uploaded).
      for (const [asset, ext] of [
        ['data', 'tif'],
        ['preview', 'jpg'],
      ] as const) {
        const bytes = await readFile(await download(buckets.output, `${name}.${ext}`, path.join(home, `o.${ext}`)));
        const sum = createHash('sha256').update(bytes).digest('hex');
        expect(item.assets[asset]?.['file:checksum'], `${name} ${asset}`).toBe(`1220${sum}`);
        expect(item.assets[asset]?.['file:size'], `${name} ${asset}`).toBe(bytes.length);
      }
      // The local executor's item of the same image, field for field: footprint, projection,
      // bands and statistics, assets, processing, links.
      expect(timeless(item), name).toEqual(timeless(twin));
      expect(Date.parse(item.properties['processing:datetime'] as string), name).toBeGreaterThan(Date.now() - 600_000);
    }
    expect((JSON.parse(await getText(buckets.output, 'dated.json')) as StacItem).properties.datetime).toBe(
      '2021-06-30T10:20:30Z',
    );
    expect((JSON.parse(await getText(buckets.output, 'plain.json')) as StacItem).geometry).toBeNull();
    expect((JSON.parse(await getText(buckets.output, 'utm/scene.json')) as StacItem).properties['proj:epsg']).toBe(
      32618,
    );
    const collection = JSON.parse(await getText(buckets.output, 'collection.json')) as StacCollection;
    if (validator !== undefined) expect(validator.validateCollection(collection)).toEqual([]);
    const hrefs = collection.links.filter((l) => l.rel === 'item').map((l) => l.href);
    expect(hrefs.sort()).toEqual(['./dated.json', './plain.json', './utm/rgb.json', './utm/scene.json']);
    const localCollection = JSON.parse(await getText(localBuckets.output, 'collection.json')) as StacCollection;
    expect(collection.extent.spatial).toEqual(localCollection.extent.spatial);
    expect(collection.extent.temporal.interval[0]?.[0]).toBe('2021-06-30T10:20:30Z');
    const verified = await cogd(['verify', '1', '--home', home]);
    expect(verified.exitCode, verified.stdout).toBe(0);
    expect(verified.stdout).toMatch(/run 1: 4 of 4 items as recorded/);
    // The facts came back beside the run's logs.
    const runDir = path.join(
      home,
      'logs',
      readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!,
    );
    expect(readdirSync(path.join(runDir, 'condor', 'facts')).sort()).toEqual(
      ['dated', 'plain', 'rgb', 'scene'].flatMap((n) => [`${n}.facts.txt`, `${n}.footprint.txt`, `${n}.gdalinfo.json`]),
    );

    // --no-stac: neither items nor facts.
    const offHome = await tempDir();
    const offBuckets = await freshBuckets();
    await putFile(offBuckets.input, 'a.tif', await featureTiff(offHome, 'rgb'));
    await put(offBuckets.input, 'q/n-raw.csv', 'a.tif,3\n');
    const off = await cogd(['poll', '--wait', ...(await baseArgs(offBuckets, offHome)), ...CONDOR, '--no-stac'], {
      env: await simEnv(),
    });
    expect(off.exitCode, `${off.stdout}\n${off.stderr}`).toBe(0);
    expect(await keys(offBuckets.output)).toEqual(['a.jpg', 'a.tif']);
    const offRun = path.join(
      offHome,
      'logs',
      readdirSync(path.join(offHome, 'logs')).find((d) => d.startsWith('run-'))!,
    );
    expect(existsSync(path.join(offRun, 'condor', 'facts'))).toBe(false);
    expect(readFileSync(path.join(offRun, 'condor', 'batch-1.sub'), 'utf8')).toMatch(
      /^transfer_output_files {3}= cog\.tif, preview\.jpg$/m,
    );
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
