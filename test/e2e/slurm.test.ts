/**
 * The Slurm executor end to end, against real Slurm 22.05 with accounting (sacct): a throw-away
 * one-node cluster on loopback started once per test run by the global setup
 * (scripts/lib/slurm.mjs), the real CLI, the real S3 server, real GDAL in the tasks. The cluster
 * without accounting (squeue only) is test/e2e/slurm-squeue.test.ts's. Skipped, with a notice,
 * where Slurm cannot be started.
 */
import { execa } from 'execa';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { CrashPoint } from '../../src/util/crash.js';
import {
  baseArgs,
  cogd,
  credentials,
  freshBuckets,
  keys,
  makeTiff,
  put,
  putFile,
  status,
  tempDir,
  until,
} from '../support/helpers.js';
import {
  accounting,
  envOf,
  gatedGdal,
  jobNames,
  results,
  runDirOf,
  SLURM,
  stage,
  stageGray,
  stillQueued,
} from '../support/slurm.js';

const conf = inject('slurmConf');
const unavailable = inject('slurmUnavailable');
if (conf === '') console.log(`Slurm suites skipped: ${unavailable}`);

describe.skipIf(conf === '')('the slurm executor', () => {
  it('converts a manifest as the local executor does: the same result CSVs, outputs and reasons, one array task per row, -m respected', async () => {
    const localHome = await tempDir();
    const localBuckets = await freshBuckets();
    await stage(localHome, localBuckets);
    const local = await cogd(['poll', '--wait', ...(await baseArgs(localBuckets, localHome)), '--retries', '1']);
    expect(local.exitCode, local.stderr).toBe(1);

    const home = await tempDir();
    const buckets = await freshBuckets();
    await stage(home, buckets);
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM, '-m', '2'], {
      env: envOf(conf),
    });
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stdout).toMatch(/7 rows, 4 processed, 3 failed/);

    const fromLocal = await results(localBuckets.input);
    const fromSlurm = await results(buckets.input);
    expect(fromSlurm.processed).toEqual(['img/gray.tif,1', 'img/rgb.tif,3', 'img/rgba.tif,4', 'img/u16.tif,3']);
    expect(fromSlurm.processed).toEqual(fromLocal.processed);
    expect(fromSlurm.failed).toEqual(fromLocal.failed);
    // The same reasons, word for word: the tasks run the local executor's own code.
    const bucketless = (lines: string[], bucket: string): string[] => lines.map((l) => l.replaceAll(bucket, 'BUCKET'));
    expect(bucketless(fromSlurm.errors, buckets.input)).toEqual(bucketless(fromLocal.errors, localBuckets.input));
    expect(fromSlurm.errors.join('\n')).toMatch(/img\/missing\.tif.*does not exist/);
    // The same outputs: COGs, previews, STAC items and the collection.
    expect(await keys(buckets.output)).toEqual(await keys(localBuckets.output));

    // sacct: one array task per valid row (the failures were permanent: no retry), all ended, and
    // never more than 2 running at once (-m 2).
    // (sacct lags squeue by a few seconds.)
    const tasks = await until('sacct to list every task ended', async () => {
      const all = await accounting(home, conf);
      return all.length >= 6 && all.every((t) => t.state === 'COMPLETED' || t.state === 'FAILED') ? all : undefined;
    });
    if (tasks.length !== 6) {
      // Which row ran twice, and why its first attempt failed: every image's log in the run's directory.
      const dir = await runDirOf(home);
      const logs = await Promise.all(
        (await readdir(dir))
          .filter((n) => n.endsWith('.log'))
          .map(async (n) => `--- ${n}\n${await readFile(path.join(dir, n), 'utf8')}`),
      );
      expect.fail(`${tasks.length} array tasks for 6 rows: ${JSON.stringify(tasks)}\n${logs.join('\n')}`);
    }
    expect(tasks.filter((t) => t.state === 'COMPLETED').length).toBe(4);
    expect(tasks.filter((t) => t.state === 'FAILED').length).toBe(2);
    let most = 0;
    for (const t of tasks) most = Math.max(most, tasks.filter((u) => u.start <= t.start && t.start < u.end).length);
    expect(most).toBeLessThanOrEqual(2);

    // The run's directory: the task → row mapping, each image's own log with what its task did.
    const runDir = await runDirOf(home);
    const batch = JSON.parse(await readFile(path.join(runDir, 'slurm', 'batch-1.json'), 'utf8')) as {
      tasks: Array<{ imageKey: string; logName: string }>;
    };
    expect(batch.tasks.length).toBeGreaterThan(0);
    const grayLog = await readFile(path.join(runDir, 'gray.log'), 'utf8');
    expect(grayLog).toMatch(/submitted as Slurm task \d+_\d+ \(batch \d+, job name cogd-[0-9a-f]{12}-r1-b\d+\)/);
    expect(grayLog).toMatch(/Slurm task \d+_\d+ \(job \d+\) on \S+: converting s3:\/\/\S+\/img\/gray\.tif/);
    expect(grayLog).toMatch(/uploaded and verified/);
    const exitRecords = await readdir(path.join(runDir, 'slurm', 'exit'));
    expect(exitRecords.length).toBe(6);
    // The secret key never leaves its file: not in the batch files, the script, nor any log.
    for (const dir of [runDir, path.join(runDir, 'slurm')]) {
      for (const name of await readdir(dir)) {
        if (name === 'exit' || name === 'slurm') continue;
        expect(await readFile(path.join(dir, name), 'utf8'), name).not.toContain(credentials().secretKey);
      }
    }
  });
  it('--rows-per-job 10: 25 rows in 3 array tasks, each row its own outcome, logs and exit record', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const tiff = await makeTiff(path.join(home, 'gray.tif'), { bands: 1 });
    const rows: string[] = [];
    for (let i = 1; i <= 24; i += 1) {
      const name = `t${String(i).padStart(2, '0')}`;
      await putFile(buckets.input, `img/${name}.tif`, tiff);
      rows.push(`img/${name}.tif,1`);
    }
    const missing = 'img/missing.tif,1';
    await put(buckets.input, 'q/m-raw.csv', `${[...rows.slice(0, 14), missing, ...rows.slice(14)].join('\n')}\n`);
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM, '--rows-per-job', '10'], {
      env: envOf(conf),
    });
    expect(run.stdout, `${run.stdout}\n${run.stderr}`).toMatch(/25 rows, 24 processed, 1 failed/);
    const { processed, failed, errors } = await results(buckets.input);
    expect(processed).toEqual([...rows].sort());
    expect(failed).toEqual([missing]);
    expect(errors.join('\n')).toMatch(/img\/missing\.tif.*does not exist/);
    const out = await keys(buckets.output);
    expect(out.filter((k) => k.endsWith('.tif')).length).toBe(24);

    // One array of 3 tasks (10 + 10 + 5 rows); one exit record per row; each row its own log.
    const runDir = await runDirOf(home);
    const batch = JSON.parse(await readFile(path.join(runDir, 'slurm', 'batch-1.json'), 'utf8')) as {
      tasks: Array<{ logName: string }>;
      groups: number[][];
    };
    expect(batch.groups.map((g) => g.length)).toEqual([10, 10, 5]);
    expect(batch.groups[1]!.map((i) => batch.tasks[i]!.logName)).toContain('missing');
    expect((await readdir(path.join(runDir, 'slurm', 'exit'))).length).toBe(25);
    const tasks = await until('sacct to list every task ended', async () => {
      const all = await accounting(home, conf);
      return all.length >= 3 && all.every((t) => t.state === 'COMPLETED' || t.state === 'FAILED') ? all : undefined;
    });
    expect(tasks.length).toBe(3);
    expect(tasks.every((t) => t.state === 'COMPLETED')).toBe(true); // a row's failure is its own
    const t03 = await readFile(path.join(runDir, 't03.log'), 'utf8');
    expect(t03).toMatch(/submitted in Slurm task \d+_0 \(batch 1, job name \S+, a group of 10 rows\)/);
    expect(t03).toMatch(/uploaded and verified/);
    expect(await readFile(path.join(runDir, 'missing.err'), 'utf8')).toMatch(/cogd-task: .*does not exist/);
  });

  it('cogd status shows the arrays and why jobs wait; cogd rm cancels them with scancel', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c', 'd']);
    // The tasks may not start for ten minutes: long enough to see them wait, and remove them.
    const args = [
      ...(await baseArgs(buckets, home)),
      ...SLURM,
      '--sbatch-arg=--begin=now+600',
      '--schedule',
      '0 0 1 1 *',
    ];
    const env = envOf(conf);
    const start = await cogd(['start', ...args], { env });
    expect(start.exitCode, start.stderr).toBe(0);
    try {
      await until('the tasks waiting in Slurm', async () =>
        (await stillQueued(home, conf).catch(() => [])).length === 4 ? true : undefined,
      );
      let last = '';
      const text = await until('cogd status to say why they wait', async () => {
        const shown = await cogd(['status', '--home', home], { env });
        last = shown.stdout + shown.stderr;
        return /4 jobs wait in Slurm: BeginTime/.test(shown.stdout) ? shown.stdout : undefined;
      }).catch(async (error: unknown) => {
        // What cogd showed and logged last, to tell a slow cluster from a wrong answer.
        const log = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8').catch(() => '');
        throw new Error(`${String(error)}\nlast cogd status:\n${last}\ncogd.log (end):\n${log.slice(-4000)}`);
      });
      expect(text).toMatch(/1\.1 \.\.\. 1\.4 \(Slurm \d+\)/);
      const rm = await cogd(['rm', '1', '--home', home], { env });
      expect(rm.stdout).toMatch(/All jobs in run 1 have been marked for removal/);
      await until('the run to finish', async () => ((await status(home)).runs[0]?.state === 'done' ? true : undefined));
      expect(await stillQueued(home, conf)).toEqual([]);
      const { failed, errors } = await results(buckets.input);
      expect(failed).toEqual(rows);
      expect(errors.filter((l) => /removed by user/.test(l)).length).toBe(4);
      // squeue keeps cancelled jobs listed (MinJobAge); sacct leaves out jobs whose start lies ahead.
      const listed = await execa('squeue', ['-h', '-t', 'all', '-n', (await jobNames(home)).join(','), '-o', '%i %T'], {
        env,
      });
      const lines = listed.stdout.split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThan(0);
      expect(
        lines.every((l) => l.endsWith(' CANCELLED')),
        listed.stdout,
      ).toBe(true);
      const log = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8');
      expect(log.match(/"message":"Slurm:Cancelled"/g)?.length ?? 0).toBeLessThanOrEqual(1);
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
  });
  const POINTS: CrashPoint[] = ['slurm:batch-recorded', 'slurm:submitted', 'slurm:result-recorded'];

  it.each(POINTS)('neither loses nor duplicates a job after SIGKILL at %s', async (point) => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c', 'd', 'e']);
    const args = ['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM];
    const crashed = await cogd(args, { env: { ...envOf(conf), COGD_TEST_CRASH_AT: point } });
    expect(crashed.exitCode, `${crashed.stdout}${crashed.stderr}`).toBe(-1);
    const again = await cogd(args, { env: envOf(conf) });
    expect(again.stdout, again.stderr).toMatch(/5 rows, 5 processed, 0 failed/);
    expect(again.exitCode).toBe(0);
    expect((await results(buckets.input)).processed).toEqual(rows);
    // sacct: every row went through Slurm exactly once (a batch that never reached sbatch is
    // submitted after the restart; one that did is found by its job name, never submitted again).
    const tasks = await until('sacct to list every task', async () => {
      const all = await accounting(home, conf);
      return all.length >= 5 && all.every((t) => t.state === 'COMPLETED') ? all : undefined;
    });
    expect(tasks.length, JSON.stringify(tasks)).toBe(5);
    const log = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8');
    if (point === 'slurm:batch-recorded') expect(log).toMatch(/Slurm:BatchUnconfirmed/);
    if (point === 'slurm:submitted') expect(log).toMatch(/Slurm:BatchRecovered/);
  });

  it('a node failure ends a task through no fault of its own: it is submitted again without spending a retry', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a']);
    const gate = path.join(home, 'gate');
    const env = { ...envOf(conf), PATH: `${await gatedGdal(home, gate)}:${process.env['PATH'] ?? ''}` };
    const poll = cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM], { env });
    try {
      await until('the task running', async () => {
        const queued = await stillQueued(home, conf).catch(() => []);
        return queued.some((l) => l.endsWith(' RUNNING')) ? true : undefined;
      });
      const down = await execa('scontrol', ['update', 'nodename=localhost', 'state=down', 'reason=cogd-test'], {
        env: envOf(conf),
      });
      expect(down.exitCode, down.stderr).toBe(0);
      const runDir = await runDirOf(home);
      await until('cogd to submit the task again', async () =>
        /NODE_FAIL.*submitted again/.test(await readFile(path.join(runDir, 'a.log'), 'utf8').catch(() => ''))
          ? true
          : undefined,
      );
    } finally {
      // The node comes back by itself (ReturnToService=2); resuming one that did is refused, harmlessly.
      await execa('scontrol', ['update', 'nodename=localhost', 'state=resume'], { env: envOf(conf), reject: false });
      await writeFile(gate, '');
    }
    const run = await poll;
    expect(run.stdout, run.stderr).toMatch(/1 rows, 1 processed, 0 failed/);
    expect((await results(buckets.input)).processed).toEqual(rows);
    expect((await status(home, '--jobs')).jobs!.map((j) => [j.state, j.attempts])).toEqual([['converted', 1]]);
    const tasks = await until('sacct to list both tasks', async () => {
      const all = await accounting(home, conf);
      return all.length === 2 && all.some((t) => t.state === 'COMPLETED') ? all : undefined;
    });
    expect(tasks.map((t) => t.state).sort()).toEqual(['COMPLETED', 'NODE_FAIL']);
  });
});
