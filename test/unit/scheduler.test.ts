/**
 * The real scheduler and a real state DB on a temp file, driven through a fake executor (no GDAL,
 * no S3): retries and back-off, -m, round-robin, deadlines, removal, drain, re-attach and the post
 * step. Waits that would be slow run on vitest's fake timers (setTimeout and Date only); everything
 * else uses real time in steps of an event-loop turn.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { planRows } from '../../src/dag/plan.js';
import { Scheduler, type RunHandle, type SchedulerOptions } from '../../src/dag/scheduler.js';
import { Removal, Shutdown } from '../../src/executors/types.js';
import { createLog } from '../../src/log/index.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { StateDB, type JobRecord, type RunRecord } from '../../src/state/db.js';
import type { Storage } from '../../src/storage/s3.js';
import type { Watch } from '../../src/types.js';
import {
  FakeExecutor,
  failing,
  hang,
  hangTicking,
  held,
  permanent,
  succeed,
  wait,
  type Call,
  type Script,
} from '../support/fake-executor.js';
import { tempDir } from '../support/helpers.js';
import { DEFAULT_CONVERSION } from '../../src/convert/profiles.js';

// Every test takes well under a second; a scheduler bug that leaves a run hanging fails fast.
vi.setConfig({ testTimeout: 5000 });

const log = createLog({ consoleLevel: 'silent' });
/** The one fake besides the executor: the fake executor never touches S3, so nothing calls this. */
const storage = {} as Storage;
const NO_DELAY = { kind: 'fixed', delayMs: 0, jitter: 0 } as const;

let dir: string;
let db: StateDB;
let scheduler: Scheduler | undefined;
let counter = 0;

beforeEach(async () => {
  dir = await tempDir('cogd-sched-');
  db = new StateDB(path.join(dir, 'cogd.db'));
});

afterEach(async () => {
  vi.useRealTimers();
  await scheduler?.drain(); // stops whatever a failed test left hanging
  scheduler = undefined;
  db.close();
  await rm(dir, { recursive: true, force: true });
});

function newScheduler(options: Partial<SchedulerOptions> = {}): Scheduler {
  scheduler = new Scheduler(db, { jobTimeoutMs: 3_600_000, retryTimeouts: false, ...options });
  return scheduler;
}

function newWatch(maxRunning = 10): Watch {
  counter += 1;
  return db.saveWatch(
    { pattern: `*w${counter}.csv`, inputBucket: 'raw', outputBucket: 'cogs', endpoint: undefined },
    {
      accessKeyFile: undefined,
      secretKeyFile: undefined,
      region: 'us-east-1',
      schedule: '*/15 * * * *',
      maxRunning,
      retries: 3,
      retryDelayMs: 0,
      executor: 'local',
      ...DEFAULT_CONVERSION,
      onRunEnd: [],
      notifyUrl: null,
    },
  );
}

/** A planned run of `watch` whose manifest lists `rows` (`key,bands` lines; `key` means `key,1`). */
async function newRun(watch: Watch, rows: string[]): Promise<RunRecord> {
  counter += 1;
  const runDir = path.join(dir, `run${counter}`);
  await mkdir(runDir);
  const run = db.insertRun({
    watchId: watch.id,
    inputBucket: 'raw',
    outputBucket: 'cogs',
    manifestKey: `m${counter}-raw.csv`,
    manifestEtag: `"e${counter}"`,
    manifestMtime: '2026-01-01T00:00:00.000Z',
    base: `m${counter}-`,
    ts: '20260101-000000',
    processingKey: `m${counter}-processing-20260101-000000.csv`,
    runDir,
    batchName: 'COG-Pipeline-DAG-*raw.csv',
  });
  db.insertJobs(run.id, planRows(parseManifest(rows.map((r) => (r.includes(',') ? r : `${r},1`)).join('\n') + '\n')));
  return db.run(run.id)!;
}

/** The run's jobs by image key, as the DB has them now. */
function jobs(run: RunRecord): Record<string, JobRecord> {
  return Object.fromEntries(db.jobs(run.id).map((j) => [j.imageKey ?? `line${j.line}`, j]));
}

interface Execution {
  done: Promise<void>;
  /** The DB's job records at each call of the post step (there must be exactly one). */
  posts: JobRecord[][];
  settled: () => boolean;
}

function execute(run: RunRecord, executor: FakeExecutor, handle: Partial<RunHandle> = {}): Execution {
  const posts: JobRecord[][] = [];
  let settled = false;
  const done = scheduler!
    .execute({
      run,
      log,
      storage,
      executor,
      maxRunning: 10,
      retries: 0,
      backoff: NO_DELAY,
      conversion: DEFAULT_CONVERSION,
      post: async () => {
        posts.push(db.jobs(run.id));
      },
      ...handle,
    })
    .finally(() => (settled = true));
  done.catch(() => undefined);
  return { done, posts, settled: () => settled };
}

/** Waits (real time, a loop turn at a time) until `probe` holds; fails after 3 s. */
async function until(what: string, probe: () => boolean): Promise<void> {
  const deadline = performance.now() + 3000;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Lets pending callbacks, promise chains and file writes run (without moving fake time). */
async function settle(turns = 30): Promise<void> {
  for (let i = 0; i < turns; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

const pending = (fake: FakeExecutor): Call[] => fake.calls.filter((c) => c.outcome === 'pending');

/** Finishes the oldest pending call, one at a time, until the run is done; checks `check` at each step. */
async function finishAll(fake: FakeExecutor, execution: Execution, check: () => void = () => undefined): Promise<void> {
  while (!execution.settled()) {
    check();
    const [first] = pending(fake);
    if (first !== undefined) first.finish();
    await settle(5);
  }
  check();
}

const useFakeClock = (): void => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
};

describe('retries and back-off', () => {
  it('retries a transient failure after its back-off, never before, until it succeeds', async () => {
    useFakeClock();
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif']);
    const fake = new FakeExecutor({ 'a.tif': failing(2) });
    const execution = execute(run, fake, { retries: 3, backoff: { kind: 'fixed', delayMs: 1000, jitter: 0 } });

    for (const n of [1, 2]) {
      await until(`failure ${n} recorded`, () => jobs(run)['a.tif']!.error === `transient failure ${n}`);
      const job = jobs(run)['a.tif']!;
      expect(job).toMatchObject({ state: 'idle', attempts: n, notBefore: Date.now() + 1000 });
      await vi.advanceTimersByTimeAsync(999);
      await settle();
      expect(fake.calls.length, 'run again before its notBefore').toBe(n);
      await vi.advanceTimersByTimeAsync(1);
      await until(`attempt ${n + 1}`, () => fake.calls.length === n + 1);
      expect(fake.calls[n]!.at).toBeGreaterThanOrEqual(job.notBefore);
    }
    await execution.done;
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'converted', attempts: 3 });
    expect(fake.calls.map((c) => c.outcome)).toEqual(['error', 'error', 'ok']);
    // The attempt's log lines are flushed after the job is final (the post step may already run).
    await until('attempt over', () => scheduler!.running === 0);
    const jobLog = await readFile(path.join(run.runDir, `${jobs(run)['a.tif']!.logName}.log`), 'utf8');
    expect(jobLog).toContain('attempt 1 of 4 failed: transient failure 1; retrying in 1.0 s');
    expect(jobLog).toContain('converted in');
    expect(execution.posts).toHaveLength(1);
  });

  it('starts a retry only once the failed attempt is over (the retry stays removable)', async () => {
    newScheduler();
    const watch = newWatch(3);
    const run = await newRun(watch, ['a.tif']);
    const other = await newRun(watch, ['x.tif']);
    const fake = new FakeExecutor({}, held());
    const execution = execute(run, fake, { maxRunning: 3, retries: 1 });
    await until('a running', () => jobs(run)['a.tif']!.state === 'running');
    fake.calls[0]!.fail(new Error('transient failure'));
    // Promise jobs only: the failure is handled, the attempt's log flush (file I/O) is not done.
    for (let i = 0; i < 50; i += 1) await Promise.resolve();
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'idle', error: 'transient failure' });
    // Anything that launches jobs now (here: another run starting, with slots free) must not
    // start a's retry while its failed attempt is still being wound up.
    const second = execute(other, fake, { maxRunning: 3 });
    expect(fake.calls.map((c) => c.key)).toEqual(['a.tif', 'x.tif']);
    await until('retry in flight', () => fake.calls.length === 3);
    await settle();
    expect(scheduler!.running).toBe(2);
    const retry = fake.callsOf('a.tif')[1]!;
    expect(scheduler!.remove([jobs(run)['a.tif']!.id])).toEqual([]);
    await execution.done;
    expect(retry.abortReason).toBeInstanceOf(Removal);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'removed', attempts: 2 });
    expect(execution.posts).toHaveLength(1);
    fake.callsOf('x.tif')[0]!.finish();
    await second.done;
  });

  it('never retries a job removed while its failed attempt is wound up', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif']);
    const fake = new FakeExecutor({}, held());
    const execution = execute(run, fake, { retries: 3 });
    await until('a running', () => jobs(run)['a.tif']!.state === 'running');
    fake.calls[0]!.fail(new Error('transient failure'));
    for (let i = 0; i < 50; i += 1) await Promise.resolve(); // failure handled, log not flushed yet
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'idle', error: 'transient failure' });
    expect(scheduler!.remove([jobs(run)['a.tif']!.id])).toEqual([]);
    await execution.done;
    expect(fake.calls).toHaveLength(1);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'removed', error: 'removed by user', attempts: 1 });
    expect(execution.posts).toHaveLength(1);
  });

  it('fails a job with its last reason once its retries are used up', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif']);
    const fake = new FakeExecutor({ 'a.tif': failing(5) });
    const execution = execute(run, fake, { retries: 2 });
    await execution.done;
    expect(fake.callsOf('a.tif')).toHaveLength(3);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'failed', attempts: 3, error: 'transient failure 3' });
    expect(jobs(run)['b.tif']).toMatchObject({ state: 'converted', attempts: 1 });
  });

  it('fails a job at once on a PermanentError, whatever its retries', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif']);
    const fake = new FakeExecutor({ 'a.tif': permanent('the image s3://raw/a.tif does not exist') });
    await execute(run, fake, { retries: 3 }).done;
    expect(fake.calls).toHaveLength(1);
    expect(jobs(run)['a.tif']).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: 'the image s3://raw/a.tif does not exist',
    });
  });
});

describe('-m (maxRunning)', () => {
  it('keeps at most maxRunning jobs in flight; waiting ones are idle, started ones running', async () => {
    newScheduler();
    const keys = ['a.tif', 'b.tif', 'c.tif', 'd.tif', 'e.tif', 'f.tif'];
    const run = await newRun(newWatch(), keys);
    const fake = new FakeExecutor({}, held(false)); // waits for a slot: does not call started()
    const execution = execute(run, fake, { maxRunning: 2 });

    await until('two in flight', () => fake.calls.length === 2);
    await settle();
    expect(fake.calls.map((c) => c.key)).toEqual(['a.tif', 'b.tif']);
    expect(scheduler!.running).toBe(2);
    // Handed over but not started: still idle (their attempt counted); the others untouched.
    expect(Object.values(jobs(run)).map((j) => [j.imageKey, j.state, j.attempts])).toEqual([
      ['a.tif', 'idle', 1],
      ['b.tif', 'idle', 1],
      ['c.tif', 'idle', 0],
      ['d.tif', 'idle', 0],
      ['e.tif', 'idle', 0],
      ['f.tif', 'idle', 0],
    ]);
    fake.calls[0]!.job.started();
    expect(jobs(run)['a.tif']!.state).toBe('running');
    expect(jobs(run)['b.tif']!.state).toBe('idle');

    await finishAll(fake, execution, () => {
      expect(fake.inFlight).toBeLessThanOrEqual(2);
      const states = Object.values(jobs(run)).map((j) => j.state);
      expect(states.filter((s) => s === 'running').length).toBeLessThanOrEqual(2);
    });
    expect(fake.maxInFlight).toBe(2);
    expect(Object.values(jobs(run)).every((j) => j.state === 'converted' && j.attempts === 1)).toBe(true);
  });
});

describe('round-robin', () => {
  it('alternates between two runs of one watch with maxRunning 1', async () => {
    newScheduler();
    const watch = newWatch(1);
    const one = await newRun(watch, ['one/a.tif', 'one/b.tif', 'one/c.tif', 'one/d.tif']);
    const two = await newRun(watch, ['two/a.tif', 'two/b.tif']);
    const fake = new FakeExecutor();
    const first = execute(one, fake, { maxRunning: 1 });
    const second = execute(two, fake, { maxRunning: 1 });
    await Promise.all([first.done, second.done]);
    expect(fake.calls.map((c) => c.key)).toEqual([
      'one/a.tif',
      'two/a.tif',
      'one/b.tif',
      'two/b.tif',
      'one/c.tif',
      'one/d.tif',
    ]);
    expect(fake.maxInFlight).toBe(1);
  });

  it('gives each watch its own limit', async () => {
    newScheduler();
    const narrow = await newRun(newWatch(1), ['n/a.tif', 'n/b.tif', 'n/c.tif']);
    const wide = await newRun(newWatch(2), ['w/a.tif', 'w/b.tif', 'w/c.tif']);
    const fake = new FakeExecutor({}, held());
    const first = execute(narrow, fake, { maxRunning: 1 });
    const second = execute(wide, fake, { maxRunning: 2 });
    await until('three in flight', () => fake.calls.length === 3);
    await settle();
    expect(fake.calls.length).toBe(3);
    expect(fake.inFlightByRun.get(narrow.id)).toBe(1);
    expect(fake.inFlightByRun.get(wide.id)).toBe(2);
    const both = {
      settled: () => first.settled() && second.settled(),
      done: Promise.all([first.done, second.done]).then(() => undefined),
      posts: [],
    };
    await finishAll(fake, both);
    expect(fake.maxInFlightByRun.get(narrow.id)).toBe(1);
    expect(fake.maxInFlightByRun.get(wide.id)).toBe(2);
    expect(fake.calls).toHaveLength(6);
  });
});

describe('deadlines', () => {
  it('stops a job hanging inside clock.ticking at its deadline and fails it without a retry', async () => {
    useFakeClock();
    newScheduler({ jobTimeoutMs: 5000 });
    const run = await newRun(newWatch(), ['a.tif']);
    const fake = new FakeExecutor({ 'a.tif': hangTicking });
    const execution = execute(run, fake, { retries: 3 });
    await until('in flight', () => fake.calls.length === 1);
    await vi.advanceTimersByTimeAsync(4999);
    await settle();
    expect(fake.calls[0]!.outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await execution.done;
    expect(fake.calls).toHaveLength(1);
    expect((fake.calls[0]!.abortReason as Error).message).toBe('timed out after 5 s');
    expect(fake.calls[0]!.abortedAt! - fake.calls[0]!.at).toBe(5000);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'failed', attempts: 1, error: 'timed out after 5 s' });
  });

  it('retries a timed-out job with retryTimeouts', async () => {
    useFakeClock();
    newScheduler({ jobTimeoutMs: 5000, retryTimeouts: true });
    const run = await newRun(newWatch(), ['a.tif']);
    const script: Script = (call) => (call.n === 1 ? hangTicking(call) : succeed(call));
    const fake = new FakeExecutor({ 'a.tif': script });
    const execution = execute(run, fake, { retries: 1 });
    await until('in flight', () => fake.calls.length === 1);
    await vi.advanceTimersByTimeAsync(5000);
    await execution.done;
    expect(fake.calls.map((c) => c.outcome)).toEqual(['error', 'ok']);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'converted', attempts: 2 });
  });

  it('does not count time spent outside clock.ticking (queued behind other work)', async () => {
    useFakeClock();
    newScheduler({ jobTimeoutMs: 5000 });
    const run = await newRun(newWatch(), ['a.tif', 'b.tif']);
    // 3 s of work, 20 s queued, then 1.999 s more work (a) or work that never ends (b).
    const queued =
      (last: (call: Call) => Promise<void>): Script =>
      async (call) => {
        call.job.started();
        await call.job.clock.ticking(() => wait(3000, call.signal));
        await wait(20_000, call.signal);
        await call.job.clock.ticking(() => last(call));
      };
    const fake = new FakeExecutor({
      'a.tif': queued((call) => wait(1999, call.signal)),
      'b.tif': queued(hang),
    });
    const execution = execute(run, fake, { retries: 3 });
    await until('both in flight', () => fake.calls.length === 2);
    await vi.advanceTimersByTimeAsync(24_999);
    await until('a converted', () => jobs(run)['a.tif']!.state === 'converted');
    expect(fake.callsOf('b.tif')[0]!.outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await execution.done;
    const [b] = fake.callsOf('b.tif');
    expect(b!.abortedAt! - b!.at).toBe(25_000);
    expect(jobs(run)['b.tif']).toMatchObject({ state: 'failed', attempts: 1, error: 'timed out after 5 s' });
    expect(fake.calls).toHaveLength(2);
  });
});

describe('removal', () => {
  it('stops a running job, never starts a waiting one, and returns the ids it does not know', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif', 'c.tif']);
    const fake = new FakeExecutor({ 'a.tif': held() });
    const execution = execute(run, fake, { maxRunning: 1 });
    await until('a running', () => jobs(run)['a.tif']!.state === 'running');
    const { a, b } = { a: jobs(run)['a.tif']!, b: jobs(run)['b.tif']! };

    expect(scheduler!.remove([a.id, b.id, 999_999])).toEqual([999_999]);
    await execution.done;
    expect(fake.callsOf('a.tif')[0]!.abortReason).toBeInstanceOf(Removal);
    expect(fake.callsOf('b.tif')).toHaveLength(0);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'removed', error: 'removed by user', attempts: 1 });
    expect(jobs(run)['b.tif']).toMatchObject({ state: 'removed', error: 'removed by user', attempts: 0 });
    expect(jobs(run)['c.tif']).toMatchObject({ state: 'converted', attempts: 1 });
    expect(execution.posts).toHaveLength(1);
  });

  it('ignores a second removal of a job already removed', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif']);
    const fake = new FakeExecutor({}, held());
    const execution = execute(run, fake, { maxRunning: 1 });
    await until('a running', () => jobs(run)['a.tif']!.state === 'running');
    const a = jobs(run)['a.tif']!;
    expect(scheduler!.remove([a.id])).toEqual([]);
    await until('a removed', () => jobs(run)['a.tif']!.state === 'removed');
    expect(scheduler!.remove([a.id])).toEqual([]);
    await until('b in flight', () => fake.calls.length === 2);
    fake.calls[1]!.finish();
    await execution.done;
    expect(jobs(run)['a.tif']!.state).toBe('removed');
    expect(execution.posts).toHaveLength(1);
  });

  it('drops a job waiting for its back-off: it never runs again', async () => {
    useFakeClock();
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif']);
    const fake = new FakeExecutor({ 'a.tif': failing(1), 'b.tif': held() }); // b keeps the run going
    const execution = execute(run, fake, { retries: 3, backoff: { kind: 'fixed', delayMs: 60_000, jitter: 0 } });
    await until('a backing off', () => jobs(run)['a.tif']!.error === 'transient failure 1' && scheduler!.running === 1);
    expect(scheduler!.remove([jobs(run)['a.tif']!.id])).toEqual([]);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'removed', error: 'removed by user', attempts: 1 });
    await vi.advanceTimersByTimeAsync(120_000);
    await settle();
    expect(fake.callsOf('a.tif')).toHaveLength(1);
    fake.callsOf('b.tif')[0]!.finish();
    await execution.done;
    expect(fake.calls).toHaveLength(2);
    expect(jobs(run)['a.tif']!.state).toBe('removed');
    expect(execution.posts).toHaveLength(1);
  });

  it('cancels the outside work of a waiting detached job', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif']);
    const fake = new FakeExecutor({}, held());
    const { a, b } = { a: jobs(run)['a.tif']!, b: jobs(run)['b.tif']! };
    fake.detachedJobs.add(a.id).add(b.id);
    const execution = execute(run, fake, { maxRunning: 1 });
    await until('a in flight', () => fake.calls.length === 1);
    expect(scheduler!.remove([b.id])).toEqual([]);
    expect(fake.cancelled).toEqual([b.id]);
    fake.calls[0]!.finish();
    await execution.done;
    expect(fake.calls.map((c) => c.key)).toEqual(['a.tif']);
    expect(jobs(run)['b.tif']!.state).toBe('removed');
  });
});

describe('drain', () => {
  it('interrupts jobs in flight with Shutdown: back to idle, attempt given back, nothing failed, no post', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif', 'c.tif', 'd.tif']);
    // b works; c is handed over but still waits for a slot inside the executor (not started).
    const fake = new FakeExecutor({ 'a.tif': failing(1), 'c.tif': held(false) }, hang);
    const execution = execute(run, fake, {
      maxRunning: 2,
      retries: 3,
      backoff: { kind: 'fixed', delayMs: 60_000, jitter: 0 },
    });
    await until('b running, c in flight', () => jobs(run)['b.tif']!.state === 'running' && fake.calls.length === 3);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'idle', attempts: 1, error: 'transient failure 1' });
    expect(jobs(run)['c.tif']).toMatchObject({ state: 'idle', attempts: 1 });

    await scheduler!.drain();
    expect(scheduler!.running).toBe(0);
    for (const key of ['b.tif', 'c.tif']) {
      expect(fake.callsOf(key)[0]!.abortReason).toBeInstanceOf(Shutdown);
      expect(jobs(run)[key]).toMatchObject({ state: 'idle', attempts: 0, error: null });
    }
    // Backing off / waiting for a slot: left as they were.
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'idle', attempts: 1 });
    expect(jobs(run)['d.tif']).toMatchObject({ state: 'idle', attempts: 0 });
    await settle();
    expect(fake.calls.map((c) => c.key)).toEqual(['a.tif', 'b.tif', 'c.tif']);
    expect(Object.values(jobs(run)).some((j) => j.state === 'failed')).toBe(false);
    expect(execution.posts).toHaveLength(0);
    expect(execution.settled()).toBe(false);
    // An executor that reports a start after the abort changes nothing.
    fake.callsOf('c.tif')[0]!.job.started();
    expect(jobs(run)['c.tif']).toMatchObject({ state: 'idle', attempts: 0 });
  });

  it('does not start the post step when the last job completes during the drain', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif']);
    // Finishes its upload instead of stopping: the job is converted, but the run is left for the next start.
    const finishAnyway: Script = async (call) => {
      call.job.started();
      await new Promise((resolve) => call.signal.addEventListener('abort', resolve, { once: true }));
    };
    const fake = new FakeExecutor({ 'a.tif': finishAnyway });
    const execution = execute(run, fake);
    await until('a running', () => jobs(run)['a.tif']!.state === 'running');
    await scheduler!.drain();
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'converted', attempts: 1 });
    await settle();
    expect(execution.posts).toHaveLength(0);
    expect(execution.settled()).toBe(false);
  });
});

describe('re-attach', () => {
  it('follows detached jobs first and does not count their attempt again', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif', 'c.tif', 'd.tif']);
    const c = jobs(run)['c.tif']!;
    db.setJobState(c.id, 'running', { attempts: 1 }); // attempt 1 queued in HTCondor by an earlier process
    const fake = new FakeExecutor({ 'c.tif': held() });
    fake.detachedJobs.add(c.id);
    const execution = execute(run, fake, { maxRunning: 1, retries: 1 });
    await until('c running', () => fake.calls.length === 1 && jobs(run)['c.tif']!.state === 'running');
    expect(fake.calls[0]!).toMatchObject({ key: 'c.tif', reattach: true });
    expect(jobs(run)['c.tif']!.attempts).toBe(1);
    // The followed attempt 1 fails: with --retries 1 it still has its attempt 2.
    fake.calls[0]!.fail(new Error('transient failure'));
    await finishAll(fake, execution);
    expect(fake.calls.map((call) => [call.key, call.reattach])).toEqual([
      ['c.tif', true],
      ['a.tif', false],
      ['b.tif', false],
      ['d.tif', false],
      ['c.tif', false],
    ]);
    expect(Object.values(jobs(run)).map((j) => [j.imageKey, j.state, j.attempts])).toEqual([
      ['a.tif', 'converted', 1],
      ['b.tif', 'converted', 1],
      ['c.tif', 'converted', 2],
      ['d.tif', 'converted', 1],
    ]);
    const jobLog = await readFile(path.join(run.runDir, `${c.logName}.log`), 'utf8');
    expect(jobLog).toContain('attempt 1 of 2: following it again after a restart');
  });

  it('leaves a detached job as it is, on hand-over and on drain', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif']);
    const a = jobs(run)['a.tif']!;
    // Attempt 1 of a is queued in HTCondor (cluster 7) and held there.
    db.setJobState(a.id, 'idle', { attempts: 1 });
    db.setCondorCluster(run.id, db.recordCondorBatch(run.id, [a.id]), 7);
    db.setCondorProgress(a.id, 'held', 'held: out of disk');
    const fake = new FakeExecutor({ 'a.tif': held(false) }, hang);
    fake.detachedJobs.add(a.id);
    const execution = execute(run, fake, { maxRunning: 2 });
    await until('a followed, b running', () => fake.calls.length === 2 && jobs(run)['b.tif']!.state === 'running');
    expect(fake.calls[0]!).toMatchObject({ key: 'a.tif', reattach: true });
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'held', attempts: 1, error: 'held: out of disk' });

    await scheduler!.drain();
    expect(fake.calls.map((c) => c.abortReason instanceof Shutdown)).toEqual([true, true]);
    expect(jobs(run)['a.tif']).toMatchObject({ state: 'held', attempts: 1, error: 'held: out of disk' });
    expect(db.condorSubmission(a.id)?.cluster).toBe(7);
    expect(fake.detached(a.id)).toBe(true);
    expect(jobs(run)['b.tif']).toMatchObject({ state: 'idle', attempts: 0 });
    expect(execution.posts).toHaveLength(0);
  });
});

describe('post', () => {
  it('runs once, after every job is final, before execute resolves', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif', 'b.tif', 'c.tif', 'd.png']); // d.png is rejected by the plan
    const fake = new FakeExecutor({ 'b.tif': permanent('not a TIFF'), 'c.tif': held() });
    const execution = execute(run, fake, { maxRunning: 3, retries: 2 });
    await until(
      'a and b final',
      () => ['converted', 'failed'].includes(jobs(run)['a.tif']!.state) && jobs(run)['b.tif']!.state === 'failed',
    );
    await settle();
    expect(execution.posts).toHaveLength(0);
    expect(scheduler!.remove([jobs(run)['c.tif']!.id])).toEqual([]);
    await execution.done;
    expect(execution.posts).toHaveLength(1);
    expect(execution.posts[0]!.map((j) => [j.imageKey ?? `line${j.line}`, j.state])).toEqual([
      ['a.tif', 'converted'],
      ['b.tif', 'failed'],
      ['c.tif', 'removed'],
      ['line4', 'failed'],
    ]);
    await settle();
    expect(execution.posts).toHaveLength(1);
  });

  it('runs at once for a run whose jobs are all final already', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.png', 'b.png']);
    const fake = new FakeExecutor();
    const execution = execute(run, fake);
    await execution.done;
    expect(fake.calls).toHaveLength(0);
    expect(execution.posts).toHaveLength(1);
  });

  it('rejects execute when the post step fails', async () => {
    newScheduler();
    const run = await newRun(newWatch(), ['a.tif']);
    const execution = execute(run, new FakeExecutor(), { post: () => Promise.reject(new Error('post broke')) });
    await expect(execution.done).rejects.toThrow('post broke');
  });
});
