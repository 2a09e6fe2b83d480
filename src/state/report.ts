/**
 * What `cogd status` reports, built from the state DB: watches, runs with their job counts, jobs,
 * holds, pages of a run's jobs and a run's details. One code path for `cogd status --json`, its text
 * views (src/cli/status-view.ts) and the status page's JSON API (src/web).
 */
import os from 'node:os';
import { resultKey, watchBatchName } from '../manifest/names.js';
import { parseTarget } from '../manifest/targets.js';
import type { JobState } from '../types.js';
import type { Hold, JobRecord, JobRow, JobsInState, RunRecord, StateDB } from './db.js';

export interface JobCounts {
  /** converted */
  done: number;
  failed: number;
  removed: number;
  running: number;
  idle: number;
  /** held (HTCondor executor); always 0 on the local executor */
  held: number;
  total: number;
}

export interface StatusReport {
  home: string;
  owner: string;
  daemon: { running: boolean; pid: number | null };
  /** A `cogd poll` working on the home in the foreground (it holds the home instead of a daemon). */
  poll?: { pid: number | null };
  watches: Array<{
    id: string;
    batchName: string;
    pattern: string;
    inputBucket: string;
    outputBucket: string;
    schedule: string;
    createdAt: string;
    /** Whether claims are safe across daemons on this endpoint; null until probed. */
    conditionalWrites: boolean | null;
    /** Something the user should know (a key file readable by others); null when all is well. */
    warning: string | null;
    /** The user's hold (`cogd hold w3`): it does not poll; null when not held. */
    hold: Hold | null;
    /** When its input bucket was last listed; null: not yet. */
    lastPolledAt: string | null;
    /** Why that last poll failed; null when it worked. */
    lastPollError: string | null;
  }>;
  runs: Array<{
    id: number;
    batchName: string;
    manifest: string;
    state: RunRecord['state'];
    runDir: string;
    createdAt: string;
    finishedAt: string | null;
    manifestError: string | null;
    postError: string | null;
    counts: JobCounts;
    firstLine: number | null;
    lastLine: number | null;
    /** Why its held jobs are held (HTCondor's hold reasons), most common first. */
    holdReasons: Array<{ reason: string; jobs: number }>;
    /** The Slurm job arrays its jobs are in now (the Slurm executor). */
    slurmArrays?: number[];
    /** What Slurm says its waiting jobs wait for (Priority, Resources, JobHeldUser…), most common first. */
    slurmPending?: Array<{ reason: string; jobs: number }>;
    /** The user's hold on the run (`cogd hold 12`): it starts no job; null when not held. */
    hold: Hold | null;
    /** The run this one re-runs rows of (`cogd retry`), or null. */
    retryOf: number | null;
    /** Its --on-run-end command, once it ended; null when none was due. */
    hook: {
      state: 'pending' | 'ok' | 'failed' | 'timeout';
      exitCode: number | null;
      signal: string | null;
      result: string | null;
      /** Started more than once: a restart ran it again. */
      starts: number;
      startedAt: string | null;
      endedAt: string | null;
    } | null;
    /** Its --notify-url POST, once it ended; null when none was due. Never the URL. */
    notify: { state: 'pending' | 'sent' | 'failed'; result: string | null; endedAt: string | null } | null;
  }>;
  totals: JobCounts & { suspended: number };
  jobs?: Array<{
    id: string;
    run: number;
    line: number;
    key: string | null;
    state: JobState;
    attempts: number;
    error: string | null;
    createdAt: string;
    /** The user's hold on the job or its run, while it waits. */
    hold: Hold | null;
  }>;
  /**
   * With a limit on `jobs`: which of the query's jobs it lists (`offset` of `total`, `limit` at most)
   * and how many come after them.
   */
  jobsShown?: { total: number; offset: number; limit: number; more: number; state: JobState | null };
  /** `cogd status -hold`: everything held, by the user or by the executor (HTCondor). */
  holds?: Array<{ id: string; owner: string; since: string; reason: string }>;
}

/** What holds the home (from `homeHolder`): a daemon, or a `cogd poll` in the foreground. */
export type HomeHolder = { pid: number | undefined; role: 'daemon' | 'poll' };

const emptyCounts = (): JobCounts => ({ done: 0, failed: 0, removed: 0, running: 0, idle: 0, held: 0, total: 0 });

export interface StatusQuery {
  /** A run id, a job id (`12.5`), a watch id (`w3`) or a batch name; everything when undefined. */
  filter?: string;
  jobs?: boolean;
  /** With `jobs`: jobs listed at most (a page), 0 or undefined for all. */
  limit?: number;
  /** With `limit`: which page (1-based). @defaultValue 1 */
  page?: number;
  /** With `jobs`: only jobs in this state (as the state DB records it). */
  state?: JobState;
  /** The held view (`-hold`). */
  holds?: boolean;
  /** Finished runs shown if they finished after this. @defaultValue 24 hours ago */
  since?: Date;
}

export function buildStatus(
  db: StateDB,
  home: string,
  holder: HomeHolder | undefined,
  query: StatusQuery = {},
): StatusReport {
  const since = (query.since ?? new Date(Date.now() - 24 * 3600 * 1000)).toISOString();
  const filter = query.filter;
  let watches = db.liveWatches();
  let runs = db.recentRuns(since);
  let jobLine: number | undefined;
  if (filter !== undefined) {
    const target = parseTarget(filter);
    if (target.kind === 'run' || target.kind === 'job') {
      const run = db.run(target.run);
      runs = run === undefined ? [] : [run];
      watches = [];
      if (target.kind === 'job') jobLine = target.line;
    } else if (target.kind === 'watch') {
      watches = watches.filter((w) => w.id === target.watch);
      runs = runs.filter((r) => r.watchId === target.watch);
    } else {
      watches = watches.filter((w) => watchBatchName(w.pattern) === target.name);
      runs = runs.filter((r) => r.batchName === target.name);
    }
  }

  const heldWatches = db.heldWatches();
  const heldRuns = db.heldRuns();
  const heldJobs = new Map(db.heldJobs().map((j) => [j.id, j.hold]));
  const totals = { ...emptyCounts(), suspended: 0 };
  const report: StatusReport = {
    home,
    owner: os.userInfo().username,
    daemon: { running: holder?.role === 'daemon', pid: holder?.role === 'daemon' ? (holder.pid ?? null) : null },
    ...(holder?.role === 'poll' ? { poll: { pid: holder.pid ?? null } } : {}),
    watches: watches.map((w) => ({
      id: `w${w.id}`,
      batchName: watchBatchName(w.pattern),
      pattern: w.pattern,
      inputBucket: w.inputBucket,
      outputBucket: w.outputBucket,
      schedule: w.schedule,
      createdAt: w.createdAt,
      conditionalWrites: w.conditionalWrites,
      warning: w.warning,
      hold: heldWatches.get(w.id) ?? null,
      ...lastPollOf(db, w.id),
    })),
    runs: runs.map((run) => {
      const counts = emptyCounts();
      let first: number | null = null;
      let last: number | null = null;
      // Per state: how many jobs, and their first and last manifest line (a job filter: that one job).
      const job = jobLine === undefined ? undefined : db.jobByLine(run.id, jobLine);
      const rows: JobsInState[] =
        jobLine === undefined
          ? db.jobsByState(run.id)
          : job === undefined
            ? []
            : [{ state: job.state, jobs: 1, firstLine: job.line, lastLine: job.line }];
      for (const row of rows) {
        if (row.state === 'converted') counts.done += row.jobs;
        else counts[row.state] += row.jobs;
        counts.total += row.jobs;
        first = first === null ? row.firstLine : Math.min(first, row.firstLine);
        last = last === null ? row.lastLine : Math.max(last, row.lastLine);
      }
      const hold = heldRuns.get(run.id) ?? null;
      if (hold !== null) {
        // A held run's waiting jobs are held: nothing starts them until it is released.
        counts.held += counts.idle;
        counts.idle = 0;
      }
      for (const key of ['done', 'failed', 'removed', 'running', 'idle', 'held', 'total'] as const)
        totals[key] += counts[key];
      return {
        id: run.id,
        batchName: run.batchName,
        manifest: `s3://${run.inputBucket}/${run.manifestKey}`,
        state: run.state,
        runDir: run.runDir,
        createdAt: run.createdAt,
        finishedAt: run.finishedAt,
        manifestError: run.error,
        postError: run.postError,
        counts,
        firstLine: first,
        lastLine: last,
        holdReasons: counts.held === 0 ? [] : db.holdReasons(run.id),
        ...(db.hasSlurmSubmissions(run.id)
          ? { slurmArrays: db.slurmArraysOfRun(run.id), slurmPending: db.slurmPendingNotes(run.id) }
          : {}),
        hold,
        retryOf: run.retryOf,
        ...runEndOf(db, run.id),
      };
    }),
    totals,
  };
  if (query.jobs === true) {
    const created = new Map(runs.map((r) => [r.id, r.createdAt]));
    const view = (j: Pick<JobRecord, 'id' | 'runId' | 'line' | 'imageKey' | 'state' | 'attempts' | 'error'>): JobView =>
      jobView(
        j,
        created.get(j.runId) ?? '',
        j.state === 'idle' ? (heldJobs.get(j.id) ?? heldRuns.get(j.runId) ?? null) : null,
      );
    const state = query.state;
    if (jobLine !== undefined) {
      const row = runs[0] === undefined ? undefined : db.jobRow(runs[0].id, jobLine);
      report.jobs = row === undefined || (state !== undefined && row.state !== state) ? [] : [view(row)];
    } else {
      // A page of the runs' jobs in run then manifest order, read with LIMIT/OFFSET off an index:
      // never every job of a 100,000-row run.
      const limit = query.limit !== undefined && query.limit > 0 ? query.limit : Number.MAX_SAFE_INTEGER;
      const offset = query.limit !== undefined && query.limit > 0 ? (Math.max(1, query.page ?? 1) - 1) * limit : 0;
      let skip = offset;
      let total = 0;
      const jobs: JobView[] = [];
      for (const run of runs) {
        const count = db.countJobs(run.id, state);
        total += count;
        if (skip >= count) {
          skip -= count;
          continue;
        }
        if (jobs.length < limit) {
          for (const row of db.jobsPage(run.id, state, Math.min(limit - jobs.length, count), skip))
            jobs.push(view(row));
        }
        skip = 0;
      }
      report.jobs = jobs;
      if (query.limit !== undefined && query.limit > 0) {
        report.jobsShown = {
          total,
          offset,
          limit,
          more: Math.max(0, total - offset - jobs.length),
          state: state ?? null,
        };
      }
    }
  }
  if (query.holds === true) report.holds = heldView(db, report.owner, filter === undefined ? undefined : report);
  return report;
}

/**
 * Everything held, as condor_q -hold lists it: the user's holds (watches, runs, jobs), then the
 * jobs the executor holds (HTCondor). With a filter, only what the report's watches and runs hold.
 */
function heldView(db: StateDB, owner: string, within: StatusReport | undefined): NonNullable<StatusReport['holds']> {
  const runs = within === undefined ? undefined : new Set(within.runs.map((r) => r.id));
  const watches = within === undefined ? undefined : new Set(within.watches.map((w) => w.id));
  const inRun = (runId: number): boolean => runs === undefined || runs.has(runId);
  const entries: NonNullable<StatusReport['holds']> = [];
  for (const held of db.held()) {
    const runId = held.kind === 'watch' ? undefined : Number.parseInt(held.id, 10);
    if (held.kind === 'watch' ? watches !== undefined && !watches.has(held.id) : !inRun(runId!)) continue;
    entries.push({ id: held.id, owner: held.hold.by, since: held.hold.since, reason: held.hold.reason });
  }
  for (const job of db.executorHeld()) {
    if (!inRun(job.runId)) continue;
    entries.push({ id: `${job.runId}.${job.line}`, owner, since: job.since, reason: job.reason });
  }
  return entries;
}

/** What a run's end did, as the report says it (never the notification's URL). */
function runEndOf(db: StateDB, runId: number): Pick<StatusReport['runs'][number], 'hook' | 'notify'> {
  const end = db.runEnd(runId);
  return {
    hook:
      end?.hookState == null
        ? null
        : {
            state: end.hookState,
            exitCode: end.hookExitCode,
            signal: end.hookSignal,
            result: end.hookResult,
            starts: end.hookStarts,
            startedAt: end.hookStartedAt,
            endedAt: end.hookEndedAt,
          },
    notify:
      end?.notifyState == null
        ? null
        : { state: end.notifyState, result: end.notifyResult, endedAt: end.notifyEndedAt },
  };
}

/** A job as `cogd status --jobs --json` and the status page's job list show it. */
export type JobView = NonNullable<StatusReport['jobs']>[number];

/** `hold`: the user's hold on the waiting job or its run; it then shows as held, with the reason. */
export function jobView(
  j: Pick<JobRecord, 'runId' | 'line' | 'imageKey' | 'state' | 'attempts' | 'error'>,
  createdAt: string,
  hold: Hold | null = null,
): JobView {
  return {
    id: `${j.runId}.${j.line}`,
    run: j.runId,
    line: j.line,
    key: j.imageKey,
    state: hold === null ? j.state : 'held',
    attempts: j.attempts,
    error: hold === null ? j.error : `held by ${hold.by}: ${hold.reason}`,
    createdAt,
    hold,
  };
}

/** Job states a list may be filtered to. */
export const JOB_STATES: readonly JobState[] = ['idle', 'running', 'held', 'converted', 'failed', 'removed'];

/** Jobs per page of the status page and its API. */
export const JOBS_PAGE_SIZE = 100;

/** A job of a page: what `status --jobs` shows of it, and its timings. */
export interface JobOfPage extends JobView {
  /** When its last attempt started running; null if it never ran. */
  startedAt: string | null;
  /** When it reached its final state. */
  finishedAt: string | null;
  /** From its last start to its end (or to now while it runs); null if it never ran. */
  durationMs: number | null;
}

export interface JobsPage {
  run: number;
  /** The state listed; null for all. */
  state: JobState | null;
  /** 1-based. */
  page: number;
  pageSize: number;
  /** Jobs in the state (all jobs when state is null). */
  total: number;
  pages: number;
  jobs: JobOfPage[];
}

/** A job with its timings, as of `now`. */
export function jobOfPage(j: JobRow, createdAt: string, now = Date.now()): JobOfPage {
  const end = j.finishedAt === null ? (j.state === 'running' ? now : null) : Date.parse(j.finishedAt);
  return {
    ...jobView(j, createdAt),
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    durationMs: j.startedAt === null || end === null ? null : Math.max(0, end - Date.parse(j.startedAt)),
  };
}

/**
 * One page of a run's jobs in manifest order, in one state or all: read with LIMIT/OFFSET off an
 * index, so a page of a 100,000-row run costs what a page of a small one does. Undefined: no such run.
 */
export function jobsPage(
  db: StateDB,
  runId: number,
  query: { state?: JobState | undefined; page?: number | undefined } = {},
): JobsPage | undefined {
  const run = db.run(runId);
  if (run === undefined) return undefined;
  const total = db.countJobs(runId, query.state);
  const pages = Math.max(1, Math.ceil(total / JOBS_PAGE_SIZE));
  const page = Math.max(1, Math.floor(query.page ?? 1));
  const rows = db.jobsPage(runId, query.state, JOBS_PAGE_SIZE, (page - 1) * JOBS_PAGE_SIZE);
  const now = Date.now();
  return {
    run: runId,
    state: query.state ?? null,
    page,
    pageSize: JOBS_PAGE_SIZE,
    total,
    pages,
    jobs: rows.map((row) => jobOfPage(row, run.createdAt, now)),
  };
}

/** What the run page shows beyond its line of `cogd status`: the manifest's keys, timings, results. */
export interface RunDetail {
  id: number;
  watch: string;
  batchName: string;
  inputBucket: string;
  outputBucket: string;
  manifestKey: string;
  processingKey: string;
  state: RunRecord['state'];
  claimStep: RunRecord['claimStep'];
  createdAt: string;
  finishedAt: string | null;
  /** From the claim to the end of the post step (or to now). */
  durationMs: number;
  rowsTotal: number | null;
  processed: number | null;
  failed: number | null;
  manifestError: string | null;
  postError: string | null;
  /** The result CSVs written next to the manifest (s3:// URLs), once the run is done. */
  results: { processed: string | null; failed: string | null; errors: string | null };
}

export function runDetail(run: RunRecord, now = Date.now()): RunDetail {
  const done = run.state === 'done';
  const url = (kind: 'processed' | 'failed' | 'errors'): string =>
    `s3://${run.inputBucket}/${resultKey(run.base, kind, run.ts)}`;
  const anyFailed = (run.failed ?? 0) > 0 || run.error !== null;
  return {
    id: run.id,
    watch: `w${run.watchId}`,
    batchName: run.batchName,
    inputBucket: run.inputBucket,
    outputBucket: run.outputBucket,
    manifestKey: run.manifestKey,
    processingKey: run.processingKey,
    state: run.state,
    claimStep: run.claimStep,
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
    durationMs: Math.max(0, (run.finishedAt === null ? now : Date.parse(run.finishedAt)) - Date.parse(run.createdAt)),
    rowsTotal: run.rowsTotal,
    processed: run.processed,
    failed: run.failed,
    manifestError: run.error,
    postError: run.postError,
    results: {
      processed: done && (run.processed ?? 0) > 0 ? url('processed') : null,
      failed: done && anyFailed ? url('failed') : null,
      errors: done && anyFailed ? url('errors') : null,
    },
  };
}

function lastPollOf(db: StateDB, watchId: number): { lastPolledAt: string | null; lastPollError: string | null } {
  const { at, error } = db.lastPoll(watchId);
  return { lastPolledAt: at, lastPollError: error };
}
