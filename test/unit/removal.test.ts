/** Removal in one place: what `cogd rm` records, and how requests nobody executes are settled. */
import { describe, expect, it } from 'vitest';
import { requestRemoval, settleRemovals } from '../../src/daemon/removal.js';
import { parseTarget } from '../../src/manifest/targets.js';
import type { StateDB } from '../../src/state/db.js';
import { plannedRun, testState, testWatch } from '../support/state.js';

async function home(): Promise<{ db: StateDB; runs: number[] }> {
  const db = await testState();
  const watch = testWatch(db, { schedule: '* * * * *', maxRunning: 5, retries: 0, retryDelayMs: 0 });
  const runs = [1, 2].map((n) => plannedRun(db, watch, 'a.tif,1\nb.tif,1\nc.png,1\n', n).id);
  return { db, runs };
}

describe('requestRemoval', () => {
  it('marks jobs, runs, watches and batches as condor_rm says it, and names what matched nothing', async () => {
    const { db, runs } = await home();
    const request = requestRemoval(db, ['1.2', 'w1', '99', '1.3'].map(parseTarget));
    expect(request.lines).toEqual([
      'Job 1.2 has been marked for removal',
      'Watch w1 (COG-Pipeline-Crondor-*raw.csv) has been removed; its runs go on',
    ]);
    expect(request.unknown).toEqual(['99', '1.3']); // 1.3 was rejected at planning: nothing unfinished
    expect(request).toMatchObject({ watchesChanged: true, jobsChanged: true });
    expect(db.liveWatches()).toEqual([]);
    const batch = requestRemoval(db, [parseTarget('COG-Pipeline-DAG-*raw.csv')]);
    expect(batch.lines).toEqual(runs.map((id) => `All jobs in run ${id} have been marked for removal`));
    expect(db.jobsToRemove().length).toBe(4); // the idle jobs of both runs
  });

  it('with --all: every unfinished run and every watch, or says there is nothing', async () => {
    const { db } = await home();
    expect(requestRemoval(db, [], true).lines).toHaveLength(3);
    expect(requestRemoval(db, [], true).lines).toEqual([
      'All jobs in run 1 have been marked for removal',
      'All jobs in run 2 have been marked for removal',
    ]); // runs stay unfinished until their post step; watches are gone
  });
});

describe('settleRemovals', () => {
  it('marks the jobs removed and cancels only those queued elsewhere, reading them before they are forgotten', async () => {
    const { db, runs } = await home();
    requestRemoval(db, [parseTarget(String(runs[0]))]);
    const [a, b] = db.jobs(runs[0]!);
    db.recordCondorBatch(runs[0]!, [a!.id]);
    db.setCondorCluster(runs[0]!, 1, 41);
    const seen: string[] = [];
    const ok = await settleRemovals(db, db.jobsToRemove(), async (queued) => {
      seen.push(...queued.map((id) => `${id}:${db.condorSubmission(id)?.cluster ?? 'gone'}`));
      return false;
    });
    expect(ok).toBe(false);
    expect(seen).toEqual([`${a!.id}:41`]);
    expect(db.jobs(runs[0]!).map((j) => [j.id, j.state, j.error])).toEqual([
      [a!.id, 'removed', 'removed by user'],
      [b!.id, 'removed', 'removed by user'],
      [db.jobs(runs[0]!)[2]!.id, 'failed', db.jobs(runs[0]!)[2]!.error],
    ]);
    expect(db.jobsToRemove()).toEqual([]);
  });
});
