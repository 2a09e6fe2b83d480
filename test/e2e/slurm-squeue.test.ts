/**
 * The Slurm executor on the test cluster without accounting — cogd follows its jobs with
 * `squeue -t all -r` — and against Slurm's own limits and controls: the same conversion, a stop and
 * a new start, a task cancelled by hand, a task over its --time (TIMEOUT, reported as timed out),
 * hold, release and cancel of array tasks. This cluster is not the one test/e2e/slurm.test.ts takes
 * a node of down, so the two files run side by side. Skipped, with a notice, where Slurm cannot be
 * started.
 */
import { execa } from 'execa';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SlurmExecutor } from '../../src/executors/slurm/executor.js';
import type { Context, Log } from '../../src/log/index.js';
import {
  baseArgs,
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
import { envOf, gatedGdal, jobNames, results, runDirOf, SLURM, stageGray, stillQueued } from '../support/slurm.js';
import { plannedRun, testState, testWatch } from '../support/state.js';

const conf = inject('slurmConfNoAccounting');
if (conf === '') console.log(`Slurm suites skipped: ${inject('slurmUnavailable')}`);

/** squeue's tasks (`A_T STATE`) of the home's run 1, in every state (MinJobAge keeps them an hour). */
async function listed(home: string): Promise<string[]> {
  const result = await execa(
    'squeue',
    ['-h', '-t', 'all', '-r', '-n', (await jobNames(home)).join(','), '-o', '%i %T'],
    {
      env: envOf(conf),
    },
  );
  return result.stdout.split('\n').filter(Boolean);
}

/**
 * A run whose one task outlives Slurm's smallest limit: one minute, checked every 30 s, so it ends
 * 76–85 s after it starts. It is started when the file starts and checked by the file's last test,
 * so the other tests run meanwhile (it takes one of the node's four CPUs; they need at most three).
 */
async function overTimeLimit(): Promise<{
  home: string;
  buckets: { input: string; output: string };
  run: Awaited<ReturnType<typeof cogd>>;
}> {
  const home = await tempDir();
  const buckets = await freshBuckets();
  await putFile(buckets.input, 'img/a.tif', await makeTiff(path.join(home, 'a.tif'), { bands: 1 }));
  await put(buckets.input, 'q/m-raw.csv', 'img/a.tif,1\n');
  // gdal_translate never returns: Slurm's one-minute limit (checked every 30 s) ends the task.
  const bin = path.join(home, 'stuck-bin');
  await mkdir(bin);
  await writeFile(path.join(bin, 'gdal_translate'), '#!/bin/sh\nexec sleep 600\n');
  await chmod(path.join(bin, 'gdal_translate'), 0o755);
  const run = await cogd(
    [
      'poll',
      '--wait',
      ...(await baseArgs(buckets, home)),
      '--executor',
      'slurm',
      '--slurm-poll',
      '2',
      '--retries',
      '1',
      '--job-timeout',
      '60',
      '--step-timeout',
      '600',
    ],
    { env: { SLURM_CONF: conf, PATH: `${bin}:${process.env['PATH'] ?? ''}` } },
  );
  return { home, buckets, run };
}

describe.skipIf(conf === '')('the slurm executor without accounting', () => {
  let timedOut: ReturnType<typeof overTimeLimit> | undefined;
  beforeAll(() => {
    timedOut = overTimeLimit();
    timedOut.catch(() => undefined); // awaited (and its failure reported) by the last test
  });

  it('without accounting, follows the jobs with squeue and converts the same', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c']);
    const run = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), ...SLURM], {
      env: envOf(conf),
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
        env: envOf(conf),
      },
    );
    const lines = listed.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBe(3);
    expect(lines.every((l) => l.endsWith(' COMPLETED'))).toBe(true);
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
    const tasks = await listed(home);
    expect(tasks.length, tasks.join(', ')).toBe(4); // one task per row: nothing submitted twice
    expect(tasks.every((t) => t.endsWith(' COMPLETED'))).toBe(true);
    expect(await jobNames(home)).toHaveLength(1);
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
    // squeue does not say who cancelled (sacct would: "by uid 0").
    expect(line).toMatch(/cancelled outside cogd: the Slurm task \d+_0/);
  });

  it('cogd hold of a run holds its waiting tasks with scontrol hold; cogd release lets them run', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows = await stageGray(home, buckets, ['a', 'b', 'c']);
    const gate = path.join(home, 'gate');
    const env = { ...envOf(conf), PATH: `${await gatedGdal(home, gate)}:${process.env['PATH'] ?? ''}` };
    // Each task takes the node's every CPU: one runs (waiting at the gate), the others wait in Slurm's queue.
    const cpus = (await execa('nproc')).stdout.trim();
    const args = [
      ...(await baseArgs(buckets, home)),
      ...SLURM,
      '-m',
      '3',
      '--cpus-per-task',
      cpus,
      '--schedule',
      '0 0 1 1 *',
    ];
    expect((await cogd(['start', ...args], { env })).exitCode).toBe(0);
    try {
      await until('the tasks in Slurm', async () =>
        (await stillQueued(home, conf).catch(() => [])).length === 3 ? true : undefined,
      );
      const held = await cogd(['hold', '1', '--reason', 'quota', '--home', home], { env });
      expect(held.stdout).toBe('All jobs in run 1 have been held');
      // Held by Slurm: JobHeldUser, or JobHeldAdmin when cogd runs as root (as CI does).
      const heldBySlurm = async (): Promise<string[]> =>
        ((await status(home, '--jobs')).jobs ?? [])
          .filter((j) => j.state === 'held' && /JobHeld(User|Admin)/.test(j.error ?? ''))
          .map((j) => j.id);
      const held1 = await until('a waiting task held by Slurm', async () => {
        const ids = await heldBySlurm();
        return ids.length > 0 ? ids : undefined;
      });
      await writeFile(gate, '');
      await until('the tasks that ran to convert', async () =>
        ((await status(home, '--jobs')).jobs ?? []).every((j) => j.state === 'converted' || held1.includes(j.id))
          ? true
          : undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 5000)); // two of Slurm's polls: nothing held starts
      expect(await heldBySlurm()).toEqual(held1);

      const released = await cogd(['release', '1', '--home', home], { env });
      expect(released.stdout).toBe('All jobs in run 1 have been released');
      await until(
        'the run to finish',
        async () => ((await status(home)).runs[0]?.state === 'done' ? true : undefined),
        120,
      );
    } finally {
      await cogd(['stop', '--home', home], { env });
    }
    expect((await results(buckets.input)).processed).toEqual(rows);
    const tasks = await listed(home);
    expect(tasks.length, tasks.join(', ')).toBe(3); // held and released, never submitted again
    expect(tasks.every((t) => t.endsWith(' COMPLETED'))).toBe(true);
    const log = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8');
    expect(log).toMatch(/"message":"Slurm:Held"/);
    expect(log).toMatch(/"message":"Slurm:Released"/);
  }, 240_000);

  it('a task over its time limit ends TIMEOUT and its row fails "timed out", not retried', async () => {
    const { home, buckets, run } = await timedOut!;
    expect(run.stdout, run.stderr).toMatch(/1 rows, 0 processed, 1 failed/);
    const errors = await getText(
      buckets.input,
      (await keys(buckets.input, 'q/')).find((k) => k.includes('-errors-'))!,
    );
    expect(errors).toMatch(
      /img\/a\.tif,"timed out: the Slurm task \d+_0 reached its time limit \(--time=1 min, from --job-timeout\)",1/,
    );
    // Permanent without --retry-timeouts: one attempt, one task.
    const jobs = (await status(home, '--jobs')).jobs!;
    expect(jobs.map((j) => [j.state, j.attempts])).toEqual([['failed', 1]]);
    const runDir = await runDirOf(home);
    expect(await readFile(path.join(runDir, 'a.log'), 'utf8')).toMatch(/Slurm \d+_0: TIMEOUT/);
    // The task was told (SIGTERM) and said so in its exit record.
    const exit = JSON.parse(await readFile(path.join(runDir, 'slurm', 'exit', 'b1-t0.json'), 'utf8')) as {
      reason: string;
    };
    expect(exit.reason).toMatch(/stopped by Slurm \(SIGTERM\)/);
  }, 240_000);

  describe('hold, release and cancel of array tasks', () => {
    const env = { SLURM_CONF: conf };
    const previous = process.env['SLURM_CONF'];
    afterAll(() => {
      if (previous === undefined) delete process.env['SLURM_CONF'];
      else process.env['SLURM_CONF'] = previous;
    });

    it('scontrol hold/release name each task of the jobs given; scancel a whole array as one id', async () => {
      process.env['SLURM_CONF'] = conf;
      const db = await testState();
      const run = plannedRun(db, testWatch(db, { executor: 'slurm' }), 'a.tif,1\nb.tif,1\nc.tif,1\n');
      const [a, b, c] = db.jobs(run.id);
      // A real array whose tasks wait ten minutes before they may start.
      const sbatch = await execa(
        'sbatch',
        ['--parsable', '--array=0-2', '--begin=now+600', '--output=/dev/null', '--wrap', 'true'],
        {
          env,
        },
      );
      const arrayId = Number(sbatch.stdout.trim());
      const batch = db.recordSlurmBatch(run.id, [a!.id, b!.id, c!.id]);
      db.setSlurmArray(run.id, batch, arrayId);
      const reasons = async (): Promise<Record<string, string>> => {
        const out = await execa('squeue', ['-h', '-t', 'all', '-r', '-j', String(arrayId), '-o', '%K %T %r'], { env });
        return Object.fromEntries(
          out.stdout
            .split('\n')
            .filter(Boolean)
            .map((l) => [l.split(' ')[0]!, l.split(' ').slice(1).join(' ')]),
        );
      };
      // What the executor logs: the ids each scontrol was given.
      const events: Array<[string, Context]> = [];
      const note = (event: string, context: Context = {}): void => void events.push([event, context]);
      const log: Log = {
        error: note,
        warn: note,
        info: note,
        debug: note,
        child: () => log,
        withFile: () => log,
        close: async () => undefined,
      };
      const executor = new SlurmExecutor({
        db,
        log,
        homeId: 'test',
        partition: undefined,
        account: undefined,
        mem: '1G',
        cpusPerTask: 1,
        extra: [],
        pollMs: 60_000,
        timeMinutes: 5,
        retryTimeouts: false,
        engine: {
          limits: { maxPixels: 1e9, maxBands: 64 },
          stepTimeoutMs: 60_000,
          inspectTimeoutMs: 60_000,
          scratchWaitMs: 1000,
        },
      });
      try {
        expect(await executor.hold([b!.id])).toBe(true);
        expect(events.at(-1)).toEqual(['Slurm:Held', { ids: `${arrayId}_1` }]);
        expect((await reasons())['1']).toMatch(/^PENDING JobHeld(User|Admin)$/);
        expect((await reasons())['0']).toMatch(/^PENDING (?!JobHeld)/);
        expect(await executor.release([b!.id])).toBe(true);
        expect(events.at(-1)).toEqual(['Slurm:Released', { ids: `${arrayId}_1` }]);
        expect((await reasons())['1']).toMatch(/^PENDING (?!JobHeld)/);
        // Every task of the array named: still task by task (the array's id would name finished tasks too).
        expect(await executor.hold([a!.id, b!.id, c!.id])).toBe(true);
        expect(events.at(-1)).toEqual(['Slurm:Held', { ids: `${arrayId}_0 ${arrayId}_1 ${arrayId}_2` }]);
        expect(Object.values(await reasons()).every((r) => /JobHeld/.test(r))).toBe(true);
        await executor.cancel([a!.id, c!.id]);
        expect(events.at(-1)).toEqual(['Slurm:Cancelled', { ids: `${arrayId}_0 ${arrayId}_2` }]);
        const after = await until('the cancel', async () => {
          const now = await reasons();
          // Gone, or listed CANCELLED (tasks held one by one are records of their own until MinJobAge).
          const gone = (task: string): boolean => now[task] === undefined || now[task].startsWith('CANCELLED');
          return now['1'] !== undefined && gone('0') && gone('2') ? now : undefined;
        });
        expect(after['1']).toMatch(/^PENDING JobHeld/);
      } finally {
        await executor.close();
        await execa('scancel', [String(arrayId)], { env });
        db.close();
      }
    });
  });
});
