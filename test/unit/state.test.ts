/** The state facade against a real SQLite file: every concern through StateDB, and statements prepared once. */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StateDB, type NewJob, type NewRun, type WatchIdentity, type WatchSettings } from '../../src/state/db.js';
import { tempDir } from '../support/helpers.js';
import { DEFAULT_CONVERSION } from '../../src/convert/profiles.js';

const identity: WatchIdentity = {
  pattern: '*raw.csv',
  inputBucket: 'raw',
  outputBucket: 'cogs',
  endpoint: 'http://127.0.0.1:9000',
};
const settings: WatchSettings = {
  accessKeyFile: '/keys/a',
  secretKeyFile: '/keys/s',
  region: 'us-east-1',
  schedule: '*/15 * * * *',
  maxRunning: 10,
  retries: 3,
  retryDelayMs: 1000,
  executor: 'local',
  ...DEFAULT_CONVERSION,
  onRunEnd: [],
  notifyUrl: null,
};

const newRun = (watchId: number, n: number): NewRun => ({
  watchId,
  inputBucket: 'raw',
  outputBucket: 'cogs',
  manifestKey: `m${n}-raw.csv`,
  manifestEtag: `"e${n}"`,
  manifestMtime: '2026-11-21T00:00:00.000Z',
  base: `m${n}-`,
  ts: '20261121-000000',
  processingKey: `m${n}-processing-20261121-000000.csv`,
  runDir: `/home/logs/run-${n}`,
  batchName: 'COG-Pipeline-DAG-*raw.csv',
});

const job = (line: number, state: NewJob['state'] = 'idle'): NewJob => ({
  line,
  raw: `img/${line}.tif,3`,
  imageKey: `img/${line}.tif`,
  bands: 3,
  logName: `${line}`,
  state,
  error: state === 'failed' ? 'bad row' : null,
});

const open: StateDB[] = [];
async function fresh(): Promise<{ db: StateDB; file: string }> {
  const file = path.join(await tempDir(), 'cogd.db');
  const db = new StateDB(file);
  open.push(db);
  return { db, file };
}

afterEach(() => {
  for (const db of open.splice(0)) db.close();
  vi.restoreAllMocks();
});

describe('watches', () => {
  it('are saved, found, updated in place, removed, and kept in the file', async () => {
    const { db, file } = await fresh();
    const saved = db.saveWatch(identity, settings);
    expect(saved).toMatchObject({
      pattern: '*raw.csv',
      schedule: '*/15 * * * *',
      executor: 'local',
      conditionalWrites: null,
      warning: null,
      removedAt: null,
    });
    expect(saved.s3).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      accessKeyFile: '/keys/a',
      secretKeyFile: '/keys/s',
      region: 'us-east-1',
    });
    expect(db.findWatch(identity)?.id).toBe(saved.id);
    expect(db.findWatch({ ...identity, endpoint: undefined })).toBeUndefined();

    const updated = db.saveWatch(identity, { ...settings, schedule: '0 * * * *', executor: 'condor', maxRunning: 2 });
    expect(updated.id).toBe(saved.id);
    expect(updated).toMatchObject({ schedule: '0 * * * *', executor: 'condor', maxRunning: 2 });
    const aws = db.saveWatch({ ...identity, endpoint: undefined }, settings);
    expect(aws.id).not.toBe(saved.id);
    expect(aws.s3.endpoint).toBeUndefined();

    db.setConditionalWrites(saved.id, false);
    db.setWatchWarning(saved.id, 'key file readable by others');
    expect(db.watch(saved.id)).toMatchObject({ conditionalWrites: false, warning: 'key file readable by others' });
    db.setWatchWarning(saved.id, null);
    expect(db.watch(saved.id)?.warning).toBeNull();

    expect(db.removeWatch(aws.id)).toBe(true);
    expect(db.removeWatch(aws.id)).toBe(false);
    expect(db.liveWatches().map((w) => w.id)).toEqual([saved.id]);
    expect(db.watch(aws.id)?.removedAt).not.toBeNull();

    db.close();
    open.splice(0);
    const again = new StateDB(file);
    open.push(again);
    expect(again.findWatch(identity)).toMatchObject({ id: saved.id, schedule: '0 * * * *' });
  });
});

describe('runs and jobs', () => {
  it('a run is claimed, planned, worked and finished', async () => {
    const { db } = await fresh();
    const watch = db.saveWatch(identity, settings);
    const run = db.insertRun(newRun(watch.id, 1));
    expect(run).toMatchObject({ state: 'claiming', claimStep: 'claimed', rowsTotal: null, finishedAt: null });
    expect(run.claimToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(db.findRun('raw', 'm1-raw.csv', '"e1"', '2026-11-21T00:00:00.000Z')?.id).toBe(run.id);
    expect(db.findRun('raw', 'm1-raw.csv', '"other"', '2026-11-21T00:00:00.000Z')).toBeUndefined();
    expect(db.runDirTaken('/home/logs/run-1')).toBe(true);
    expect(db.runDirTaken('/home/logs/run-2')).toBe(false);

    db.setClaimStep(run.id, 'copied');
    db.deleteRun(run.id); // past 'downloaded': something was done in the bucket, the claim stays
    expect(db.run(run.id)?.claimStep).toBe('copied');

    db.insertJobs(run.id, [job(1), job(2), job(3), job(4, 'failed')]);
    expect(db.run(run.id)).toMatchObject({ state: 'running', rowsTotal: 4 });
    const [a, b, c] = db.jobs(run.id);
    db.setJobState(a!.id, 'running', { attempts: 1 });
    db.setJobState(b!.id, 'converted', { error: null, attempts: 1, endAttempt: true });
    db.setJobState(c!.id, 'idle', { error: 'timed out', notBefore: 1234, attempts: 1, endAttempt: true });
    expect(db.jobByLine(run.id, 3)).toMatchObject({ state: 'idle', error: 'timed out', notBefore: 1234, attempts: 1 });
    expect(db.jobError(c!.id)).toBe('timed out');
    db.setJobState(c!.id, 'idle', { attempts: 2 }); // no error given: the last one stays
    expect(db.jobError(c!.id)).toBe('timed out');
    db.setJobState(c!.id, 'converted', { error: null, endAttempt: true }); // converted after a retry: cleared
    expect(db.jobError(c!.id)).toBeNull();
    db.setJobState(c!.id, 'idle', { error: 'timed out', notBefore: 1234, attempts: 1, endAttempt: true });
    expect(db.jobError(999)).toBeNull();
    expect(db.runOfJob(c!.id)).toBe(run.id);
    expect(db.jobCounts(run.id)).toEqual({ idle: 1, running: 1, held: 0, converted: 1, failed: 1, removed: 0 });
    expect(db.jobsByState(run.id)).toEqual(
      expect.arrayContaining([
        { state: 'running', jobs: 1, firstLine: 1, lastLine: 1 },
        { state: 'failed', jobs: 1, firstLine: 4, lastLine: 4 },
      ]),
    );

    expect(db.requeueRunning(run.id)).toBe(1);
    expect(db.jobCounts(run.id)).toMatchObject({ idle: 2, running: 0 });

    const other = db.insertRun(newRun(watch.id, 2));
    expect(db.unfinishedRuns().map((r) => r.id)).toEqual([run.id, other.id]);
    expect(db.unfinishedRuns(watch.id + 1)).toEqual([]);
    expect(db.runsByBatch('COG-Pipeline-DAG-*raw.csv')).toHaveLength(2);
    db.deleteRun(other.id); // still 'claimed': forgotten
    expect(db.run(other.id)).toBeUndefined();

    db.setRunError(run.id, 'not a manifest');
    db.setPostError(run.id, 'post failed');
    db.setRunState(run.id, 'post');
    expect(db.run(run.id)).toMatchObject({ state: 'post', error: 'not a manifest', postError: 'post failed' });
    const before = new Date(Date.now() - 1000).toISOString();
    db.finishRun(run.id, 3, 1);
    expect(db.run(run.id)).toMatchObject({ state: 'done', processed: 3, failed: 1, postError: null });
    expect(db.unfinishedRuns()).toEqual([]);
    expect(db.recentRuns(before).map((r) => r.id)).toEqual([run.id]);
    expect(db.recentRuns(new Date(Date.now() + 60_000).toISOString())).toEqual([]);
    expect(db.jobsOfRuns([run.id]).map((j) => j.line)).toEqual([1, 2, 3, 4]);
  });

  it("a run's end: what its watch says when it finishes becomes pending with it; each outcome is recorded once", async () => {
    const { db } = await fresh();
    const url = 'https://bot:pw123@hooks.example.org/cogd?token=abcdef';
    const watch = db.saveWatch(identity, { ...settings, onRunEnd: ['/bin/hook', 'a b'], notifyUrl: url });
    expect(watch.runEnd).toEqual({ onRunEnd: ['/bin/hook', 'a b'], notifyUrl: url });
    const quiet = db.saveWatch({ ...identity, pattern: 'q*' }, settings);
    expect(quiet.runEnd).toEqual({ onRunEnd: [], notifyUrl: null });

    const run = db.insertRun(newRun(watch.id, 1));
    const other = db.insertRun(newRun(quiet.id, 2));
    expect(db.runEnd(run.id)).toMatchObject({ hookState: null, notifyState: null });
    db.finishRun(run.id, 1, 0);
    db.finishRun(other.id, 1, 0);
    expect(db.runEnd(run.id)).toMatchObject({
      hookCommand: '["/bin/hook","a b"]',
      hookState: 'pending',
      hookStarts: 0,
      notifyUrl: url,
      notifyState: 'pending',
    });
    expect(db.runEnd(other.id)).toMatchObject({
      hookCommand: null,
      hookState: null,
      notifyUrl: null,
      notifyState: null,
    });
    expect(db.runEndPending()).toEqual([run.id]);
    expect(db.runEndPending(quiet.id)).toEqual([]);

    db.hookStarted(run.id);
    db.hookStarted(run.id); // a restart ran it again
    const timedOut = { state: 'timeout', exitCode: null, signal: 'SIGKILL', result: 'timed out after 2 s' } as const;
    db.setHookOutcome(run.id, timedOut);
    db.setHookOutcome(run.id, { state: 'ok', exitCode: 0, signal: null, result: 'exit code 0' }); // not pending: ignored
    expect(db.runEnd(run.id)).toMatchObject({ hookState: 'timeout', hookStarts: 2, hookSignal: 'SIGKILL' });
    expect(db.runEndPending()).toEqual([run.id]); // the notification still is
    db.setNotifyOutcome(run.id, { ok: false, result: 'gave up after 3 attempts: HTTP 503' });
    expect(db.runEnd(run.id)).toMatchObject({
      notifyState: 'failed',
      notifyResult: 'gave up after 3 attempts: HTTP 503',
    });
    expect(db.runEndPending()).toEqual([]);
  });

  it('removal requests reach unfinished jobs only', async () => {
    const { db } = await fresh();
    const watch = db.saveWatch(identity, settings);
    const one = db.insertRun(newRun(watch.id, 1));
    const two = db.insertRun(newRun(watch.id, 2));
    db.insertJobs(one.id, [job(1), job(2), job(3, 'failed')]);
    db.insertJobs(two.id, [job(1), job(2)]);
    const [a, , failed] = db.jobs(one.id);
    expect(db.requestJobRemoval(a!.id)).toBe(true);
    expect(db.requestJobRemoval(failed!.id)).toBe(false);
    expect(db.requestRunRemoval(two.id)).toBe(true);
    const requested = db.jobsToRemove();
    expect(requested.sort((x, y) => x - y)).toEqual([a!.id, ...db.jobs(two.id).map((j) => j.id)].sort((x, y) => x - y));
    db.markRemoved(requested);
    expect(db.jobsToRemove()).toEqual([]);
    expect(db.jobByLine(one.id, 1)).toMatchObject({ state: 'removed', error: 'removed by user' });
    expect(db.jobCounts(two.id)).toMatchObject({ removed: 2, idle: 0 });
    db.finishRun(one.id, 0, 1);
    expect(db.requestRunRemoval(one.id)).toBe(false);
  });

  it("counts a run's jobs per state with the waiting jobs a user holds as held, lines and all", async () => {
    const { db } = await fresh();
    const watch = db.saveWatch(identity, settings);
    const run = db.insertRun(newRun(watch.id, 1));
    db.insertJobs(
      run.id,
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => job(n)),
    );
    const byLine = (line: number): number => db.jobByLine(run.id, line)!.id;
    const sorted = (): unknown[] => [...db.jobsByState(run.id)].sort((a, b) => a.state.localeCompare(b.state));
    expect(sorted()).toEqual([{ state: 'idle', jobs: 9, firstLine: 1, lastLine: 9 }]);
    const hold = { reason: 'quota', since: '2026-11-30T00:00:00.000Z', by: 'ana', now: false };
    // The user holds the first and the last waiting job; the executor holds line 5; line 4 runs.
    db.hold('job', byLine(1), hold);
    db.hold('job', byLine(9), hold);
    db.setCondorProgress(byLine(5), 'held', 'held: a reason');
    db.setJobState(byLine(4), 'running');
    expect(sorted()).toEqual([
      { state: 'held', jobs: 3, firstLine: 1, lastLine: 9 },
      { state: 'idle', jobs: 5, firstLine: 2, lastLine: 8 },
      { state: 'running', jobs: 1, firstLine: 4, lastLine: 4 },
    ]);
    // Every waiting job held: no idle entry at all.
    for (const line of [2, 3, 6, 7, 8]) db.hold('job', byLine(line), hold);
    expect(sorted()).toEqual([
      { state: 'held', jobs: 8, firstLine: 1, lastLine: 9 },
      { state: 'running', jobs: 1, firstLine: 4, lastLine: 4 },
    ]);
  });

  it('HTCondor submissions: batches, clusters, results, offsets', async () => {
    const { db } = await fresh();
    const watch = db.saveWatch(identity, { ...settings, executor: 'condor' });
    const run = db.insertRun(newRun(watch.id, 1));
    db.insertJobs(run.id, [job(1), job(2), job(3)]);
    const [a, b, c] = db.jobs(run.id).map((j) => j.id);
    expect(db.hasCondorSubmissions(run.id)).toBe(false);
    expect(db.recordCondorBatch(run.id, [a!, b!])).toBe(1);
    expect(db.recordCondorBatch(run.id, [c!])).toBe(2);
    expect(db.condorSubmission(b!)).toEqual({
      jobId: b,
      runId: run.id,
      state: 'idle',
      batch: 1,
      cluster: null,
      proc: 1,
      result: null,
    });
    expect(db.unconfirmedCondorBatches(run.id).sort()).toEqual([1, 2]);
    expect(db.anyCondorSubmissions([a!, b!])).toBe(false);
    expect(db.setCondorCluster(run.id, 1, 77)).toBe(2);
    db.clearCondorBatch(run.id, 2);
    expect(db.condorSubmission(c!)).toBeUndefined();
    expect(db.unconfirmedCondorBatches(run.id)).toEqual([]);
    expect(db.condorJob(run.id, 77, 0)?.jobId).toBe(a);
    expect(db.anyCondorSubmissions([a!])).toBe(true);
    expect(db.hasCondorSubmissions(run.id)).toBe(true);

    db.setCondorProgress(a!, 'running');
    db.setCondorProgress(b!, 'held', 'held: no disk');
    expect(db.holdReasons(run.id)).toEqual([{ reason: 'held: no disk', jobs: 1 }]);
    expect(db.liveCondorProcs(77)).toEqual([0, 1]);
    expect(db.requeueRunning(run.id)).toBe(0); // queued in HTCondor: re-attached, not requeued
    db.setCondorResult(a!, 'ok');
    expect(db.liveCondorProcs(77)).toEqual([1]);
    db.setJobState(a!, 'converted', { endAttempt: true });
    expect(db.condorSubmission(a!)).toBeUndefined();
    db.setCondorProgress(a!, 'running'); // never over a final state
    expect(db.jobByLine(run.id, 1)?.state).toBe('converted');

    expect(db.condorOffset(run.id)).toBe(0);
    db.transaction(() => db.setCondorOffset(run.id, 4096));
    expect(db.writeTransaction(() => db.condorOffset(run.id))).toBe(4096);
    expect(db.condorOffset(999)).toBe(0);
  });
});

describe("the scheduler's job state changes, committed together", () => {
  /** What another connection (another process: `cogd status`) reads of the run's jobs. */
  const seen = (file: string, runId: number): string[] => {
    const reader = new Database(file, { readonly: true });
    try {
      return reader.prepare('SELECT state FROM jobs WHERE run_id = ? ORDER BY line').pluck().all(runId) as string[];
    } finally {
      reader.close();
    }
  };
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('commit at the end of the turn, or first when anything else uses the state, or at close', async () => {
    const { db, file } = await fresh();
    const watch = db.saveWatch(identity, settings);
    const run = db.insertRun(newRun(watch.id, 1));
    db.insertJobs(run.id, [job(1), job(2), job(3)]);
    const [a, b, c] = db.jobs(run.id);

    db.setJobStateSoon(a!.id, 'idle', { attempts: 1 });
    db.setJobStateSoon(a!.id, 'running');
    db.setJobStateSoon(b!.id, 'failed', { error: 'gone', endAttempt: true });
    expect(seen(file, run.id)).toEqual(['idle', 'idle', 'idle']); // one transaction, not three
    await turn();
    expect(seen(file, run.id)).toEqual(['running', 'failed', 'idle']);

    // Another write is never put before them, nor into their transaction.
    db.setJobStateSoon(c!.id, 'running');
    db.setRunState(run.id, 'post');
    expect(seen(file, run.id)).toEqual(['running', 'failed', 'running']);
    db.setJobStateSoon(a!.id, 'converted', { error: null, endAttempt: true });
    expect(() =>
      db.writeTransaction(() => {
        db.setJobStateSoon(c!.id, 'failed', { error: 'undone with its transaction' });
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    expect(seen(file, run.id)).toEqual(['converted', 'failed', 'running']);
    expect(db.job(a!.id)).toMatchObject({ state: 'converted', attempts: 1, error: null });

    db.setJobStateSoon(c!.id, 'converted', { error: null, endAttempt: true });
    db.close();
    expect(seen(file, run.id)).toEqual(['converted', 'failed', 'converted']);
    await turn(); // the end-of-turn commit finds nothing left to do on the closed connection
  });

  it('a change that fails throws where it is made; the others of its turn stay', async () => {
    const { db, file } = await fresh();
    const watch = db.saveWatch(identity, settings);
    const run = db.insertRun(newRun(watch.id, 1));
    db.insertJobs(run.id, [job(1), job(2)]);
    const [a, b] = db.jobs(run.id);
    db.setJobStateSoon(a!.id, 'running');
    expect(() => db.setJobStateSoon(b!.id, 'nonsense' as 'idle')).toThrow(/CHECK constraint/);
    expect(seen(file, run.id)).toEqual(['running', 'idle']);
  });
});

describe('GDAL processes and skipped objects', () => {
  it('processes are recorded, found when left behind by another owner, and forgotten', async () => {
    const { db } = await fresh();
    db.recordProcess({ pid: 300, jobId: 1, command: 'gdal_translate', startTime: 'boot:1', ownerPid: 10 });
    db.recordProcess({ pid: 200, jobId: 2, command: 'gdaladdo', startTime: 'boot:2', ownerPid: 11 });
    expect(db.leftProcesses(10)).toEqual([
      { pid: 200, jobId: 2, command: 'gdaladdo', startTime: 'boot:2', ownerPid: 11 },
    ]);
    expect(db.leftProcesses(12).map((p) => p.pid)).toEqual([200, 300]);
    db.forgetProcess(200);
    expect(db.leftProcesses(10)).toEqual([]);
  });

  it('a skipped object stays skipped until it changes', async () => {
    const { db } = await fresh();
    const object = { key: 'x-raw.csv', etag: '"1"', lastModified: '2026-11-21T00:00:00.000Z' };
    expect(db.isSkipped('raw', object)).toBe(false);
    db.recordSkipped('raw', object, 'binary content');
    db.recordSkipped('raw', object, 'binary content'); // reported once, recorded once
    expect(db.isSkipped('raw', object)).toBe(true);
    expect(db.isSkipped('raw', { ...object, etag: '"2"' })).toBe(false);
    expect(db.isSkipped('other', object)).toBe(false);
  });
});

describe('statements', () => {
  /** One call of every facade method that runs SQL. */
  function everyMethod(db: StateDB, n: number): void {
    const watch = db.saveWatch({ ...identity, pattern: `p${n}` }, settings);
    db.saveWatch({ ...identity, pattern: `p${n}` }, settings);
    db.findWatch(identity);
    db.liveWatches();
    db.setConditionalWrites(watch.id, true);
    db.setWatchWarning(watch.id, null);
    const run = db.insertRun(newRun(watch.id, n));
    db.findRun('raw', 'x', 'y', 'z');
    db.runDirTaken('/nowhere');
    db.setClaimStep(run.id, 'downloaded');
    db.setRunState(run.id, 'claiming');
    db.setRunError(run.id, 'e');
    db.setPostError(run.id, null);
    db.insertJobs(run.id, [job(1), job(2)]);
    const [a, b] = db.jobs(run.id).map((j) => j.id);
    db.jobByLine(run.id, 1);
    db.runOfJob(a!);
    db.jobError(a!);
    db.jobCounts(run.id);
    db.setJobState(a!, 'running');
    db.requeueRunning(run.id);
    db.recordCondorBatch(run.id, [a!]);
    db.setCondorCluster(run.id, 1, n);
    db.clearCondorBatch(run.id, 2);
    db.condorSubmission(a!);
    db.condorJob(run.id, n, 0);
    db.unconfirmedCondorBatches(run.id);
    db.hasCondorSubmissions(run.id);
    db.anyCondorSubmissions([a!, b!]);
    db.liveCondorProcs(n);
    db.setCondorProgress(a!, 'held', 'held: x');
    db.setCondorResult(a!, 'ok');
    db.setCondorOffset(run.id, db.condorOffset(run.id) + 1);
    db.requestJobRemoval(b!);
    db.requestRunRemoval(run.id);
    db.markRemoved(db.jobsToRemove());
    db.recordProcess({ pid: n, jobId: a!, command: 'gdal_translate', startTime: 's', ownerPid: 1 });
    db.leftProcesses(2);
    db.forgetProcess(n);
    db.recordSkipped('raw', { key: `k${n}`, etag: 'e', lastModified: 'm' }, 'binary');
    db.isSkipped('raw', { key: `k${n}`, etag: 'e', lastModified: 'm' });
    db.recentRuns('2000-01-01T00:00:00.000Z');
    db.jobsOfRuns([run.id]);
    db.jobsByState(run.id);
    db.holdReasons(run.id);
    db.runsByBatch('b');
    db.unfinishedRuns();
    db.unfinishedRuns(watch.id);
    db.finishRun(run.id, 1, 1);
    db.runEnd(run.id);
    db.runEndPending();
    db.runEndPending(watch.id);
    db.hookStarted(run.id);
    db.setHookOutcome(run.id, { state: 'ok', exitCode: 0, signal: null, result: 'exit code 0' });
    db.setNotifyOutcome(run.id, { ok: true, result: 'HTTP 204 after 1 attempt' });
    db.deleteRun(run.id);
    db.transaction(() => db.run(run.id));
    db.writeTransaction(() => db.watch(watch.id));
    db.removeWatch(watch.id);
  }

  it('are prepared once, when the state opens: no method call prepares any', async () => {
    const prepare = vi.spyOn(Database.prototype, 'prepare');
    const { db } = await fresh();
    const atOpen = prepare.mock.calls.map(([sql]) => sql);
    expect(atOpen.length).toBeGreaterThan(40);
    expect(new Set(atOpen).size).toBe(atOpen.length); // no statement prepared twice

    everyMethod(db, 1);
    expect(prepare.mock.calls.length).toBe(atOpen.length);
    for (let n = 2; n <= 50; n += 1) everyMethod(db, n);
    expect(prepare.mock.calls.length).toBe(atOpen.length);
    expect(db.liveWatches()).toEqual([]);
    expect(db.unfinishedRuns()).toEqual([]);

    // A second connection prepares its own set, the same one, once.
    const other = new StateDB(db.file);
    open.push(other);
    expect(prepare.mock.calls.slice(atOpen.length).map(([sql]) => sql)).toEqual(atOpen);
    expect(other.watch(1)?.pattern).toBe('p1');
    expect(prepare.mock.calls.length).toBe(2 * atOpen.length);
  });
});
