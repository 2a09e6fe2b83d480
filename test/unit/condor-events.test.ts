/**
 * What HTCondor's job events do to a job: the pure `applyEvent` fed sequences of events — written
 * by the simulator's formatter and, with COGD_HTCONDOR_FIXTURES, HTCondor's genuine logs — and
 * `recordEvents` writing them into a real state DB with the log offset.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEvents, type JobEvent } from '../../src/executors/condor/eventlog.js';
import {
  applyEvent,
  JobEventCode,
  outcomeOf,
  REMOVED_AFTER_HOLDS,
  submitNoteBatch,
  type EventEffect,
  type JobView,
} from '../../src/executors/condor/events.js';
import { recordEvents } from '../../src/executors/condor/record.js';
import { formatEvent as fmt } from '../fixtures/condor-sim/lib.mjs';
import { plannedRun, testState, testWatch } from '../support/state.js';

const fixtures = process.env['COGD_HTCONDOR_FIXTURES'];
const haveFixtures = fixtures !== undefined && fixtures !== '';
const sample = (name: string): JobEvent[] => parseEvents(readFileSync(path.join(fixtures!, name), 'utf8')).events;
const events = (...texts: string[]): JobEvent[] => parseEvents(texts.join('')).events;

const HOLD = ['Transfer input files failure at execution point slot1@sim using protocol s3', 'Code 13 Subcode 0'];
const PERIODIC_REMOVE = "The job attribute PeriodicRemove expression 'NumHolds >= 5' evaluated to TRUE";

/** A job as the state DB would have it after each event: state, error, outcome. */
interface Seen {
  state: 'idle' | 'running' | 'held';
  error: string | null;
  result: string | null;
  notes: string[];
  states: string[];
}

/** Applies events to one job per `C.P`, carrying what an effect changes the way the state DB does. */
function replay(list: JobEvent[]): Map<string, Seen> {
  const jobs = new Map<string, Seen>();
  for (const event of list) {
    const id = `${event.cluster}.${event.proc}`;
    const job = jobs.get(id) ?? { state: 'idle', error: null, result: null, notes: [], states: [] };
    jobs.set(id, job);
    const effect = applyEvent({ jobId: 1, result: job.result, error: job.error }, event);
    if (effect === undefined) continue;
    if (effect.progress !== undefined) {
      job.state = effect.progress.state;
      job.error = effect.progress.error ?? job.error;
      job.states.push(job.state);
    }
    if (effect.result !== undefined) {
      job.result = effect.result;
      job.states.push(`result: ${effect.result}`);
    }
    job.notes.push(effect.note);
  }
  return jobs;
}

describe('applyEvent', () => {
  const job: JobView = { jobId: 7, result: null, error: null };

  it('names HTCondor event numbers', () => {
    expect([JobEventCode.Submit, JobEventCode.Execute, JobEventCode.Evicted, JobEventCode.Terminated]).toEqual([
      0, 1, 4, 5,
    ]);
    expect([JobEventCode.ShadowException, JobEventCode.Aborted, JobEventCode.Held, JobEventCode.Released]).toEqual([
      7, 9, 12, 13,
    ]);
  });

  it('holds with the reason and code, releases to idle, runs, and ends with the return value', () => {
    const [held, released, executing, evicted, ok, failed, killed] = events(
      fmt(12, 40, 2, 'Job was held.', HOLD),
      fmt(13, 40, 2, 'Job was released.', ["The job attribute PeriodicRelease expression 'x' evaluated to TRUE"]),
      fmt(1, 40, 2, 'Job executing on host: <127.0.0.1:9618>', ['SlotName: slot1_1@sim']),
      fmt(4, 40, 2, 'Job was evicted.', ['(0) CPU times']),
      fmt(5, 40, 2, 'Job terminated.', ['(1) Normal termination (return value 0)']),
      fmt(5, 40, 2, 'Job terminated.', ['(1) Normal termination (return value 1)']),
      fmt(5, 40, 2, 'Job terminated.', ['(0) Abnormal termination (signal 9)']),
    );
    const reason = 'held: Transfer input files failure at execution point slot1@sim using protocol s3 (hold code 13/0)';
    expect(applyEvent(job, held!)).toEqual<EventEffect>({
      jobId: 7,
      progress: { state: 'held', error: reason },
      note: `HTCondor 40.2: ${reason}`,
      started: false,
    });
    expect(applyEvent(job, released!)).toMatchObject({
      progress: { state: 'idle' },
      note: "HTCondor 40.2: released: The job attribute PeriodicRelease expression 'x' evaluated to TRUE",
    });
    expect(applyEvent(job, released!)?.progress?.error).toBeUndefined(); // the hold reason stays the job's error
    expect(applyEvent(job, executing!)).toMatchObject({
      progress: { state: 'running' },
      started: true,
      note: 'HTCondor 40.2: Job executing on host: <127.0.0.1:9618>',
    });
    expect(applyEvent(job, evicted!)).toMatchObject({ progress: { state: 'idle' }, started: false });
    expect(applyEvent(job, ok!)).toMatchObject({ result: 'ok', note: 'HTCondor 40.2: terminated, return value 0' });
    expect(applyEvent(job, failed!)).toMatchObject({
      result: 'exit 1',
      note: 'HTCondor 40.2: terminated, return value 1',
    });
    expect(applyEvent(job, killed!)?.result).toBe('the worker was killed by signal 9');
    // An attempt whose outcome is recorded takes no more events.
    expect(applyEvent({ ...job, result: 'ok' }, held!)).toBeUndefined();
  });

  it('fails a job periodic_remove took after holds permanently, and any other abort for a retry', () => {
    const seen = replay(
      events(
        fmt(0, 41, 0, 'Job submitted from host: <127.0.0.1:9618>', ['    cogd run 1 batch 1']),
        fmt(12, 41, 0, 'Job was held.', HOLD),
        fmt(13, 41, 0, 'Job was released.', ['PeriodicRelease']),
        fmt(12, 41, 0, 'Job was held.', ['Transfer output files failure', 'Code 12 Subcode 2']),
        fmt(9, 41, 0, 'Job was aborted.', [PERIODIC_REMOVE]),
        fmt(12, 41, 1, 'Job was held.', HOLD),
        fmt(9, 41, 1, 'Job was aborted.', ['via condor_rm (by user sim)']),
        fmt(9, 41, 2, 'Job was aborted.', [PERIODIC_REMOVE]), // never held: not "after holds"
      ),
    );
    const removed = seen.get('41.0')!;
    expect(removed.states).toEqual([
      'held',
      'idle',
      'held',
      `result: ${REMOVED_AFTER_HOLDS}; last held: Transfer output files failure (hold code 12/2)`,
    ]);
    expect(outcomeOf(removed.result!)).toEqual({
      ok: false,
      exitCode: undefined,
      permanent: true,
      reason: removed.result,
    });
    expect(seen.get('41.1')!.result).toBe('HTCondor aborted the job: via condor_rm (by user sim)');
    expect(seen.get('41.2')!.result).toBe(`HTCondor aborted the job: ${PERIODIC_REMOVE}`);
    expect(outcomeOf(seen.get('41.2')!.result!)).toMatchObject({ ok: false, permanent: false });
  });

  it('reads a recorded outcome back: ok, the worker exit code (2 is permanent), or a failure', () => {
    expect(outcomeOf('ok')).toEqual({ ok: true });
    expect(outcomeOf('exit 1')).toEqual({ ok: false, exitCode: 1, permanent: false });
    expect(outcomeOf('exit 2')).toEqual({ ok: false, exitCode: 2, permanent: true });
    expect(outcomeOf('the worker was killed by signal 9')).toMatchObject({
      ok: false,
      exitCode: undefined,
      permanent: false,
    });
  });

  it("finds a batch's number in its submit events, for this run only", () => {
    const [ours, other, execute] = events(
      fmt(0, 50, 0, 'Job submitted from host: <127.0.0.1:9618>', ['    cogd run 3 batch 12']),
      fmt(0, 51, 0, 'Job submitted from host: <127.0.0.1:9618>', ['    cogd run 4 batch 1']),
      fmt(1, 50, 0, 'Job executing on host: <127.0.0.1:9618>'),
    );
    expect(submitNoteBatch(ours!, 3)).toBe(12);
    expect(submitNoteBatch(other!, 3)).toBeUndefined();
    expect(submitNoteBatch(execute!, 3)).toBeUndefined();
  });
});

describe.skipIf(!haveFixtures)('applyEvent on genuine HTCondor logs', () => {
  it('holds, releases, runs and succeeds (held/released sample)', () => {
    const seen = replay(sample('userlog-held-released-third-party-fixture.log')).get('12345.0')!;
    expect(seen.states).toEqual(['held', 'idle', 'running', 'result: ok']);
    expect(seen.error).toBe('held: Spooling input data files (hold code 16/0)');
    expect(seen.notes).toContain('HTCondor 12345.0: released: Data files spooled');
  });

  it('fails a job killed by a signal, ignores a later abort of it, and succeeds the next', () => {
    const seen = replay(sample('userlog-abnormal-signal11-aborted.log'));
    expect(seen.get('180158.0')!.states).toEqual(['running', 'result: the worker was killed by signal 11']);
    expect(seen.get('180159.0')!.states).toEqual(['running', 'result: ok']);
  });

  it('evicts to idle, aborts with the reason, and fails a non-zero return value', () => {
    const seen = replay(sample('userlog-dag-nodes-evicted-aborted-2025.log'));
    expect(seen.get('9229.0')!.states).toEqual([
      'running',
      'idle',
      'result: HTCondor aborted the job: DAG Abort: DAG is exiting and writing rescue file. (by user testuser)',
    ]);
    expect(seen.get('9231.0')!.result).toBe('exit 1');
    expect([...seen.values()].filter((j) => j.result === 'ok').length).toBe(4);
  });

  it('sends a job back to idle on each shadow exception', () => {
    const seen = replay(sample('userlog-shadow-exception-007.log')).get('781.0')!;
    expect(seen.states).toEqual(['running', 'idle', 'running', 'idle']);
    expect(seen.notes[1]).toBe(
      'HTCondor 781.0: Shadow exception! Error from slot1_2@bat: FATAL:    executable file not found in $PATH',
    );
  });

  it('acts only on the events it names in a log of every event type', () => {
    const list = sample('userlog-legacy-all-event-types-stress.log');
    const acted = new Set(
      list.filter((e) => applyEvent({ jobId: 1, result: null, error: null }, e) !== undefined).map((e) => e.code),
    );
    expect([...acted].sort((a, b) => a - b)).toEqual(Object.values(JobEventCode).filter((v) => typeof v === 'number'));
    const emptyHold = list.find((e) => e.code === JobEventCode.Held && e.body.length === 0)!;
    expect(applyEvent({ jobId: 1, result: null, error: null }, emptyHold)?.progress).toEqual({
      state: 'held',
      error: 'held: no reason given',
    });
  });
});

describe('recordEvents', () => {
  it('writes effects and the offset in the state DB, and finds a lost cluster from the submit note', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db, { executor: 'condor' }), 'a.tif,1\nb.tif,1\nc.tif,1\n');
    const [a, b, c] = db.jobs(run.id).map((j) => j.id);
    const first = db.recordCondorBatch(run.id, [a!, b!]);
    db.setCondorCluster(run.id, first, 60);
    const lost = db.recordCondorBatch(run.id, [c!]); // condor_submit's answer never read

    const text = [
      fmt(1, 60, 0, 'Job executing on host: <127.0.0.1:9618>'),
      fmt(12, 60, 0, 'Job was held.', HOLD),
      fmt(9, 60, 0, 'Job was aborted.', [PERIODIC_REMOVE]),
      fmt(5, 60, 0, 'Job terminated.', ['(1) Normal termination (return value 0)']), // after the outcome: ignored
      fmt(1, 60, 1, 'Job executing on host: <127.0.0.1:9618>'),
      fmt(0, 61, 0, 'Job submitted from host: <127.0.0.1:9618>', [`    cogd run ${run.id} batch ${lost}`]),
      fmt(12, 61, 0, 'Job was held.', HOLD),
      fmt(5, 99, 0, 'Job terminated.', ['(1) Normal termination (return value 0)']), // not this run's
    ].join('');
    const { effects, settled } = recordEvents(db, run.id, parseEvents(text).events, Buffer.byteLength(text));

    const hold = 'held: Transfer input files failure at execution point slot1@sim using protocol s3 (hold code 13/0)';
    expect(settled).toEqual([[a, `${REMOVED_AFTER_HOLDS}; last ${hold}`]]);
    expect(effects.map((e) => [e.jobId, e.note.split(':')[0]])).toEqual([
      [a, 'HTCondor 60.0'],
      [a, 'HTCondor 60.0'],
      [a, 'HTCondor 60.0'],
      [b, 'HTCondor 60.1'],
      [c, 'HTCondor 61.0'],
      [c, 'HTCondor 61.0'],
    ]);
    expect(db.condorSubmission(a!)).toMatchObject({
      cluster: 60,
      proc: 0,
      state: 'held',
      result: `${REMOVED_AFTER_HOLDS}; last ${hold}`,
    });
    expect(db.condorSubmission(b!)).toMatchObject({ cluster: 60, proc: 1, state: 'running', result: null });
    expect(db.condorSubmission(c!)).toMatchObject({ cluster: 61, proc: 0, state: 'held', result: null });
    expect(db.jobError(c!)).toBe(hold);
    expect(db.unconfirmedCondorBatches(run.id)).toEqual([]);
    expect(db.condorOffset(run.id)).toBe(Buffer.byteLength(text));
    db.close();
  });
});
