/**
 * What `cogd status` shows, built from the state DB, and its text layout in the spirit of
 * `condor_q`'s batch view (`--jobs` for the `-nobatch` view). Pure functions of the report, so the
 * layout is tested with fixed data.
 */
import os from 'node:os';
import { watchBatchName } from '../manifest/names.js';
import { parseTarget } from '../manifest/targets.js';
import type { HolderRole } from '../daemon/home.js';
import type { JobRecord, JobsInState, RunRecord, StateDB } from '../state/db.js';
import type { JobState } from '../types.js';

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
  }>;
}

/** What holds the home (from `homeHolder`). */
export type HomeHolder = { pid: number | undefined; role: HolderRole };

const emptyCounts = (): JobCounts => ({ done: 0, failed: 0, removed: 0, running: 0, idle: 0, held: 0, total: 0 });

export interface StatusQuery {
  /** A run id, a job id (`12.5`), a watch id (`w3`) or a batch name; everything when undefined. */
  filter?: string;
  jobs?: boolean;
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
      };
    }),
    totals,
  };
  if (query.jobs === true) {
    const records: JobRecord[] = db
      .jobsOfRuns(runs.map((r) => r.id))
      .filter((j) => jobLine === undefined || j.line === jobLine);
    const created = new Map(runs.map((r) => [r.id, r.createdAt]));
    report.jobs = records.map((j) => ({
      id: `${j.runId}.${j.line}`,
      run: j.runId,
      line: j.line,
      key: j.imageKey,
      state: j.state,
      attempts: j.attempts,
      error: j.error,
      createdAt: created.get(j.runId) ?? '',
    }));
  }
  return report;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `M/D HH:MM` in local time, as condor_q prints SUBMITTED. */
export function submitted(iso: string): string {
  const d = new Date(iso);
  return `${d.getMonth() + 1}/${d.getDate()} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

const dash = (n: number): string => (n === 0 ? '_' : String(n));

/** Rows as aligned columns, condor_q style (the last column is not padded). */
export function table(rows: string[][], rightAligned: Set<number>): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, i) =>
        i === row.length - 1 ? cell : rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!),
      )
      .join(' ')
      .trimEnd(),
  );
}

function header(report: StatusReport, now: Date): string {
  const when = `${now.getMonth() + 1}/${now.getDate()}/${String(now.getFullYear()).slice(2)} ${pad2(now.getHours())}:${pad2(now.getMinutes())}:${pad2(now.getSeconds())}`;
  const daemon = report.daemon.running
    ? `daemon pid ${report.daemon.pid ?? '?'}`
    : report.poll !== undefined
      ? `cogd poll pid ${report.poll.pid ?? '?'} working, no daemon running`
      : 'no daemon running';
  return `-- cogd: ${report.home} : ${daemon} @ ${when}`;
}

function totalsLine(t: StatusReport['totals']): string {
  return `Total for query: ${t.total} jobs; ${t.done} completed, ${t.failed} failed, ${t.removed} removed, ${t.idle} idle, ${t.running} running, ${t.held} held, ${t.suspended} suspended`;
}

/** The batch view: one line per watch and per run, then notes on failures, then the totals. */
export function renderBatch(report: StatusReport, now = new Date()): string {
  const rows: string[][] = [['OWNER', 'BATCH_NAME', 'SUBMITTED', 'DONE', 'RUN', 'IDLE', 'HOLD', 'TOTAL', 'JOB_IDS']];
  for (const w of report.watches) {
    rows.push([report.owner, w.batchName, submitted(w.createdAt), '_', '_', '_', '_', '_', w.id]);
  }
  for (const r of report.runs) {
    const c = r.counts;
    const finished = c.done + c.failed + c.removed;
    const ids =
      r.firstLine === null
        ? `${r.id}`
        : r.firstLine === r.lastLine
          ? `${r.id}.${r.firstLine}`
          : `${r.id}.${r.firstLine} ... ${r.id}.${r.lastLine}`;
    const arrays = r.slurmArrays ?? [];
    rows.push([
      report.owner,
      r.batchName,
      submitted(r.createdAt),
      dash(finished),
      dash(c.running),
      dash(c.idle),
      dash(c.held),
      dash(c.total),
      arrays.length === 0 ? ids : `${ids} (Slurm ${arrays.join(',')})`,
    ]);
  }
  const lines = [header(report, now), ...table(rows, new Set([3, 4, 5, 6, 7]))];
  const notes: string[] = [];
  for (const w of report.watches) {
    if (w.conditionalWrites === false) {
      notes.push(
        `watch ${w.id}: s3://${w.inputBucket} does not enforce conditional writes; only one cogd daemon may watch this bucket`,
      );
    }
    if (w.warning !== null) notes.push(`watch ${w.id}: warning: ${w.warning}`);
  }
  for (const r of report.runs) {
    if (r.manifestError !== null) notes.push(`run ${r.id} ${r.manifest}: manifest rejected: ${r.manifestError}`);
    if (r.postError !== null)
      notes.push(`run ${r.id} ${r.manifest}: post failed: ${r.postError} (retried at the next poll)`);
    for (const { reason, jobs } of r.holdReasons) {
      // The reasons are stored as "held: <HTCondor's HoldReason>".
      notes.push(
        `run ${r.id} ${r.manifest}: ${jobs} ${jobs === 1 ? 'job' : 'jobs'} ${reason.startsWith('held: ') ? reason : `held: ${reason}`}`,
      );
    }
    for (const { reason, jobs } of r.slurmPending ?? []) {
      notes.push(`run ${r.id} ${r.manifest}: ${jobs} ${jobs === 1 ? 'job waits' : 'jobs wait'} in Slurm: ${reason}`);
    }
    if (r.counts.failed > 0 || r.counts.removed > 0) {
      notes.push(
        `run ${r.id} ${r.manifest}: ${r.counts.failed} failed, ${r.counts.removed} removed (why: cogd status --jobs ${r.id})`,
      );
    }
    if (r.state === 'done' && r.manifestError === null && r.counts.failed === 0 && r.counts.removed === 0) {
      notes.push(`run ${r.id} ${r.manifest}: done, all ${r.counts.done} rows processed`);
    }
  }
  return [...lines, '', ...(notes.length > 0 ? [...notes, ''] : []), totalsLine(report.totals)].join('\n');
}

const STATE_CODE: Record<JobState, string> = {
  idle: 'I',
  running: 'R',
  held: 'H',
  converted: 'C',
  failed: 'F',
  removed: 'X',
};

/** The `-nobatch` view: one line per job with its state and last error. */
export function renderJobs(report: StatusReport, now = new Date()): string {
  const rows: string[][] = [['ID', 'OWNER', 'SUBMITTED', 'ST', 'TRIES', 'KEY', 'LAST_ERROR']];
  for (const j of report.jobs ?? []) {
    rows.push([
      j.id,
      report.owner,
      submitted(j.createdAt),
      STATE_CODE[j.state],
      String(j.attempts),
      j.key ?? '-',
      j.error ?? '',
    ]);
  }
  return [header(report, now), ...table(rows, new Set([4])), '', totalsLine(report.totals)].join('\n');
}

/** One progress bar per run for `cogd status --watch`. */
export function renderBars(report: StatusReport, width = 30): string[] {
  return report.runs.map((r) => {
    const c = r.counts;
    const finished = c.done + c.failed + c.removed;
    const filled = c.total === 0 ? width : Math.round((finished / c.total) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const state = r.state === 'done' ? 'done' : r.postError !== null ? 'post failed' : r.state;
    return `run ${r.id} [${bar}] ${finished}/${c.total} done: ${c.done} converted, ${c.failed} failed, ${c.removed} removed; ${c.running} running, ${c.idle} idle, ${c.held} held (${state}) ${r.manifest}`;
  });
}
