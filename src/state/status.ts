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

/** Why held jobs are held (HTCondor's hold reason), and how many. */
export interface HoldReason {
  reason: string;
  jobs: number;
}

const SQL = {
  recentRuns: `SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' OR finished_at >= ? ORDER BY id`,
  // A waiting job the user holds counts as held, like a job HTCondor holds.
  jobsByState: `SELECT CASE WHEN state = 'idle' AND hold IS NOT NULL THEN 'held' ELSE state END AS state,
      COUNT(*) AS jobs, MIN(line) AS firstLine, MAX(line) AS lastLine
    FROM jobs WHERE run_id = ? GROUP BY 1`,
  holdReasons: `SELECT CASE WHEN state = 'held' THEN IFNULL(error, 'no reason given')
        ELSE 'held by ' || json_extract(hold, '$.by') || ': ' || json_extract(hold, '$.reason') END AS reason,
      COUNT(*) AS jobs
    FROM jobs WHERE run_id = ? AND (state = 'held' OR (state = 'idle' AND hold IS NOT NULL))
    GROUP BY 1 ORDER BY jobs DESC, reason LIMIT 5`,
  // Jobs the executor holds (HTCondor's hold): since their last state change.
  executorHeld: `SELECT run_id AS runId, line, IFNULL(error, 'no reason given') AS reason, updated_at AS since
    FROM jobs WHERE state = 'held' ORDER BY run_id, line`,
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
    this.sql = prepareAll(db, SQL);
  }

  /** Runs not finished, plus runs finished since `since` (ISO 8601). */
  recentRuns(since: string): RunRecord[] {
    return this.sql.recentRuns.all(since) as RunRecord[];
  }

  /** Per state: how many jobs of the run, and their first and last manifest line. */
  jobsByState(runId: number): JobsInState[] {
    return this.sql.jobsByState.all(runId) as JobsInState[];
  }

  /** Why the run's held jobs are held, most common first (five reasons at most). */
  holdReasons(runId: number): HoldReason[] {
    return this.sql.holdReasons.all(runId) as HoldReason[];
  }

  executorHeld(): ExecutorHeld[] {
    return this.sql.executorHeld.all() as ExecutorHeld[];
  }
}
