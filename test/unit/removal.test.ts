/** Removal in one place: what `cogd rm` records, and how requests nobody executes are settled. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requestRemoval, settleRemovals } from '../../src/daemon/removal.js';
import { planRows } from '../../src/dag/plan.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { parseTarget } from '../../src/manifest/targets.js';
import { StateDB } from '../../src/state/db.js';
import { tempDir } from '../support/helpers.js';
import { DEFAULT_CONVERSION } from '../../src/convert/profiles.js';

async function home(): Promise<{ db: StateDB; runs: number[] }> {
  const db = new StateDB(path.join(await tempDir(), 'cogd.db'));
  const watch = db.saveWatch(
    { pattern: '*raw.csv', inputBucket: 'raw', outputBucket: 'cogs', endpoint: undefined },
    {
      accessKeyFile: undefined,
      secretKeyFile: undefined,
      region: 'us-east-1',
      schedule: '* * * * *',
      maxRunning: 5,
      retries: 0,
      retryDelayMs: 0,
      executor: 'local',
      ...DEFAULT_CONVERSION,
    },
  );
  const runs = [1, 2].map((n) => {
    const run = db.insertRun({
      watchId: watch.id,
      inputBucket: 'raw',
      outputBucket: 'cogs',
      manifestKey: `m${n}-raw.csv`,
      manifestEtag: `"${n}"`,
      manifestMtime: 't',
      base: `m${n}-`,
      ts: '20261130-000000',
      processingKey: `m${n}-processing.csv`,
      runDir: `/tmp/run-${n}`,
      batchName: 'COG-Pipeline-DAG-*raw.csv',
    });
    db.insertJobs(run.id, planRows(parseManifest('a.tif,1\nb.tif,1\nc.png,1\n')));
    return run.id;
  });
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
