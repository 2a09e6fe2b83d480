/**
 * `--rows-per-job` on HTCondor end to end: the real CLI, the real S3 server, real GDAL in the
 * worker, and the test-only simulator (test/fixtures/condor-sim) on PATH. One proc converts a
 * group of rows; each row keeps its own outcome, logs, retries and removal.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEvents } from '../../src/executors/condor/eventlog.js';
import type { CrashPoint } from '../../src/util/crash.js';
import { baseArgs, cogd, freshBuckets, getText, keys, makeTiff, put, putFile, tempDir } from '../support/helpers.js';
import { simEnv, stopSimulators } from '../support/condor-sim.js';

afterAll(stopSimulators);

const CONDOR = ['--executor', 'condor', '--max-holds', '2', '--release-delay', '1', '--retries', '1'];

/** `count` gray images (one file, many keys) and a manifest of them plus `extra` rows; returns the rows. */
async function stage(
  home: string,
  buckets: { input: string; output: string },
  count: number,
  extra: string[] = [],
): Promise<string[]> {
  const tiff = await makeTiff(path.join(home, 'gray.tif'), { bands: 1 });
  const rows: string[] = [];
  for (let i = 1; i <= count; i += 1) {
    const name = `t${String(i).padStart(2, '0')}`;
    await putFile(buckets.input, `img/${name}.tif`, tiff);
    rows.push(`img/${name}.tif,1`);
  }
  await put(buckets.input, 'q/m-raw.csv', `${[...rows, ...extra].join('\n')}\n`);
  return rows;
}

async function results(bucket: string): Promise<{ processed: string[]; failed: string[]; errors: string }> {
  const all = await keys(bucket, 'q/');
  const text = async (kind: string): Promise<string> => {
    const key = all.find((k) => k.includes(`-${kind}-`));
    return key === undefined ? '' : getText(bucket, key);
  };
  const rows = (t: string): string[] => t.split('\n').filter(Boolean).sort();
  return { processed: rows(await text('processed')), failed: rows(await text('failed')), errors: await text('errors') };
}

function runDir(home: string): string {
  return path.join(
    home,
    'logs',
    readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!,
  );
}

function events(home: string): ReturnType<typeof parseEvents>['events'] {
  return parseEvents(readFileSync(path.join(runDir(home), 'condor.log'), 'utf8')).events;
}

/** The rows file of every group submitted, by name (`batch-N.P`), as lines. */
function groupRows(home: string): Map<string, string[]> {
  const dir = path.join(runDir(home), 'condor', 'groups');
  return new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.rows'))
      .map((f) => [f.replace(/\.rows$/, ''), readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean)]),
  );
}

describe('--rows-per-job on HTCondor', () => {
  it('converts 25 rows in 3 jobs; a missing image fails alone with its reason and is retried alone', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stage(home, buckets, 24);
    const missing = 'img/missing.tif,1';
    // The missing row in the middle: it shares its group with others.
    const manifest = [...rows.slice(0, 14), missing, ...rows.slice(14)];
    await put(buckets.input, 'q/m-raw.csv', `${manifest.join('\n')}\n`);
    const env = await simEnv();
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...CONDOR, '--rows-per-job', '10'], {
      env,
    });
    expect(run.stdout, `${run.stdout}\n${run.stderr}`).toMatch(/25 rows, 24 processed, 1 failed/);
    expect(run.exitCode).toBe(1);

    const { processed, failed, errors } = await results(buckets.input);
    expect(processed).toEqual([...rows].sort());
    expect(failed).toEqual([missing]);
    expect(errors).toMatch(/img\/missing\.tif.*s3:\/\/[^/]+\/img\/missing\.tif does not exist/);
    // Every converted row's outputs and STAC item are in the output bucket; nothing of the missing one.
    const out = await keys(buckets.output);
    expect(out).toEqual([
      'collection.json',
      ...rows.flatMap((r) => {
        const base = r.replace(/\.tif,1$/, '');
        return [`${base}.jpg`, `${base}.json`, `${base}.tif`];
      }),
    ]);

    // 3 procs for the first attempts (10 + 10 + 5 rows), then the missing row's retry: one proc of
    // one row. Every proc ran to its end; none was held.
    const log = events(home);
    const submits = log.filter((e) => e.code === 0);
    expect(submits.length).toBe(4);
    expect(new Set(submits.slice(0, 3).map((e) => e.cluster)).size).toBe(1);
    expect(log.filter((e) => e.code === 5).length).toBe(4);
    expect(log.filter((e) => e.code === 12).length).toBe(0);
    const groups = groupRows(home);
    expect([...groups.keys()].sort()).toEqual(['batch-1.0', 'batch-1.1', 'batch-1.2', 'batch-2.0']);
    expect(['batch-1.0', 'batch-1.1', 'batch-1.2'].map((g) => groups.get(g)!.length)).toEqual([10, 10, 5]);
    expect(groups.get('batch-1.1')).toContain('- missing');
    expect(groups.get('batch-2.0')).toEqual(['- missing']); // the retry: alone
    const sub = readFileSync(path.join(runDir(home), 'condor', 'batch-2.sub'), 'utf8');
    expect(sub.match(/^queue$/gm)?.length).toBe(1);
    expect(readFileSync(path.join(runDir(home), 'condor', 'batch-1.sub'), 'utf8').match(/^queue$/gm)?.length).toBe(3);

    // Each row has its own logs under its own name, as with one row per job.
    const dir = runDir(home);
    expect(readFileSync(path.join(dir, 't03.err'), 'utf8')).toMatch(/cogd-worker: checked: a valid COG/);
    expect(readFileSync(path.join(dir, 't03.log'), 'utf8')).toMatch(
      /submitted in HTCondor job \d+\.0 \(batch 1, group batch-1\.0 of 10 rows\)/,
    );
    expect(readFileSync(path.join(dir, 'missing.err'), 'utf8')).toMatch(/the input object does not exist/);
    expect(readFileSync(path.join(dir, 'missing.log'), 'utf8')).toMatch(/group batch-2\.0 of 1 row\)/);
  });

  it('cogd rm of one row of a group leaves the others converting; the group is not removed', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stage(home, buckets, 8);
    // The group waits in the queue long enough to remove one of its rows there.
    const env = await simEnv({ CONDOR_SIM_START_MS: '5000' });
    const args = [...(await baseArgs(buckets, home)), ...CONDOR, '--rows-per-job', '4', '--schedule', '0 0 1 1 *'];
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    try {
      const deadline = Date.now() + 90_000;
      const waitFor = async (what: string, done: () => Promise<boolean>): Promise<void> => {
        while (!(await done())) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      };
      await waitFor('the groups in the queue', async () => {
        const dir = path.join(home, 'logs');
        return (
          existsSync(dir) &&
          readdirSync(dir).some((d) => d.startsWith('run-')) &&
          existsSync(path.join(runDir(home), 'condor.log')) &&
          events(home).filter((e) => e.code === 0).length === 2
        );
      });
      const rm = await cogd(['rm', '1.3', '--home', home], { env });
      expect(rm.stdout).toBe('Job 1.3 has been marked for removal');
      await waitFor('the run to finish', async () =>
        (await keys(buckets.input, 'q/')).some((k) => k.includes('-processed-')),
      );
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
    const { processed, failed, errors } = await results(buckets.input);
    expect(failed).toEqual([rows[2]]);
    expect(errors).toMatch(/removed by user/);
    expect(processed).toEqual(rows.filter((_, i) => i !== 2));
    // No condor_rm: the group went on for its other rows; the removed row's outputs were not uploaded.
    expect(readdirSync(path.join(env['CONDOR_SIM_DIR']!, 'removed'))).toEqual([]);
    expect(events(home).filter((e) => e.code === 5).length).toBe(2);
    const out = await keys(buckets.output);
    expect(out).not.toContain('img/t03.tif');
    expect(out).toContain('img/t04.tif');
  });

  it('cogd rm of a whole run removes its group jobs with condor_rm', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stage(home, buckets, 4);
    const env = await simEnv({ CONDOR_SIM_START_MS: '60000' });
    const args = [...(await baseArgs(buckets, home)), ...CONDOR, '--rows-per-job', '2', '--schedule', '0 0 1 1 *'];
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    const removedDir = path.join(env['CONDOR_SIM_DIR']!, 'removed');
    try {
      const deadline = Date.now() + 60_000;
      const waitFor = async (what: string, done: () => Promise<boolean> | boolean): Promise<void> => {
        while (!(await done())) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      };
      await waitFor(
        'the groups in the queue',
        () =>
          existsSync(path.join(home, 'logs')) &&
          readdirSync(path.join(home, 'logs')).some((d) => d.startsWith('run-')) &&
          existsSync(path.join(runDir(home), 'condor.log')) &&
          events(home).filter((e) => e.code === 0).length === 2,
      );
      expect((await cogd(['rm', '1', '--home', home], { env })).exitCode).toBe(0);
      await waitFor(
        'condor_rm of both groups',
        () => readdirSync(removedDir).length > 0 && events(home).filter((e) => e.code === 9).length === 2,
      );
      await waitFor('the run to finish', async () =>
        (await keys(buckets.input, 'q/')).some((k) => k.includes('-failed-')),
      );
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
    const { failed, errors } = await results(buckets.input);
    expect(failed).toEqual(rows);
    expect(errors).toMatch(/removed by user/);
  });

  const POINTS: CrashPoint[] = ['condor:batch-recorded', 'condor:submitted', 'condor:result-recorded'];

  it.each(POINTS)('neither loses nor duplicates a row after SIGKILL at %s', async (point) => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stage(home, buckets, 6);
    const env = await simEnv({ CONDOR_SIM_SLOTS: '1' });
    const args = ['poll', '--wait', ...(await baseArgs(buckets, home)), ...CONDOR, '--rows-per-job', '3'];
    const crashed = await cogd(args, { env: { ...env, COGD_TEST_CRASH_AT: point } });
    expect(crashed.exitCode, `${crashed.stdout}${crashed.stderr}`).toBe(-1);
    const again = await cogd(args, { env });
    expect(again.stdout, again.stderr).toMatch(/6 rows, 6 processed, 0 failed/);
    expect(again.exitCode).toBe(0);
    // Two groups, each submitted once.
    expect(events(home).filter((e) => e.code === 0).length).toBe(2);
    expect(events(home).filter((e) => e.code === 5).length).toBe(2);
    expect((await keys(buckets.output)).length).toBe(1 + 6 * 3);
    expect((await results(buckets.input)).processed).toEqual(rows);
  });
});
