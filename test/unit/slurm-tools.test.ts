/**
 * The Slurm parsers against what real Slurm 22.05 printed (test/fixtures/slurm/, captured by
 * scripts/slurm-fixtures.mjs with the executor's own argument lists), and the argument lists.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { sbatchArg, slurmMemory } from '../../src/config/parse.js';
import {
  accountingDisabled,
  arraysToAsk,
  compactIds,
  mergeStatuses,
  noneKnown,
  parseSacct,
  parseSbatchOutput,
  parseSqueue,
  parseTaskRange,
  sacctArgs,
  sbatchArgs,
  squeueArgs,
  StatusIndex,
  type TaskStatus,
} from '../../src/executors/slurm/tools.js';
import { ROOT } from '../support/helpers.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/slurm');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const { cases } = JSON.parse(fixture('cases.json')) as { cases: Record<string, number> };
const id = (name: string): number => cases[name]!;

/** The one status of a job that is no array. */
function one(tasks: TaskStatus[], name: string): TaskStatus {
  const found = tasks.filter((t) => t.arrayId === id(name));
  expect(found.length, name).toBe(1);
  return found[0]!;
}

describe('squeue -t all -r -O … (the path without accounting)', () => {
  const { tasks, skipped } = parseSqueue(fixture('squeue.txt'));

  it('reads every line', () => {
    expect(skipped).toEqual([]);
    expect(tasks.length).toBe(fixture('squeue.txt').split('\n').filter(Boolean).length);
  });

  it('reads final states, reasons and the raw wait status', () => {
    expect(one(tasks, 'ok')).toMatchObject({ state: 'COMPLETED', task: undefined, exitCode: 0, signal: 0 });
    expect(one(tasks, 'exit3')).toMatchObject({ state: 'FAILED', reason: 'NonZeroExitCode', exitCode: 3, signal: 0 });
    expect(one(tasks, 'sigkill')).toMatchObject({
      state: 'FAILED',
      reason: 'JobLaunchFailure',
      exitCode: 0,
      signal: 9,
    });
    expect(one(tasks, 'timeout')).toMatchObject({ state: 'TIMEOUT', reason: 'TimeLimit' });
    expect(one(tasks, 'cancelRunning')).toMatchObject({ state: 'CANCELLED', signal: 15, reason: undefined });
    expect(one(tasks, 'cancelPending')).toMatchObject({ state: 'CANCELLED', reason: 'BeginTime' });
    expect(one(tasks, 'held')).toMatchObject({ state: 'PENDING', reason: 'JobHeldUser' });
    expect(one(tasks, 'nodeFail')).toMatchObject({ state: 'NODE_FAIL', reason: 'NodeDown' });
    // Slurm's own requeue after a node failure: waiting again (for two minutes).
    expect(one(tasks, 'nodeFailRequeued')).toMatchObject({ state: 'PENDING', reason: 'BeginTime' });
  });

  it("lists each array task with its index and its own job id (the last one keeps the array's)", () => {
    const array = tasks.filter((t) => t.arrayId === id('array')).sort((a, b) => a.task! - b.task!);
    expect(array.map((t) => [t.task, t.state])).toEqual([
      [0, 'COMPLETED'],
      [1, 'COMPLETED'],
      [2, 'FAILED'],
      [3, 'COMPLETED'],
    ]);
    expect(array[2]).toMatchObject({ exitCode: 5, reason: 'NonZeroExitCode' });
    expect(new Set(array.map((t) => t.jobId)).size).toBe(4);
    expect(array.some((t) => t.jobId === id('array'))).toBe(true);
  });

  it('lists pending array tasks one by one; a pending task cancelled alone is gone', () => {
    const begin = tasks.filter((t) => t.arrayId === id('begin'));
    expect(begin.map((t) => t.task).sort()).toEqual([0, 1, 2, 3]);
    expect(begin.every((t) => t.state === 'PENDING' && t.reason === 'BeginTime')).toBe(true);
    const index = new StatusIndex(tasks);
    expect(index.get(id('cancelPendingTask'), 0)?.state).toBe('PENDING');
    expect(index.get(id('cancelPendingTask'), 1)).toBeUndefined();
    expect(index.knows(id('cancelPendingTask'))).toBe(true);
    expect(index.knows(999_999)).toBe(false);
  });

  it('reads the answer for ids of which none is known as no jobs, not a failure', () => {
    const text = fixture('squeue-unknown.txt');
    expect(text).toMatch(/^exit 1\n/);
    expect(noneKnown(text)).toBe(true);
    expect(noneKnown('squeue: error: Unable to contact slurm controller (connect failure)')).toBe(false);
  });

  it('skips lines that are not job records, and says so', () => {
    const { tasks: read, skipped: left } = parseSqueue('squeue: error: something\n12|0|13|RUNNING|None|0|x|\n');
    expect(read.length).toBe(1);
    expect(left).toEqual(['squeue: error: something']);
  });
});

describe('sacct -n -X -P … (the path with accounting)', () => {
  const { tasks, skipped } = parseSacct(fixture('sacct.txt'));

  it('reads every line', () => {
    expect(skipped).toEqual([]);
    expect(tasks.length).toBe(fixture('sacct.txt').split('\n').filter(Boolean).length);
  });

  it('reads states, "CANCELLED by <uid>", exit codes and times', () => {
    expect(one(tasks, 'ok')).toMatchObject({ state: 'COMPLETED', exitCode: 0, signal: 0 });
    expect(one(tasks, 'exit3')).toMatchObject({ state: 'FAILED', exitCode: 3, signal: 0 });
    expect(one(tasks, 'sigkill')).toMatchObject({ state: 'FAILED', exitCode: 0, signal: 9 });
    expect(one(tasks, 'timeout')).toMatchObject({ state: 'TIMEOUT' });
    expect(one(tasks, 'timeout').start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(one(tasks, 'cancelRunning')).toMatchObject({ state: 'CANCELLED', cancelledBy: 0 });
    expect(one(tasks, 'cancelPending')).toMatchObject({ state: 'CANCELLED', cancelledBy: 0, start: undefined });
    expect(one(tasks, 'held')).toMatchObject({ state: 'PENDING', reason: 'JobHeldUser', end: undefined });
    expect(one(tasks, 'nodeFail')).toMatchObject({ state: 'NODE_FAIL' });
  });

  it('reads array tasks (A_T) and the pending rest of an array (A_[0-3]) as the tasks it covers', () => {
    const array = tasks.filter((t) => t.arrayId === id('array') && t.task !== undefined);
    expect(array.map((t) => [t.task, t.state, t.exitCode])).toEqual([
      [0, 'COMPLETED', 0],
      [1, 'COMPLETED', 0],
      [2, 'FAILED', 5],
      [3, 'COMPLETED', 0],
    ]);
    const index = new StatusIndex(tasks);
    for (const task of [0, 1, 2, 3])
      expect(index.get(id('begin'), task)).toMatchObject({ state: 'PENDING', reason: 'BeginTime' });
    expect(index.get(id('begin'), 4)).toBeUndefined();
    // Task 1 was cancelled while pending: the rest record no longer names it.
    expect(index.get(id('cancelPendingTask'), 0)?.state).toBe('PENDING');
    expect(index.get(id('cancelPendingTask'), 1)).toBeUndefined();
    expect(index.get(id('cancelPendingTask'), 2)?.state).toBe('PENDING');
  });

  it('recognises a cluster without accounting', () => {
    const text = fixture('sacct-disabled.txt');
    expect(text).toMatch(/^exit 1\n/);
    expect(accountingDisabled(text)).toBe(true);
    expect(accountingDisabled(fixture('sacct.txt'))).toBe(false);
  });
});

describe('the pending rest of an array, and a whole array cancelled while pending', () => {
  it('task ranges', () => {
    expect(parseTaskRange('2-5%2')).toEqual([2, 3, 4, 5]);
    expect(parseTaskRange('[0,3-4]')).toEqual([0, 3, 4]);
    expect(parseTaskRange('[0-6:3]')).toEqual([0, 3, 6]);
    expect(parseTaskRange('7')).toEqual([7]);
    expect(parseTaskRange('N/A')).toBeUndefined();
  });

  it("an array's own record (task N/A) stands for the tasks not listed apart", () => {
    // squeue after `scancel 27_0 27_3` of an array whose tasks 1 and 2 had started (captured by hand).
    const { tasks } = parseSqueue(
      '27|N/A|27|CANCELLED|None|0|x|\n27|1|28|PENDING|None|0|x|\n27|2|29|PENDING|JobHeldAdmin|0|x|\n',
    );
    const index = new StatusIndex(tasks);
    expect(index.get(27, 0)?.state).toBe('CANCELLED');
    expect(index.get(27, 3)?.state).toBe('CANCELLED');
    expect(index.get(27, 2)?.reason).toBe('JobHeldAdmin');
  });
});

describe('sacct lags the controller: squeue is asked where it does not explain', () => {
  // sacct as a loaded machine answered (slurmdbd recorded array 11 before the scheduler gave a reason;
  // array 12 not yet at all), and squeue's answer for the same arrays at the same time.
  const sacct = parseSacct(
    '10_0|21|COMPLETED|0:0|None|2026-11-30T15:04:28|2026-11-30T15:04:29|x\n' +
      '11_[0-3]|11|PENDING|0:0|None|Unknown|Unknown|x\n',
  ).tasks;
  const squeue = parseSqueue(
    '11|0|11|PENDING|BeginTime|0|x|\n11|1|11|PENDING|BeginTime|0|x|\n12|0|12|RUNNING|None|0|x|\n',
  ).tasks;

  it('asks about the arrays sacct leaves out or lists waiting without a reason, not the rest', () => {
    expect(arraysToAsk([10, 11, 12], sacct)).toEqual([11, 12]);
    const explained = parseSacct('11_[0-3]|11|PENDING|0:0|BeginTime|Unknown|Unknown|x\n').tasks;
    expect(arraysToAsk([11], explained)).toEqual([]);
  });

  it("takes squeue's view of the tasks it lists, and sacct's for the others", () => {
    const index = new StatusIndex(mergeStatuses(sacct, squeue));
    expect(index.get(11, 0)).toMatchObject({ state: 'PENDING', reason: 'BeginTime' });
    expect(index.get(11, 1)).toMatchObject({ state: 'PENDING', reason: 'BeginTime' });
    // Not in squeue's answer: sacct's pending rest still stands for it.
    expect(index.get(11, 3)).toMatchObject({ state: 'PENDING', reason: undefined });
    expect(index.get(12, 0)?.state).toBe('RUNNING');
    expect(index.get(10, 0)?.state).toBe('COMPLETED');
  });
});

describe('sbatch', () => {
  it("reads --parsable's answer, with or without a cluster name", () => {
    expect(parseSbatchOutput('1234\n')).toBe(1234);
    expect(parseSbatchOutput('1234;ci\n')).toBe(1234);
    expect(parseSbatchOutput('sbatch: error: Batch job submission failed\n')).toBeUndefined();
  });

  it('refusals are exit 1 with the reason on stderr', () => {
    const text = fixture('sbatch-errors.txt');
    expect(text).toMatch(/^exit 1\nsbatch: error: invalid partition specified: nosuch/);
    expect(text).toMatch(/exit 1\nsbatch: error: Memory specification can not be satisfied/);
  });

  it('one array per batch, throttled, named, with every value one argv word', () => {
    const args = sbatchArgs({
      name: 'cogd-0123456789ab-r7-b3',
      comment: 'cogd run 7 batch 3 (COG-Pipeline-DAG-*raw.csv)',
      tasks: 5,
      throttle: 2,
      output: '/home/u/logs/run-1/slurm/batch-3-%a.out',
      workdir: '/home/u/logs/run-1',
      script: '/home/u/logs/run-1/slurm/task.sh',
      scriptArgs: ['/home/u/logs/run-1/slurm/batch-3.json'],
      settings: {
        partition: 'short',
        account: undefined,
        timeMinutes: 30,
        mem: '2G',
        cpusPerTask: 2,
        extra: ['--qos=high'],
        exportNames: ['PATH', 'HOME'],
      },
    });
    expect(args).toEqual([
      '--parsable',
      '--job-name=cogd-0123456789ab-r7-b3',
      '--comment=cogd run 7 batch 3 (COG-Pipeline-DAG-*raw.csv)',
      '--array=0-4%2',
      '--time=30',
      '--cpus-per-task=2',
      '--mem=2G',
      '--partition=short',
      '--no-requeue',
      '--ntasks=1',
      '--output=/home/u/logs/run-1/slurm/batch-3-%a.out',
      '--error=/home/u/logs/run-1/slurm/batch-3-%a.out',
      '--chdir=/home/u/logs/run-1',
      '--export=PATH,HOME',
      '--qos=high',
      '/home/u/logs/run-1/slurm/task.sh',
      '/home/u/logs/run-1/slurm/batch-3.json',
    ]);
    // -m larger than the batch: the throttle is the batch.
    expect(
      sbatchArgs({
        ...{ name: 'n', comment: 'c', output: 'o', workdir: 'w', script: 's', scriptArgs: [] },
        tasks: 3,
        throttle: 10000,
        settings: { timeMinutes: 0.2, cpusPerTask: 1, extra: [], exportNames: [] },
      }),
    ).toContain('--array=0-2%3');
  });

  it('asks squeue and sacct about many arrays in one call', () => {
    expect(squeueArgs([12, 15])).toEqual([
      '-h',
      '-t',
      'all',
      '-r',
      '-j',
      '12,15',
      '-O',
      'ArrayJobID:|,ArrayTaskID:|,JobID:|,State:|,Reason:|,exit_code:|,Name:|',
    ]);
    expect(sacctArgs([12, 15])).toEqual([
      '-n',
      '-X',
      '-P',
      '-j',
      '12,15',
      '-o',
      'JobID,JobIDRaw,State,ExitCode,Reason,Start,End,JobName',
    ]);
  });

  it('cancels a whole array as one id where every task still queued is named', () => {
    const live = (arrayId: number): number[] => (arrayId === 12 ? [0, 1, 2] : [0, 1]);
    expect(
      compactIds(
        [
          { arrayId: 12, task: 2 },
          { arrayId: 12, task: 0 },
          { arrayId: 12, task: 1 },
          { arrayId: 15, task: 1 },
        ],
        live,
      ),
    ).toEqual(['12', '15_1']);
  });
});

describe('the Slurm options', () => {
  it('--sbatch-arg takes one sbatch option, never one cogd sets itself', () => {
    expect(sbatchArg('--qos=high', '--sbatch-arg')).toBe('--qos=high');
    expect(sbatchArg('--begin=now+600', '--sbatch-arg')).toBe('--begin=now+600');
    expect(() => sbatchArg('qos=high', '--sbatch-arg')).toThrow(UsageError);
    expect(() => sbatchArg('--job-name=x', '--sbatch-arg')).toThrow(/cogd sets --job-name itself/);
    expect(() => sbatchArg('-Jx', '--sbatch-arg')).toThrow(/cogd sets --job-name itself/);
    expect(() => sbatchArg('--array=0-3', '--sbatch-arg')).toThrow(/cogd sets --array itself/);
    expect(() => sbatchArg('--export=ALL', '--sbatch-arg')).toThrow(/cogd sets --export itself/);
    expect(() => sbatchArg('--qos=a\nb', '--sbatch-arg')).toThrow(UsageError);
  });

  it('--mem takes what Slurm reads', () => {
    expect(slurmMemory('2g', '--mem')).toBe('2G');
    expect(slurmMemory('4096', '--mem')).toBe('4096');
    expect(() => slurmMemory('2 GB', '--mem')).toThrow(/--mem "2 GB" is not a Slurm memory size/);
  });
});
