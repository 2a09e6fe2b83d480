/**
 * The daemon and its controls, with real child processes: start (detached) → status → a manifest
 * processed → rm a running job and a run → stop; two starts on one home give one daemon.
 */
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  alive,
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
  // Never leak a daemon: stop every home a test used.
  for (const home of homes.splice(0)) await cogd(['stop', '--home', home]);
});

describe('cogd start / status / rm / stop', () => {
  it('runs a detached daemon that converts, removes what it is told to, and stops', async () => {
    const home = await tempDir();
    homes.push(home);
    const gate = path.join(home, 'gate');
    const buckets = await freshBuckets();
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      await putFile(buckets.input, `img/${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    }
    const env = { PATH: `${GATED}:${process.env['PATH'] ?? ''}`, COGD_TEST_GDAL_GATE: gate };
    const args = await baseArgs(buckets, home);
    const started = await cogd(['start', ...args, '-m', '1', '--schedule', '*/1 * * * * *'], { env });
    expect(started.exitCode, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/^watch 1 COG-Pipeline-Crondor-\*raw\.csv: polling s3:\/\/in-/m);
    const pid = Number(/cogd daemon \(pid (\d+)\)/.exec(started.stdout)?.[1]);
    expect(alive(pid)).toBe(true);
    expect(readFileSync(path.join(home, 'cogd.pid'), 'utf8').split('\n').slice(0, 2)).toEqual([String(pid), 'daemon']);

    const first = await status(home);
    expect(first.daemon).toEqual({ running: true, pid });
    expect(first.watches.map((w) => [w.id, w.batchName])).toEqual([['w1', 'COG-Pipeline-Crondor-*raw.csv']]);
    const text = await cogd(['status', '--home', home]);
    expect(text.stdout).toMatch(/^OWNER +BATCH_NAME +SUBMITTED +DONE +RUN +IDLE +HOLD +TOTAL +JOB_IDS$/m);
    expect(text.stdout).toMatch(/COG-Pipeline-Crondor-\*raw\.csv .* w1$/m);

    await put(buckets.input, 'one-raw.csv', 'img/a.tif,1\nimg/b.tif,1\nimg/c.tif,1\n');
    // Job 1.1 runs (held at the gate); -m 1 keeps the rest idle.
    await until('job 1.1 running', async () => {
      const s = await status(home, '--jobs');
      return s.jobs?.find((j) => j.id === '1.1' && j.state === 'running');
    });
    await put(buckets.input, 'two-raw.csv', 'img/d.tif,1\nimg/e.tif,1\n');
    await until('run 2 planned', async () =>
      (await status(home)).runs.find((r) => r.id === 2 && r.counts['total'] === 2),
    );

    const rmJob = await cogd(['rm', '1.1', '--home', home]);
    expect(rmJob.exitCode).toBe(0);
    expect(rmJob.stdout).toBe('Job 1.1 has been marked for removal');
    await until('job 1.1 removed', async () =>
      (await status(home, '--jobs')).jobs?.find((j) => j.id === '1.1' && j.state === 'removed'),
    );

    const rmRun = await cogd(['rm', '2', '--home', home]);
    expect(rmRun.stdout).toBe('All jobs in run 2 have been marked for removal');
    const unknown = await cogd(['rm', '99', '7.7', '--home', home]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/nothing unfinished matches 99, 7\.7/);

    await writeFile(gate, ''); // let the remaining jobs run
    const done = await until('both runs done', async () => {
      const s = await status(home);
      return s.runs.length === 2 && s.runs.every((r) => r.state === 'done') ? s : undefined;
    });
    expect(done.runs.map((r) => [r.id, r.counts['done'], r.counts['removed']])).toEqual([
      [1, 2, 1],
      [2, 0, 2],
    ]);
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'one-', 'processed'))!)).toBe(
      'img/b.tif,1\nimg/c.tif,1\n',
    );
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'one-', 'failed'))!)).toBe('img/a.tif,1\n');
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'two-', 'failed'))!)).toBe(
      'img/d.tif,1\nimg/e.tif,1\n',
    );
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'two-', 'errors'))!)).toMatch(
      /img\/d\.tif,removed by user/,
    );
    expect(await keys(buckets.output)).toEqual([
      'collection.json',
      'img/b.jpg',
      'img/b.json',
      'img/b.tif',
      'img/c.jpg',
      'img/c.json',
      'img/c.tif',
    ]);
    // The removed job's gated gdal_translate was killed with its process group.
    const { stdout: ps } = await execa('ps', ['-eo', 'args']);
    expect(ps).not.toContain(gate);

    // The live view, without a terminal: plain lines, no escape codes, and it ends when the run is done.
    const watched = await cogd(['watch', '1', '--home', home]);
    expect(watched.exitCode).toBe(0);
    expect(watched.stdout).toMatch(
      /^run 1 \[#+\] 3\/3 done: 2 converted, 0 failed, 1 removed; 0 running, 0 idle, 0 held \(done\)/,
    );
    expect(watched.stdout).not.toContain('\x1b');

    const logs = await cogd(['logs', '1', '1', '--home', home]);
    expect(logs.stdout).toMatch(/==> logs\/run-[\d-]+\/a\.log <==/);
    expect(logs.stdout).toMatch(/removed by user/);
    const postLog = await cogd(['logs', '1', '--home', home]);
    expect(postLog.stdout).toMatch(/rows 3, processed 2, failed 1/);

    const stopped = await cogd(['stop', '--home', home]);
    expect(stopped.exitCode).toBe(0);
    expect(stopped.stdout).toMatch(new RegExp(`cogd daemon \\(pid ${pid}\\) stopped`));
    await until('the daemon process to exit', async () => (alive(pid) ? undefined : true), 10);
    expect(existsSync(path.join(home, 'cogd.pid'))).toBe(false);
    const after = await status(home);
    expect(after.daemon.running).toBe(false);
    expect(after.runs.length).toBe(2); // status works with the daemon stopped
  });

  it('two starts on one home give one daemon with both watches', async () => {
    const home = await tempDir();
    homes.push(home);
    const buckets = await freshBuckets();
    const args = await baseArgs(buckets, home);
    const withPattern = (pattern: string): string[] => args.map((a, i) => (args[i - 1] === '-p' ? pattern : a));
    const [one, two] = await Promise.all([
      cogd(['start', ...withPattern('*raw.csv')]),
      cogd(['start', ...withPattern('*todo.csv')]),
    ]);
    expect(one.exitCode, one.stderr).toBe(0);
    expect(two.exitCode, two.stderr).toBe(0);
    const pids = [one.stdout, two.stdout].map((out) => Number(/pid (\d+)/.exec(out)?.[1]));
    expect(pids[0]).toBe(pids[1]);
    // The daemon the losing start launched gives up at once; one daemon serves the home.
    const daemons = await until(
      'one daemon',
      async () => {
        const { stdout: ps } = await execa('ps', ['-eo', 'pid,args']);
        const found = ps.split('\n').filter((line) => line.includes(' daemon --home ') && line.includes(home));
        return found.length === 1 ? found : undefined;
      },
      10,
    );
    expect(Number(daemons[0]!.trim().split(' ')[0])).toBe(pids[0]);
    const s = await until('both watches', async () => {
      const r = await status(home);
      return r.watches.length === 2 ? r : undefined;
    });
    expect(s.watches.map((w) => w.batchName).sort()).toEqual([
      'COG-Pipeline-Crondor-*raw.csv',
      'COG-Pipeline-Crondor-*todo.csv',
    ]);
    const rm = await cogd(['rm', 'COG-Pipeline-Crondor-*todo.csv', '--home', home]);
    expect(rm.stdout).toMatch(/Watch w\d \(COG-Pipeline-Crondor-\*todo\.csv\) has been removed/);
    expect((await status(home)).watches.map((w) => w.batchName)).toEqual(['COG-Pipeline-Crondor-*raw.csv']);
    // A poll refuses to work beside the daemon instead of doubling its work.
    const poll = await cogd(['poll', '--wait', ...args]);
    expect(poll.exitCode).toBe(1);
    expect(poll.stderr).toMatch(/a cogd daemon \(pid \d+\) is running on/);
  });
});
