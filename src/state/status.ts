/** Status queries: what `cogd status` reads, and nothing writes. */
import type Database from 'better-sqlite3';
import type { JobState } from '../types.js';
import { RUN_COLUMNS, type RunRecord } from './runs.js';
import { prepareAll } from './statements.js';

/** The jobs of a run in one state: how many, and their first and last manifest line. */
export interface JobsInState {
  state: JobState;
  jobs: number;
  firstLine: number;
  lastLine: number;
}

/** One job as the status page lists it. */
export interface JobRow {
  id: number;
  runId: number;
  line: number;
  imageKey: string | null;
  logName: string | null;
  state: JobState;
  attempts: number;
  error: string | null;
  /** When its last attempt started running (ISO 8601); null if it never ran. */
  startedAt: string | null;
  /** When it reached its final state; null while it is not final. */
  finishedAt: string | null;
}

/** Jobs of unfinished runs in one state, of one watch and executor (the metrics' gauge). */
export interface LiveJobCount {
  watch: number;
  executor: string;
  state: JobState;
  jobs: number;
}

/** Why held jobs are held (HTCondor's hold reason), and how many. */
export interface HoldReason {
  reason: string;
  jobs: number;
}

const JOB_ROW = `id, run_id AS runId, line, image_key AS imageKey, log_name AS logName, state, attempts, error,
  started_at AS startedAt, finished_at AS finishedAt`;

const SQL = {
  recentRuns: `SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' OR finished_at >= ? ORDER BY id`,
  // Read off the (run_id, state, line) index alone: a 100,000-row run in ~10 ms, not ~50 with each row read.
  jobsByState: `SELECT state, COUNT(*) AS jobs, MIN(line) AS firstLine, MAX(line) AS lastLine
    FROM jobs WHERE run_id = ? GROUP BY state`,
  // Waiting jobs the user holds (the partial index jobs_user_held): they count as held, like a job HTCondor holds.
  userHeld: `SELECT COUNT(*) AS jobs, MIN(line) AS firstLine, MAX(line) AS lastLine
    FROM jobs WHERE run_id = ? AND state = 'idle' AND hold IS NOT NULL`,
  firstUnheldIdle: `SELECT line FROM jobs WHERE run_id = ? AND state = 'idle' AND hold IS NULL ORDER BY line LIMIT 1`,
  lastUnheldIdle: `SELECT line FROM jobs WHERE run_id = ? AND state = 'idle' AND hold IS NULL ORDER BY line DESC LIMIT 1`,
  holdReasons: `SELECT CASE WHEN state = 'held' THEN IFNULL(error, 'no reason given')
        ELSE 'held by ' || json_extract(hold, '$.by') || ': ' || json_extract(hold, '$.reason') END AS reason,
      COUNT(*) AS jobs
    FROM jobs WHERE run_id = ? AND (state = 'held' OR (state = 'idle' AND hold IS NOT NULL))
    GROUP BY 1 ORDER BY jobs DESC, reason LIMIT 5`,
  // Jobs the executor holds (HTCondor's hold): since their last state change.
  executorHeld: `SELECT run_id AS runId, line, IFNULL(error, 'no reason given') AS reason, updated_at AS since
    FROM jobs WHERE state = 'held' ORDER BY run_id, line`,
  // Pages in manifest order, read off the (run_id, line) and (run_id, state, line) indexes.
  page: `SELECT ${JOB_ROW} FROM jobs WHERE run_id = ? ORDER BY line LIMIT ? OFFSET ?`,
  pageInState: `SELECT ${JOB_ROW} FROM jobs WHERE run_id = ? AND state = ? ORDER BY line LIMIT ? OFFSET ?`,
  count: 'SELECT COUNT(*) FROM jobs WHERE run_id = ?',
  countInState: 'SELECT COUNT(*) FROM jobs WHERE run_id = ? AND state = ?',
  jobRow: `SELECT ${JOB_ROW} FROM jobs WHERE run_id = ? AND line = ?`,
  liveJobCounts: `SELECT r.watch_id AS watch, w.executor AS executor, j.state AS state, COUNT(*) AS jobs
    FROM runs r JOIN watches w ON w.id = r.watch_id JOIN jobs j ON j.run_id = r.id
    WHERE r.state != 'done' GROUP BY r.watch_id, w.executor, j.state`,
  ping: 'SELECT 1',
};

/** A job the executor holds (HTCondor held it), for `cogd status -hold`. */
export interface ExecutorHeld {
  runId: number;
  line: number;
  reason: string;
  since: string;
}

export class StatusQueries {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['count', 'countInState', 'ping', 'firstUnheldIdle', 'lastUnheldIdle']);
  }

  /** Runs not finished, plus runs finished since `since` (ISO 8601). */
  recentRuns(since: string): RunRecord[] {
    return this.sql.recentRuns.all(since) as RunRecord[];
  }

  /** Per state: how many jobs of the run, and their first and last manifest line. */
  jobsByState(runId: number): JobsInState[] {
    const rows = this.sql.jobsByState.all(runId) as JobsInState[];
    const idle = rows.find((r) => r.state === 'idle');
    if (idle === undefined) return rows;
    const held = this.sql.userHeld.get(runId) as { jobs: number; firstLine: number | null; lastLine: number | null };
    if (held.jobs === 0) return rows;
    const userHeld = { state: 'held' as const, jobs: held.jobs, firstLine: held.firstLine!, lastLine: held.lastLine! };
    const others = rows.filter((r) => r.state !== 'idle' && r.state !== 'held');
    const executorHeld = rows.find((r) => r.state === 'held');
    const allHeld =
      executorHeld === undefined
        ? userHeld
        : {
            state: 'held' as const,
            jobs: executorHeld.jobs + userHeld.jobs,
            firstLine: Math.min(executorHeld.firstLine, userHeld.firstLine),
            lastLine: Math.max(executorHeld.lastLine, userHeld.lastLine),
          };
    if (idle.jobs === held.jobs) return [...others, allHeld];
    const waiting = {
      state: 'idle' as const,
      jobs: idle.jobs - held.jobs,
      firstLine: this.sql.firstUnheldIdle.get(runId) as number,
      lastLine: this.sql.lastUnheldIdle.get(runId) as number,
    };
    return [...others, waiting, allHeld];
  }

  /** Why the run's held jobs are held, most common first (five reasons at most). */
  holdReasons(runId: number): HoldReason[] {
    return this.sql.holdReasons.all(runId) as HoldReason[];
  }

  executorHeld(): ExecutorHeld[] {
    return this.sql.executorHeld.all() as ExecutorHeld[];
  }

  /** One page of a run's jobs in manifest order, of one state or all. */
  jobsPage(runId: number, state: JobState | undefined, limit: number, offset: number): JobRow[] {
    return (
      state === undefined
        ? this.sql.page.all(runId, limit, offset)
        : this.sql.pageInState.all(runId, state, limit, offset)
    ) as JobRow[];
  }

  /** How many jobs the run has (in one state, or in all). */
  countJobs(runId: number, state: JobState | undefined): number {
    return (state === undefined ? this.sql.count.get(runId) : this.sql.countInState.get(runId, state)) as number;
  }

  /** The job of a run's manifest line, as the status page shows it. */
  jobRow(runId: number, line: number): JobRow | undefined {
    return this.sql.jobRow.get(runId, line) as JobRow | undefined;
  }

  /** Jobs of unfinished runs by watch, executor and state. */
  liveJobCounts(): LiveJobCount[] {
    return this.sql.liveJobCounts.all() as LiveJobCount[];
  }

  /** Whether the connection answers. */
  ping(): boolean {
    return this.sql.ping.get() === 1;
  }
}
