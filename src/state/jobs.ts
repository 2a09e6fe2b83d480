/** Jobs: one manifest row each, valid or not, with its state and attempts. */
import type Database from 'better-sqlite3';
import type { JobState } from '../types.js';
import { now, prepareAll } from './statements.js';

export interface JobRecord {
  id: number;
  runId: number;
  line: number;
  /** The manifest row verbatim: text, or bytes where it is not valid UTF-8. */
  raw: string | Buffer;
  imageKey: string | null;
  bands: number | null;
  logName: string | null;
  state: JobState;
  attempts: number;
  error: string | null;
  notBefore: number;
  /** What the job's STAC item says of the image (JSON: bbox, datetime), once converted with one. */
  item: string | null;
}

/** One planned row. */
export type NewJob = Pick<JobRecord, 'line' | 'raw' | 'imageKey' | 'bands' | 'logName' | 'state' | 'error'>;

/** What a change of a job's state records with it; see Jobs.setState. */
export interface JobStateFields {
  error?: string | null;
  attempts?: number;
  notBefore?: number;
  endAttempt?: boolean;
  /** The STAC item's summary (JSON) of a converted job. */
  item?: string;
}

/** The columns of a JobRecord. */
const JOB_COLUMNS = `id, run_id AS runId, line, raw, image_key AS imageKey, bands, log_name AS logName, state,
  attempts, error, not_before AS notBefore, item`;

const SQL = {
  insert: `INSERT INTO jobs (run_id, line, raw, image_key, bands, log_name, state, error, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  planned: `UPDATE runs SET rows_total = ?, state = 'running' WHERE id = ?`,
  ofRun: `SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? ORDER BY line`,
  // A page of a run's jobs in manifest order after a line (the (run_id, line) index).
  pageAfter: `SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? AND line > ? ORDER BY line LIMIT ?`,
  // A page of the jobs not final yet whose back-off is over, after a line: what the scheduler reads next.
  liveAfter: `SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? AND line > ?
    AND state NOT IN ('converted', 'failed', 'removed') AND not_before <= ? ORDER BY line LIMIT ?`,
  nextWake: `SELECT MIN(not_before) FROM jobs WHERE run_id = ? AND state NOT IN ('converted', 'failed', 'removed')
    AND not_before > ?`,
  live: `SELECT COUNT(*) FROM jobs WHERE run_id = ? AND state NOT IN ('converted', 'failed', 'removed')`,
  byId: `SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`,
  byLine: `SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? AND line = ?`,
  runOf: 'SELECT run_id FROM jobs WHERE id = ?',
  error: 'SELECT error FROM jobs WHERE id = ?',
  counts: 'SELECT state, COUNT(*) AS n FROM jobs WHERE run_id = ? GROUP BY state',
  requeueRunning: `UPDATE jobs SET state = 'idle', updated_at = ? WHERE run_id = ? AND state = 'running'
    AND condor_cluster IS NULL AND slurm_array IS NULL`,
  setState: `UPDATE jobs SET state = ?, error = CASE WHEN ? THEN ? ELSE error END, attempts = COALESCE(?, attempts),
      not_before = COALESCE(?, not_before), item = COALESCE(?, item), updated_at = ?,
      condor_batch = CASE WHEN ? THEN NULL ELSE condor_batch END,
      condor_cluster = CASE WHEN ? THEN NULL ELSE condor_cluster END,
      condor_proc = CASE WHEN ? THEN NULL ELSE condor_proc END,
      condor_result = CASE WHEN ? THEN NULL ELSE condor_result END,
      slurm_batch = CASE WHEN ? THEN NULL ELSE slurm_batch END,
      slurm_task = CASE WHEN ? THEN NULL ELSE slurm_task END,
      slurm_array = CASE WHEN ? THEN NULL ELSE slurm_array END,
      slurm_result = CASE WHEN ? THEN NULL ELSE slurm_result END,
      slurm_requeues = CASE WHEN ? THEN 0 ELSE slurm_requeues END,
      slurm_mem = CASE WHEN ? THEN NULL ELSE slurm_mem END,
      slurm_note = CASE WHEN ? THEN NULL ELSE slurm_note END
    WHERE id = ?`,
};

export class Jobs {
  private readonly sql;
  private readonly insertPlan;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['runOf', 'error', 'nextWake', 'live']);
    this.insertPlan = db.transaction((runId: number, jobs: NewJob[]) => {
      const stamp = now();
      for (const job of jobs) {
        this.sql.insert.run(
          runId,
          job.line,
          job.raw,
          job.imageKey,
          job.bands,
          job.logName,
          job.state,
          job.error,
          stamp,
        );
      }
      this.sql.planned.run(jobs.length, runId);
    });
  }

  /** Stores the plan of a run: every row, valid or not, in one transaction. */
  insert(runId: number, jobs: NewJob[]): void {
    this.insertPlan(runId, jobs);
  }

  /** The jobs of a run, by manifest line. */
  ofRun(runId: number): JobRecord[] {
    return this.sql.ofRun.all(runId) as JobRecord[];
  }

  /** Up to `limit` jobs of a run after manifest line `afterLine`, in manifest order. */
  pageAfter(runId: number, afterLine: number, limit: number): JobRecord[] {
    return this.sql.pageAfter.all(runId, afterLine, limit) as JobRecord[];
  }

  /** Up to `limit` jobs of a run not final yet, due by `now` (ms), after manifest line `afterLine`. */
  liveAfter(runId: number, afterLine: number, now: number, limit: number): JobRecord[] {
    return this.sql.liveAfter.all(runId, afterLine, now, limit) as JobRecord[];
  }

  /** When the next job of a run not final yet is due (ms), if one waits for its back-off after `now`. */
  nextWake(runId: number, now: number): number | undefined {
    return (this.sql.nextWake.get(runId, now) as number | null) ?? undefined;
  }

  /** How many jobs of a run are not final yet. */
  live(runId: number): number {
    return this.sql.live.get(runId) as number;
  }

  get(jobId: number): JobRecord | undefined {
    return this.sql.byId.get(jobId) as JobRecord | undefined;
  }

  byLine(runId: number, line: number): JobRecord | undefined {
    return this.sql.byLine.get(runId, line) as JobRecord | undefined;
  }

  runOf(jobId: number): number | undefined {
    return this.sql.runOf.get(jobId) as number | undefined;
  }

  error(jobId: number): string | null {
    return (this.sql.error.get(jobId) as string | null | undefined) ?? null;
  }

  /** How many jobs of a run are in each state. */
  counts(runId: number): Record<JobState, number> {
    const counts: Record<JobState, number> = { idle: 0, running: 0, held: 0, converted: 0, failed: 0, removed: 0 };
    const rows = this.sql.counts.all(runId) as Array<{ state: JobState; n: number }>;
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  /**
   * Jobs left running by a process that died go back to idle and run again — except those queued
   * in HTCondor or Slurm (they have a cluster or an array id): they live on outside cogd and are re-attached.
   */
  requeueRunning(runId: number): number {
    return this.sql.requeueRunning.run(now(), runId).changes;
  }

  /**
   * Records a job's state. `endAttempt` marks the end of an attempt (final, or failed and to be
   * retried): the attempt's HTCondor or Slurm submission is forgotten in the same write, so a restart never
   * mistakes a finished attempt for one to re-attach to.
   */
  setState(jobId: number, state: JobState, fields: JobStateFields = {}): void {
    const end = fields.endAttempt === true ? 1 : 0;
    // An error given (even null, which clears it) replaces the last one; absent, it is kept.
    const setsError = fields.error !== undefined ? 1 : 0;
    this.sql.setState.run(
      state,
      setsError,
      fields.error ?? null,
      fields.attempts ?? null,
      fields.notBefore ?? null,
      fields.item ?? null,
      now(),
      // One per column the end of an attempt clears: HTCondor's four, Slurm's seven.
      ...Array<number>(11).fill(end),
      jobId,
    );
  }
}
