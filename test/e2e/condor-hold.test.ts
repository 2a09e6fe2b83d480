/**
 * `cogd hold` / `cogd release` of a run whose jobs HTCondor has: condor_hold with cogd's reason
 * (a user hold, code 1, which the submit description's periodic_release leaves alone), then
 * condor_release; the HTCondor simulator (test/fixtures/condor-sim) on PATH, a real daemon, S3
 * server and GDAL.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  baseArgs,
  cogd,
  freshBuckets,
  getText,
  makeTiff,
  put,
  putFile,
  resultKeyOf,
  ROOT,
  status,
  tempDir,
  until,
} from '../support/helpers.js';

const SIM = path.join(ROOT, 'test/fixtures/condor-sim');
const simDirs: string[] = [];
const homes: string[] = [];

afterEach(async () => {
  for (const home of homes.splice(0)) await cogd(['stop', '--home', home]);
});

afterAll(() => {
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

interface Jobs {
  runs: Array<{ id: number; state: string; counts: Record<string, number> }>;
  jobs?: Array<{ id: string; state: string; error: string | null; attempts: number }>;
  holds?: Array<{ id: string; reason: string }>;
}

describe('hold and release on HTCondor', () => {
  it('holds the queued jobs of a held run with condor_hold, and condor_release lets them run', async () => {
    const home = await tempDir();
    homes.push(home);
    const sim = await tempDir('condor-sim-');
    simDirs.push(sim);
    const buckets = await freshBuckets();
    for (const name of ['a', 'b']) {
      await putFile(buckets.input, `${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    }
    // Procs wait 8 s in the queue before they run: time to hold them there.
    const env = {
      PATH: `${SIM}:${process.env['PATH'] ?? ''}`,
      CONDOR_SIM_DIR: sim,
      CONDOR_SIM_START_MS: '8000',
      CONDOR_SIM_RELEASE_MS: '200',
    };
    const args = [
      ...(await baseArgs(buckets, home)),
      '--executor',
      'condor',
      '--release-delay',
      '1',
      '--schedule',
      '*/1 * * * * *',
    ];
    const started = await cogd(['start', ...args], { env });
    expect(started.exitCode, started.stderr).toBe(0);
    await put(buckets.input, 'm-raw.csv', 'a.tif,1\nb.tif,1\n');
    await until('a cluster in the queue', async () =>
      existsSync(path.join(sim, 'clusters')) && readdirSync(path.join(sim, 'clusters')).length > 0 ? true : undefined,
    );

    const held = await cogd(['hold', '1', '--reason', 'quota', '--home', home]);
    expect(held.stdout).toBe('All jobs in run 1 have been held');
    const both = await until('both jobs held by HTCondor', async () => {
      const s = (await status(home, '--jobs')) as unknown as Jobs;
      // Held in cogd's view at once; held by HTCondor once its event log says so.
      return s.jobs?.every((j) => j.state === 'held' && j.error?.startsWith('held: cogd hold:') === true) === true
        ? s
        : undefined;
    });
    for (const job of both.jobs!) expect(job.error).toMatch(/^held: cogd hold: quota \(by \S+\) \(hold code 1\/0\)$/);
    const cluster = readdirSync(path.join(sim, 'clusters'))[0]!.replace(/\.json$/, '');
    expect(readdirSync(path.join(sim, 'userheld')).sort()).toEqual([`${cluster}.0`, `${cluster}.1`]);
    // A user hold is not released by periodic_release (the simulator's delay is 200 ms).
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const still = (await status(home, '--jobs', '--hold')) as unknown as Jobs;
    expect(still.jobs?.map((j) => j.state)).toEqual(['held', 'held']);
    expect(still.holds?.map((h) => h.id)).toEqual(['1', '1.1', '1.2']);

    const released = await cogd(['release', '1', '--home', home]);
    expect(released.stdout).toBe('All jobs in run 1 have been released');
    const done = await until(
      'run 1 done',
      async () => {
        const s = (await status(home, '--jobs')) as unknown as Jobs;
        return s.runs[0]?.state === 'done' ? s : undefined;
      },
      90,
    );
    expect(done.jobs?.map((j) => j.state)).toEqual(['converted', 'converted']);
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'm-', 'processed'))!)).toBe(
      'a.tif,1\nb.tif,1\n',
    );
    const runDir = readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-'))!;
    const events = readFileSync(path.join(home, 'logs', runDir, 'condor.log'), 'utf8');
    expect(events).toMatch(/^013 \(\d+\.000\.000\) .* Job was released\.\n\tvia condor_release/m);
  });
});
