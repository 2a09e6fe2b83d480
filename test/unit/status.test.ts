import { describe, expect, it } from 'vitest';
import {
  buildStatus,
  renderBars,
  renderBatch,
  renderHolds,
  renderJobs,
  renderMoreJobs,
  type StatusReport,
} from '../../src/cli/status-view.js';
import { plannedRun, testState, testWatch } from '../support/state.js';

const counts = (c: Partial<StatusReport['totals']>) => ({
  done: 0,
  failed: 0,
  removed: 0,
  running: 0,
  idle: 0,
  held: 0,
  total: 0,
  ...c,
});

// Local-time stamps, so SUBMITTED reads the same in every time zone.
const at = (month: number, day: number, hour: number, minute: number): string =>
  new Date(2026, month - 1, day, hour, minute).toISOString();

const fixed: StatusReport = {
  home: '/data/cogd',
  owner: 'nemo',
  daemon: { running: true, pid: 4242 },
  watches: [
    {
      id: 'w1',
      batchName: 'COG-Pipeline-Crondor-*raw.csv',
      pattern: '*raw.csv',
      inputBucket: 'raw',
      outputBucket: 'cogs',
      schedule: '*/15 * * * *',
      createdAt: at(11, 20, 9, 5),
      conditionalWrites: false,
      warning: null,
      hold: null,
      lastPolledAt: null,
      lastPollError: null,
    },
  ],
  runs: [
    {
      id: 3,
      batchName: 'COG-Pipeline-DAG-*raw.csv',
      manifest: 's3://raw/a/x-raw.csv',
      state: 'running',
      runDir: '/data/cogd/logs/run-1',
      createdAt: at(11, 21, 14, 3),
      finishedAt: null,
      manifestError: null,
      postError: null,
      counts: counts({ done: 4428, failed: 3, running: 2, idle: 999, held: 2, total: 5434 }),
      firstLine: 1,
      lastLine: 5434,
      holdReasons: [
        {
          reason:
            'held: Transfer input files failure at execution point slot1@node7 using protocol s3 (hold code 13/0)',
          jobs: 2,
        },
      ],
      hold: null,
      retryOf: null,
      hook: null,
      notify: null,
    },
    {
      id: 4,
      batchName: 'COG-Pipeline-DAG-*raw.csv',
      manifest: 's3://raw/b-raw.csv',
      state: 'done',
      runDir: '/data/cogd/logs/run-2',
      createdAt: at(11, 21, 14, 30),
      finishedAt: at(11, 21, 14, 31),
      manifestError: null,
      postError: null,
      counts: counts({ done: 1, total: 1 }),
      firstLine: 1,
      lastLine: 1,
      holdReasons: [],
      hold: null,
      retryOf: null,
      hook: {
        state: 'timeout',
        exitCode: null,
        signal: 'SIGKILL',
        result: 'timed out after 600 s; its process group was killed (SIGTERM, then SIGKILL)',
        starts: 2,
        startedAt: at(11, 21, 14, 31),
        endedAt: at(11, 21, 14, 41),
      },
      notify: { state: 'failed', result: 'gave up after 5 attempts: HTTP 503', endedAt: at(11, 21, 14, 32) },
    },
  ],
  totals: { ...counts({ done: 4429, failed: 3, running: 2, idle: 999, held: 2, total: 5435 }), suspended: 0 },
  jobs: [
    {
      id: '3.1',
      run: 3,
      line: 1,
      key: 'img/a.tif',
      state: 'converted',
      attempts: 1,
      error: null,
      createdAt: at(11, 21, 14, 3),
      hold: null,
    },
    {
      id: '3.2',
      run: 3,
      line: 2,
      key: 'img/missing.tif',
      state: 'failed',
      attempts: 1,
      error: 'the image s3://raw/img/missing.tif does not exist',
      createdAt: at(11, 21, 14, 3),
      hold: null,
    },
    {
      id: '3.4',
      run: 3,
      line: 4,
      key: 'img/far.tif',
      state: 'held',
      attempts: 1,
      error: 'held: Transfer input files failure at execution point slot1@node7 using protocol s3 (hold code 13/0)',
      createdAt: at(11, 21, 14, 3),
      hold: null,
    },
    {
      id: '3.3',
      run: 3,
      line: 3,
      key: null,
      state: 'failed',
      attempts: 0,
      error: 'the band count "x" (column 2) is not a positive whole number',
      createdAt: at(11, 21, 14, 3),
      hold: null,
    },
  ],
};

describe('status text', () => {
  const now = new Date(2026, 10, 21, 15, 0, 7);

  it('lays out the batch view like condor_q', () => {
    expect(renderBatch(fixed, now)).toMatchInlineSnapshot(`
      "-- cogd: /data/cogd : daemon pid 4242 @ 11/21/26 15:00:07
      OWNER BATCH_NAME                    SUBMITTED   DONE RUN IDLE HOLD TOTAL JOB_IDS
      nemo  COG-Pipeline-Crondor-*raw.csv 11/20 09:05    _   _    _    _     _ w1
      nemo  COG-Pipeline-DAG-*raw.csv     11/21 14:03 4431   2  999    2  5434 3.1 ... 3.5434
      nemo  COG-Pipeline-DAG-*raw.csv     11/21 14:30    1   _    _    _     1 4.1

      watch w1: s3://raw does not enforce conditional writes; only one cogd daemon may watch this bucket
      run 3 s3://raw/a/x-raw.csv: 2 jobs held: Transfer input files failure at execution point slot1@node7 using protocol s3 (hold code 13/0)
      run 3 s3://raw/a/x-raw.csv: 3 failed, 0 removed (why: cogd status --jobs 3)
      run 4 s3://raw/b-raw.csv: done, all 1 rows processed
      run 4 s3://raw/b-raw.csv: --on-run-end timeout: timed out after 600 s; its process group was killed (SIGTERM, then SIGKILL) (started 2 times: a restart ran it again); its output: hook.out, hook.err
      run 4 s3://raw/b-raw.csv: --notify-url failed: gave up after 5 attempts: HTTP 503

      Total for query: 5435 jobs; 4429 completed, 3 failed, 0 removed, 999 idle, 2 running, 2 held, 0 suspended"
    `);
  });

  it("shows the user's holds and retries in the batch view, and everything held in the -hold view", () => {
    const hold = { reason: 'bucket migration', since: at(11, 21, 14, 40), by: 'ana', now: false };
    const report: StatusReport = {
      ...fixed,
      watches: fixed.watches.map((w) => ({ ...w, conditionalWrites: true, hold })),
      runs: [{ ...fixed.runs[1]!, retryOf: 3 }],
      holds: [
        { id: 'w1', owner: 'ana', since: hold.since, reason: 'bucket migration' },
        {
          id: '3.4',
          owner: 'nemo',
          since: at(11, 21, 14, 50),
          reason: 'held: Transfer input files failure (hold code 13/0)',
        },
      ],
    };
    const batch = renderBatch(report, now).split('\n');
    expect(batch[2]).toBe('nemo  COG-Pipeline-Crondor-*raw.csv 11/20 09:05    _   _    _    H     _ w1');
    expect(batch).toContain('watch w1: held by ana since 11/21 14:40: bucket migration; not polling (cogd release w1)');
    expect(batch).toContain('run 4 s3://raw/b-raw.csv: retry of 3');
    expect(renderHolds(report, now)).toMatchInlineSnapshot(`
      "-- cogd: /data/cogd : daemon pid 4242 @ 11/21/26 15:00:07
      ID  OWNER HELD_SINCE  HOLD_REASON
      w1  ana   11/21 14:40 bucket migration
      3.4 nemo  11/21 14:50 held: Transfer input files failure (hold code 13/0)

      2 things held"
    `);
  });

  it('lays out the job view like condor_q -nobatch', () => {
    expect(renderJobs(fixed, now)).toMatchInlineSnapshot(`
      "-- cogd: /data/cogd : daemon pid 4242 @ 11/21/26 15:00:07
      ID  OWNER SUBMITTED   ST TRIES KEY             LAST_ERROR
      3.1 nemo  11/21 14:03 C      1 img/a.tif
      3.2 nemo  11/21 14:03 F      1 img/missing.tif the image s3://raw/img/missing.tif does not exist
      3.4 nemo  11/21 14:03 H      1 img/far.tif     held: Transfer input files failure at execution point slot1@node7 using protocol s3 (hold code 13/0)
      3.3 nemo  11/21 14:03 F      0 -               the band count "x" (column 2) is not a positive whole number

      Total for query: 5435 jobs; 4429 completed, 3 failed, 0 removed, 999 idle, 2 running, 2 held, 0 suspended"
    `);
  });

  it('draws one progress bar per run', () => {
    const [bar] = renderBars(fixed, 10);
    expect(bar).toBe(
      'run 3 [########..] 4431/5434 done: 4428 converted, 3 failed, 0 removed; 2 running, 999 idle, 2 held (running) s3://raw/a/x-raw.csv',
    );
  });
});

describe('status --json', () => {
  it('reports watches, runs, counts and jobs from the state DB', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db, { executor: 'condor' }), 'a.tif,3\nb.tif,1\nc.png,1\n');
    const [a, b] = db.jobs(run.id);
    db.setJobState(a!.id, 'running', { attempts: 1 });
    const holdReason =
      'held: Transfer input files failure at execution point slot1@node7 using protocol s3 (hold code 13/0)';
    db.setCondorProgress(b!.id, 'held', holdReason);

    const report = buildStatus(db, '/home/x', { pid: 77, role: 'daemon' }, { jobs: true });
    expect(report).toEqual({
      home: '/home/x',
      owner: expect.any(String),
      daemon: { running: true, pid: 77 },
      watches: [
        {
          id: 'w1',
          batchName: 'COG-Pipeline-Crondor-*raw.csv',
          pattern: '*raw.csv',
          inputBucket: 'raw',
          outputBucket: 'cogs',
          schedule: '*/15 * * * *',
          createdAt: expect.any(String),
          conditionalWrites: null,
          warning: null,
          hold: null,
          lastPolledAt: null,
          lastPollError: null,
        },
      ],
      runs: [
        {
          id: run.id,
          batchName: 'COG-Pipeline-DAG-*raw.csv',
          manifest: 's3://raw/x-raw.csv',
          state: 'running',
          runDir: '/tmp/run',
          createdAt: expect.any(String),
          finishedAt: null,
          manifestError: null,
          postError: null,
          counts: { done: 0, failed: 1, removed: 0, running: 1, idle: 0, held: 1, total: 3 },
          firstLine: 1,
          lastLine: 3,
          holdReasons: [{ reason: holdReason, jobs: 1 }],
          hold: null,
          retryOf: null,
          hook: null,
          notify: null,
        },
      ],
      totals: { done: 0, failed: 1, removed: 0, running: 1, idle: 0, held: 1, total: 3, suspended: 0 },
      jobs: [
        {
          id: `${run.id}.1`,
          run: run.id,
          line: 1,
          key: 'a.tif',
          state: 'running',
          attempts: 1,
          error: null,
          createdAt: expect.any(String),
          hold: null,
        },
        {
          id: `${run.id}.2`,
          run: run.id,
          line: 2,
          key: 'b.tif',
          state: 'held',
          attempts: 0,
          error: holdReason,
          createdAt: expect.any(String),
          hold: null,
        },
        {
          id: `${run.id}.3`,
          run: run.id,
          line: 3,
          key: null,
          state: 'failed',
          attempts: 0,
          error: expect.stringMatching(/does not name a GeoTIFF/),
          createdAt: expect.any(String),
          hold: null,
        },
      ],
    });
    // Filters: a job id narrows to that job; an unknown run gives nothing.
    expect(buildStatus(db, '/home/x', undefined, { filter: `${run.id}.2` }).runs[0]!.counts).toEqual({
      done: 0,
      failed: 0,
      removed: 0,
      running: 0,
      idle: 0,
      held: 1,
      total: 1,
    });
    expect(buildStatus(db, '/home/x', undefined, { filter: '99' }).runs).toEqual([]);
    expect(buildStatus(db, '/home/x', undefined, { filter: 'w1' }).watches.length).toBe(1);
    db.close();
  });
});

describe('status --jobs pages', () => {
  it('lists a page of the jobs, in one state or all, and says how many more and how to see them', async () => {
    const db = await testState();
    const watch = testWatch(db);
    const rows = (n: number) => Array.from({ length: n }, (_, i) => `k/img-${i + 1}.tif,1`).join('\n') + '\n';
    const first = plannedRun(db, watch, rows(250), 1);
    const second = plannedRun(db, watch, rows(30), 2);
    for (const job of db.jobs(first.id)) if (job.line % 3 === 0) db.setJobState(job.id, 'failed', { error: 'gone' });
    const holder = { pid: 1, role: 'daemon' } as const;

    const page2 = buildStatus(db, '/h', holder, { jobs: true, limit: 100, page: 2 });
    expect(page2.jobs?.map((j) => j.id)).toEqual(Array.from({ length: 100 }, (_, i) => `${first.id}.${i + 101}`));
    expect(page2.jobsShown).toEqual({ total: 280, offset: 100, limit: 100, more: 80, state: null });
    expect(renderMoreJobs(page2, undefined)).toBe(
      '\n101-200 of 280 jobs shown; 80 more: cogd status --jobs --page 3 (--limit 0 lists all)',
    );
    // The last page runs on into the second run.
    const page3 = buildStatus(db, '/h', holder, { jobs: true, limit: 100, page: 3 });
    expect(page3.jobs?.map((j) => j.id).slice(48, 52)).toEqual([
      `${first.id}.249`,
      `${first.id}.250`,
      `${second.id}.1`,
      `${second.id}.2`,
    ]);
    expect(page3.jobs).toHaveLength(80);
    expect(page3.jobsShown?.more).toBe(0);
    expect(renderMoreJobs(page3, undefined)).toBe('\n201-280 of 280 jobs shown');

    const failed = buildStatus(db, '/h', holder, { filter: String(first.id), jobs: true, limit: 50, state: 'failed' });
    expect(failed.jobs).toHaveLength(50);
    expect(failed.jobs?.every((j) => j.state === 'failed' && j.line % 3 === 0)).toBe(true);
    expect(failed.jobsShown).toEqual({ total: 83, offset: 0, limit: 50, more: 33, state: 'failed' });
    expect(renderMoreJobs(failed, String(first.id))).toBe(
      `\n1-50 of 83 failed jobs shown; 33 more: cogd status --jobs ${first.id} --state failed --limit 50 --page 2 (--limit 0 lists all)`,
    );
    // A page that fits says nothing more; no limit lists everything.
    expect(
      renderMoreJobs(buildStatus(db, '/h', holder, { filter: String(second.id), jobs: true, limit: 100 }), undefined),
    ).toBe('');
    expect(buildStatus(db, '/h', holder, { jobs: true }).jobs).toHaveLength(280);
    db.close();
  });
});
