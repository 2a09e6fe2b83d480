/**
 * The Slurm executor end to end, against real Slurm 22.05: two throw-away one-node clusters on
 * loopback started once per test run by the global setup (scripts/lib/slurm.mjs) — one with
 * accounting (slurmdbd on MariaDB: sacct), one without (squeue only) — the real CLI, the real S3
 * server, real GDAL in the tasks. Skipped, with a notice, where Slurm cannot be started.
 */
import { execa } from 'execa';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { homeId } from '../../src/daemon/home.js';
import type { CrashPoint } from '../../src/util/crash.js';
import {
  baseArgs,
  credentials,
  cogd,
  freshBuckets,
  getText,
  keys,
  makeTiff,
  put,
  putFile,
  status,
  tempDir,
  until,
} from '../support/helpers.js';

const conf = inject('slurmConf');
const confNoAccounting = inject('slurmConfNoAccounting');
const unavailable = inject('slurmUnavailable');
if (conf === '') console.log(`Slurm suites skipped: ${unavailable}`);

const SLURM = ['--executor', 'slurm', '--slurm-poll', '2', '--retries', '1'];

/** What cogd and the Slurm client commands need to reach one of the test clusters. */
const envOf = (slurmConf: string): Record<string, string> => ({ SLURM_CONF: slurmConf });

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

/** The processed and failed CSVs of the run (verbatim rows, sorted) and the errors CSV's lines, sorted. */
async function results(bucket: string): Promise<{ processed: string[]; failed: string[]; errors: string[] }> {
  const all = await keys(bucket, 'q/');
  const text = async (kind: string): Promise<string> => {
    const key = all.find((k) => k.includes(`-${kind}-`));
    return key === undefined ? '' : getText(bucket, key);
  };
  const rows = (t: string): string[] => t.split('\n').filter(Boolean).sort();
  return {
    processed: rows(await text('processed')),
    failed: rows(await text('failed')),
    errors: rows(await text('errors')),
  };
}

async function runDirOf(home: string): Promise<string> {
  const dir = (await readdir(path.join(home, 'logs'))).find((d) => d.startsWith('run-'));
  if (dir === undefined) throw new Error(`no run directory in ${home}/logs`);
  return path.join(home, 'logs', dir);
}

/** The job names of every batch the home's run 1 submitted (from its batch files). */
async function jobNames(home: string): Promise<string[]> {
  const files = await readdir(path.join(await runDirOf(home), 'slurm'));
  return files
    .map((f) => /^batch-(\d+)\.json$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .map((n) => `cogd-${homeId(home)}-r1-b${n}`);
}

interface AcctTask {
  id: string;
  state: string;
  start: number;
  end: number;
  name: string;
}

/** What sacct says of every array task the home's run 1 submitted. */
async function accounting(home: string, slurmConf: string): Promise<AcctTask[]> {
  const names = await jobNames(home);
  const result = await execa(
    'sacct',
    ['-n', '-X', '-P', `--name=${names.join(',')}`, '--starttime=now-1days', '-o', 'JobID,State,Start,End,JobName'],
    { env: envOf(slurmConf) },
  );
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, state, start, end, name] = line.split('|') as [string, string, string, string, string];
      return { id, state, start: Date.parse(`${start}Z`), end: Date.parse(`${end}Z`), name };
    });
}

/** squeue's lines for the home's run 1 tasks that still wait or run. */
async function stillQueued(home: string, slurmConf: string): Promise<string[]> {
  const result = await execa(
    'squeue',
    ['-h', '-r', '-t', 'pending,running', '-n', (await jobNames(home)).join(','), '-o', '%i %T'],
    {
      env: envOf(slurmConf),
      reject: false,
    },
  );
  return result.stdout.split('\n').filter(Boolean);
}

/** A directory with a gdal_translate that waits until `gate` exists: put first on the tasks' PATH. */
async function gatedGdal(dir: string, gate: string): Promise<string> {
  const bin = path.join(dir, 'gated-bin');
  await mkdir(bin, { recursive: true });
  const script = path.join(bin, 'gdal_translate');
  await writeFile(
    script,
    `#!/bin/sh\nwhile [ ! -e '${gate}' ]; do sleep 0.1; done\nexec /usr/bin/gdal_translate "$@"\n`,
  );
  await chmod(script, 0o755);
  return bin;
}

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
    const tasks = await accounting(home, conf);
    expect(tasks.length, JSON.stringify(tasks)).toBe(6);
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

  it('without accounting, follows the jobs with squeue and converts the same', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c']);
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM], {
      env: envOf(confNoAccounting),
    });
    expect(run.stdout, run.stderr).toMatch(/3 rows, 3 processed, 0 failed/);
    expect((await results(buckets.input)).processed).toEqual(rows);
    const log = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8');
    expect(log).toMatch(/"message":"Slurm:Accounting".*not available: following jobs with squeue -t all/);
    // squeue still lists the finished tasks (MinJobAge): one per row, each COMPLETED.
    const listed = await execa(
      'squeue',
      ['-h', '-t', 'all', '-r', '-n', (await jobNames(home)).join(','), '-o', '%i %T'],
      {
        env: envOf(confNoAccounting),
      },
    );
    const lines = listed.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBe(3);
    expect(lines.every((l) => l.endsWith(' COMPLETED'))).toBe(true);
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
      const text = await until('cogd status to say why they wait', async () => {
        const shown = await cogd(['status', '--home', home], { env });
        return /4 jobs wait in Slurm: BeginTime/.test(shown.stdout) ? shown.stdout : undefined;
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

  it('cogd stop leaves the tasks in Slurm; the next start follows them without submitting again', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c', 'd']);
    const gate = path.join(home, 'gate');
    const env = { ...envOf(conf), PATH: `${await gatedGdal(home, gate)}:${process.env['PATH'] ?? ''}` };
    const args = [...(await baseArgs(buckets, home)), ...SLURM, '--schedule', '0 0 1 1 *'];
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    try {
      await until('the tasks in Slurm', async () =>
        (await stillQueued(home, conf).catch(() => [])).length === 4 ? true : undefined,
      );
      const stop = await cogd(['stop', '--home', home], { env });
      expect(stop.exitCode, stop.stderr).toBe(0);
      expect((await stillQueued(home, conf)).length).toBe(4); // a stop is not a scancel
      await writeFile(gate, '');
      expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
      await until(
        'the run to finish',
        async () => ((await status(home)).runs[0]?.state === 'done' ? true : undefined),
        120,
      );
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
    expect((await results(buckets.input)).processed).toEqual(rows);
    const jobs = (await status(home, '--jobs')).jobs!;
    expect(jobs.map((j) => [j.state, j.attempts])).toEqual(rows.map(() => ['converted', 1]));
    const tasks = await accounting(home, conf);
    expect(tasks.length).toBe(4); // one task per row: nothing submitted twice
    expect(await jobNames(home)).toHaveLength(1);
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

  it('a task cancelled outside cogd fails with that reason; the others convert', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await stageGray(home, buckets, ['a', 'b']);
    const gate = path.join(home, 'gate');
    const env = { ...envOf(conf), PATH: `${await gatedGdal(home, gate)}:${process.env['PATH'] ?? ''}` };
    const poll = cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM], { env });
    try {
      // Both wait for the gate in gdal_translate: cancelled while it runs, a task ends CANCELLED.
      const first = await until('both tasks running', async () => {
        const queued = await stillQueued(home, conf).catch(() => []);
        return queued.length === 2 && queued.every((l) => l.endsWith(' RUNNING'))
          ? queued.map((l) => l.split(' ')[0]!).sort()[0]
          : undefined;
      });
      const cancel = await execa('scancel', [first], { env: envOf(conf) });
      expect(cancel.exitCode).toBe(0);
      await until('squeue to show the cancel', async () =>
        (await stillQueued(home, conf)).length === 1 ? true : undefined,
      );
    } finally {
      await writeFile(gate, '');
    }
    const run = await poll;
    expect(run.stdout, run.stderr).toMatch(/2 rows, 1 processed, 1 failed/);
    const { errors } = await results(buckets.input);
    const line = errors.find((l) => l.startsWith('img/a.tif,'));
    expect(line).toMatch(/cancelled outside cogd \(by uid 0\): the Slurm task \d+_0/);
  });
});
