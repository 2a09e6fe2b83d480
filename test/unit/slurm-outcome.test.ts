/**
 * What Slurm's report of a task means for its job (`applyStatus`, pure), on the statuses real Slurm
 * printed (test/fixtures/slurm/) and on sequences of them; how a recorded result reads back.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExitRecord } from '../../src/executors/slurm/exit-record.js';
import {
  applyStatus,
  doubleMemory,
  MAX_REQUEUES,
  outcomeOf,
  type StatusContext,
  type TaskView,
} from '../../src/executors/slurm/outcome.js';
import { parseSacct, parseSqueue, StatusIndex, type TaskStatus } from '../../src/executors/slurm/tools.js';
import { ROOT } from '../support/helpers.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/slurm');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const { cases } = JSON.parse(fixture('cases.json')) as { cases: Record<string, number> };
const squeue = new StatusIndex(parseSqueue(fixture('squeue.txt')).tasks);
const sacct = new StatusIndex(parseSacct(fixture('sacct.txt')).tasks);
/** The status of a case's job (or task) in both listings: they must mean the same to cogd. */
const both = (name: string, task = 0): [TaskStatus, TaskStatus] => {
  const a = squeue.get(cases[name]!, task);
  const b = sacct.get(cases[name]!, task);
  if (a === undefined || b === undefined) throw new Error(`no status of ${name}`);
  return [a, b];
};

const view = (changes: Partial<TaskView> = {}): TaskView => ({
  jobId: 7,
  arrayId: 40,
  task: 3,
  state: 'idle',
  note: null,
  requeues: 0,
  mem: null,
  ...changes,
});
const context = (changes: Partial<StatusContext> = {}): StatusContext => ({
  unknownForMs: 0,
  graceMs: 20_000,
  mem: '2G',
  timeMinutes: 30,
  cancelledByCogd: false,
  arrayKnown: true,
  ...changes,
});
const record = (changes: Partial<ExitRecord> = {}): ExitRecord => ({
  version: 1,
  jobId: 7,
  batch: 1,
  task: 3,
  slurmJobId: '44',
  host: 'node1',
  outcome: 'ok',
  sizes: { input: 10, cog: 8, preview: 2 },
  startedAt: '2026-11-30T00:00:00Z',
  endedAt: '2026-11-30T00:00:01Z',
  ms: 1000,
  ...changes,
});

describe('applyStatus on what real Slurm reported (squeue and sacct alike)', () => {
  it('COMPLETED with an exit record that says ok: ok', () => {
    for (const status of both('ok')) {
      expect(applyStatus(view({ state: 'running' }), status, record(), context())).toMatchObject({
        kind: 'result',
        result: 'ok',
      });
    }
  });

  it('COMPLETED without a record: waits the grace period (a shared filesystem may show it late), then fails', () => {
    for (const status of both('ok')) {
      expect(applyStatus(view({ state: 'running' }), status, undefined, context())).toEqual({ kind: 'unknown' });
      const late = applyStatus(view({ state: 'running' }), status, undefined, context({ unknownForMs: 20_000 }));
      expect(late).toMatchObject({ kind: 'result' });
      expect(late.kind === 'result' && late.result).toMatch(
        /^failed: the Slurm task 40_3 completed but its exit record never appeared/,
      );
    }
  });

  it("FAILED: the exit record's reason, permanent where it says so; else Slurm's exit code and reason", () => {
    for (const status of both('exit3')) {
      const told = applyStatus(
        view(),
        status,
        record({ outcome: 'failed', permanent: true, reason: 'not a readable TIFF' }),
        context(),
      );
      expect(told).toMatchObject({ kind: 'result', result: 'permanent: not a readable TIFF' });
      const untold = applyStatus(view(), status, undefined, context());
      expect(untold.kind === 'result' && untold.result).toMatch(
        /^failed: the Slurm task 40_3 failed \(exit code 3(, NonZeroExitCode)?\) before writing its exit record/,
      );
    }
    for (const status of both('sigkill')) {
      const killed = applyStatus(view(), status, undefined, context());
      expect(killed.kind === 'result' && killed.result).toMatch(/failed \(signal 9/);
    }
  });

  it('TIMEOUT: timed out (the scheduler makes it permanent unless --retry-timeouts)', () => {
    for (const status of both('timeout')) {
      const effect = applyStatus(
        view({ state: 'running' }),
        status,
        record({ outcome: 'failed', reason: 'stopped by Slurm (SIGTERM)' }),
        context(),
      );
      expect(effect.kind === 'result' && effect.result).toBe(
        'timeout: timed out: the Slurm task 40_3 reached its time limit (--time=30 min, from --job-timeout)',
      );
    }
  });

  it('CANCELLED by someone else: failed "cancelled outside cogd"; by cogd itself: recorded as such', () => {
    const [queued, accounted] = both('cancelRunning');
    expect(applyStatus(view({ state: 'running' }), accounted, undefined, context())).toMatchObject({
      kind: 'result',
      result: 'permanent: cancelled outside cogd (by uid 0): the Slurm task 40_3',
    });
    expect(applyStatus(view({ state: 'running' }), queued, undefined, context())).toMatchObject({
      kind: 'result',
      result: 'permanent: cancelled outside cogd: the Slurm task 40_3',
    });
    expect(
      applyStatus(view({ state: 'running' }), accounted, undefined, context({ cancelledByCogd: true })),
    ).toMatchObject({
      kind: 'result',
      result: 'failed: cancelled by cogd: the Slurm task 40_3',
    });
  });

  it('NODE_FAIL: submitted again without spending a retry, up to MAX_REQUEUES times', () => {
    for (const status of both('nodeFail')) {
      const effect = applyStatus(view({ state: 'running' }), status, undefined, context());
      expect(effect).toMatchObject({ kind: 'requeue' });
      expect(effect.kind === 'requeue' && effect.mem).toBeUndefined();
      const tired = applyStatus(view({ state: 'running', requeues: MAX_REQUEUES }), status, undefined, context());
      expect(tired.kind === 'result' && tired.result).toMatch(/^failed: .*NODE_FAIL again after 5 requeues/);
    }
  });

  it('PENDING: idle with the reason kept; JobHeldUser: held; no write when nothing changed', () => {
    for (const status of both('begin', 2)) {
      expect(applyStatus(view(), status, undefined, context())).toMatchObject({
        kind: 'progress',
        state: 'idle',
        note: 'BeginTime',
      });
      expect(applyStatus(view({ note: 'BeginTime' }), status, undefined, context())).toEqual({ kind: 'none' });
    }
    for (const status of both('held')) {
      expect(applyStatus(view(), status, undefined, context())).toMatchObject({
        kind: 'progress',
        state: 'held',
        note: 'JobHeldUser',
        error: 'held: JobHeldUser',
      });
    }
    // Slurm's own requeue after a node failure looks like any wait.
    for (const status of both('nodeFailRequeued')) {
      expect(applyStatus(view({ state: 'running' }), status, undefined, context())).toMatchObject({
        kind: 'progress',
        state: 'idle',
      });
    }
  });

  it('RUNNING: running once', () => {
    const status: TaskStatus = { arrayId: 40, task: 3, jobId: 44, state: 'RUNNING' };
    expect(applyStatus(view(), status, undefined, context())).toMatchObject({
      kind: 'progress',
      state: 'running',
      note: null,
    });
    expect(applyStatus(view({ state: 'running' }), status, undefined, context())).toEqual({ kind: 'none' });
  });

  it('a pending task cancelled alone (gone from its listed array): cancelled outside cogd after the grace period', () => {
    for (const index of [squeue, sacct]) {
      const status = index.get(cases['cancelPendingTask']!, 1);
      expect(status).toBeUndefined();
      expect(applyStatus(view(), status, undefined, context({ unknownForMs: 1000 }))).toEqual({ kind: 'unknown' });
      const gone = applyStatus(view(), status, undefined, context({ unknownForMs: 20_000 }));
      expect(gone.kind === 'result' && gone.result).toMatch(/^permanent: cancelled outside cogd while it waited/);
    }
  });
});

describe('applyStatus beyond the captured cases', () => {
  it('unknown to Slurm (purged after MinJobAge): its exit record decides; without one, a retryable failure', () => {
    expect(applyStatus(view({ state: 'running' }), undefined, record(), context({ arrayKnown: false }))).toMatchObject({
      kind: 'result',
      result: 'ok',
    });
    expect(applyStatus(view({ state: 'running' }), undefined, undefined, context({ arrayKnown: false }))).toEqual({
      kind: 'unknown',
    });
    const lost = applyStatus(
      view({ state: 'running' }),
      undefined,
      undefined,
      context({ arrayKnown: false, unknownForMs: 60_000 }),
    );
    expect(lost.kind === 'result' && lost.result).toBe(
      'failed: Slurm no longer knows the task 40_3 and it left no exit record',
    );
  });

  it('OUT_OF_MEMORY: once again with twice the memory, then failed for good', () => {
    const oom: TaskStatus = { arrayId: 40, task: 3, jobId: 44, state: 'OUT_OF_MEMORY' };
    const first = applyStatus(view({ state: 'running' }), oom, undefined, context());
    expect(first).toMatchObject({ kind: 'requeue', mem: '4096M' });
    const again = applyStatus(view({ state: 'running', mem: '4096M', requeues: 1 }), oom, undefined, context());
    expect(again.kind === 'result' && again.result).toBe(
      'permanent: the Slurm task 40_3 ran out of memory (--mem=4096M, after a retry with twice the memory)',
    );
  });

  it("PREEMPTED and BOOT_FAIL are not the job's fault either; other ends fail with the state named", () => {
    for (const state of ['PREEMPTED', 'BOOT_FAIL']) {
      expect(
        applyStatus(view({ state: 'running' }), { arrayId: 40, task: 3, jobId: 44, state }, undefined, context()),
      ).toMatchObject({ kind: 'requeue' });
    }
    const odd = applyStatus(
      view({ state: 'running' }),
      { arrayId: 40, task: 3, jobId: 44, state: 'SPECIAL_EXIT' },
      undefined,
      context(),
    );
    expect(odd.kind === 'result' && odd.result).toBe('failed: Slurm ended the task 40_3 as SPECIAL_EXIT');
  });

  it('a job whose attempt already ended is left alone', () => {
    const done: TaskStatus = { arrayId: 40, task: 3, jobId: 44, state: 'FAILED' };
    expect(applyStatus(view({ state: 'converted' }), done, undefined, context())).toEqual({ kind: 'none' });
  });

  it('a task running, evicted by a node failure, submitted again, running and completing', () => {
    const steps: Array<[TaskStatus | undefined, ExitRecord | undefined]> = [
      [{ arrayId: 40, task: 3, jobId: 40, state: 'PENDING', reason: 'Priority' }, undefined],
      [{ arrayId: 40, task: 3, jobId: 44, state: 'RUNNING' }, undefined],
      [{ arrayId: 40, task: 3, jobId: 44, state: 'NODE_FAIL', reason: 'NodeDown' }, undefined],
    ];
    let v = view();
    const kinds: string[] = [];
    for (const [status, rec] of steps) {
      const effect = applyStatus(v, status, rec, context());
      kinds.push(effect.kind === 'progress' ? `${effect.kind}:${effect.state}` : effect.kind);
      if (effect.kind === 'progress') v = { ...v, state: effect.state, note: effect.note };
      if (effect.kind === 'requeue')
        v = { ...v, arrayId: 41, task: 0, state: 'idle', note: null, requeues: v.requeues + 1 };
    }
    const last = applyStatus(v, { arrayId: 41, task: 0, jobId: 41, state: 'COMPLETED' }, record(), context());
    expect([...kinds, last.kind === 'result' ? last.result : last.kind]).toEqual([
      'progress:idle',
      'progress:running',
      'requeue',
      'ok',
    ]);
  });
});

describe('outcomeOf', () => {
  it('reads recorded results back', () => {
    expect(outcomeOf('ok', false)).toEqual({ ok: true });
    expect(outcomeOf('failed: S3 said SlowDown', false)).toEqual({
      ok: false,
      permanent: false,
      timeout: false,
      reason: 'S3 said SlowDown',
    });
    expect(outcomeOf('permanent: not a TIFF', false)).toMatchObject({ permanent: true, reason: 'not a TIFF' });
    expect(outcomeOf('timeout: timed out: …', false)).toMatchObject({ permanent: true, timeout: true });
    expect(outcomeOf('timeout: timed out: …', true)).toMatchObject({ permanent: false, timeout: true });
  });

  it('doubles Slurm memory sizes', () => {
    expect(doubleMemory('2G')).toBe('4096M');
    expect(doubleMemory('512M')).toBe('1024M');
    expect(doubleMemory('1500')).toBe('3000M');
    expect(doubleMemory('0')).toBeUndefined();
    expect(doubleMemory(undefined)).toBeUndefined();
  });
});
