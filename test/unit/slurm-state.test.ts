/** The Slurm bookkeeping in the state DB: batches, array ids, requeues, and what ends an attempt. */
import { describe, expect, it } from 'vitest';
import { slurmTaskIds } from '../../src/executors/slurm/executor.js';
import { plannedRun, testState, testWatch } from '../support/state.js';

describe('Slurm submissions in the state DB', () => {
  it('records a batch before sbatch, its array after, and forgets what never reached Slurm', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db, { executor: 'slurm' }), 'a.tif,1\nb.tif,1\nc.tif,1\n');
    const [a, b, c] = db.jobs(run.id);
    const batch = db.recordSlurmBatch(run.id, [a!.id, b!.id]);
    expect(batch).toBe(1);
    expect(db.slurmSubmission(a!.id)).toMatchObject({ batch: 1, task: 0, arrayId: null, result: null });
    expect(db.slurmSubmission(b!.id)).toMatchObject({ batch: 1, task: 1, arrayId: null });
    expect(db.unconfirmedSlurmBatches(run.id)).toEqual([1]);
    expect(db.hasSlurmSubmissions(run.id)).toBe(true);
    expect(db.anySlurmSubmissions([a!.id])).toBe(false); // not in Slurm until sbatch answered

    // A second batch that never reached Slurm is forgotten; the first is confirmed.
    const second = db.recordSlurmBatch(run.id, [c!.id]);
    expect(second).toBe(2);
    db.clearSlurmBatch(run.id, second);
    expect(db.slurmSubmission(c!.id)).toBeUndefined();
    expect(db.setSlurmArray(run.id, batch, 40)).toBe(2);
    expect(db.unconfirmedSlurmBatches(run.id)).toEqual([]);
    expect(db.anySlurmSubmissions([a!.id])).toBe(true);
    expect(db.liveSlurmSubmissions(run.id).map((s) => [s.jobId, s.arrayId, s.task])).toEqual([
      [a!.id, 40, 0],
      [b!.id, 40, 1],
    ]);
    // scancel ids: the whole array where every live task is named.
    expect(slurmTaskIds(db, [a!.id, b!.id])).toEqual({ ids: ['40'], tasks: ['40_0', '40_1'] });
    expect(slurmTaskIds(db, [b!.id, c!.id])).toEqual({ ids: ['40_1'], tasks: ['40_1'] });
    db.close();
  });

  it('a restart requeues running local jobs but leaves jobs with a Slurm task running', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db, { executor: 'slurm' }), 'a.tif,1\nb.tif,1\n');
    const [a, b] = db.jobs(run.id);
    db.setSlurmArray(run.id, db.recordSlurmBatch(run.id, [a!.id]), 41);
    db.setJobState(a!.id, 'running');
    db.setJobState(b!.id, 'running');
    expect(db.requeueRunning(run.id)).toBe(1);
    expect(db.jobs(run.id).map((j) => j.state)).toEqual(['running', 'idle']);
    db.close();
  });

  it('progress, a requeue within the attempt, and the end of the attempt', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db, { executor: 'slurm' }), 'a.tif,1\n');
    const [a] = db.jobs(run.id);
    db.setSlurmArray(run.id, db.recordSlurmBatch(run.id, [a!.id]), 42);
    db.setSlurmProgress(a!.id, 'idle', 'Priority');
    expect(db.slurmPendingNotes(run.id)).toEqual([{ reason: 'Priority', jobs: 1 }]);
    db.setSlurmProgress(a!.id, 'held', 'JobHeldUser', 'held: JobHeldUser');
    expect(db.jobs(run.id)[0]).toMatchObject({ state: 'held', error: 'held: JobHeldUser' });
    expect(db.slurmPendingNotes(run.id)).toEqual([]); // held jobs show as held, not as waiting

    // OUT_OF_MEMORY: submitted again with more memory, same attempt.
    db.requeueSlurmJob(a!.id, '4096M');
    expect(db.slurmSubmission(a!.id)).toBeUndefined(); // no batch until the next sbatch
    db.setSlurmArray(run.id, db.recordSlurmBatch(run.id, [a!.id]), 43);
    expect(db.slurmSubmission(a!.id)).toMatchObject({ batch: 2, arrayId: 43, requeues: 1, mem: '4096M' });
    db.setSlurmResult(a!.id, 'ok');
    expect(db.liveSlurmSubmissions(run.id)).toEqual([]);

    // The scheduler ends the attempt: every Slurm column of it is forgotten.
    db.setJobState(a!.id, 'converted', { endAttempt: true });
    expect(db.slurmSubmission(a!.id)).toBeUndefined();
    expect(db.anySlurmSubmissions([a!.id])).toBe(false);
    expect(db.slurmArraysOfRun(run.id)).toEqual([]);
    db.close();
  });
});
