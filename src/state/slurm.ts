/**
 * Slurm bookkeeping (the slurm executor): each job's submission — task T of the run's batch N, the
 * array's job id once known, the outcome read from Slurm and the task's exit record, the requeues
 * and memory of this attempt, what Slurm last said of it — and per run, the batches submitted.
 */
import type Database from 'better-sqlite3';
import type { JobState } from '../types.js';
import { now, prepareAll } from './statements.js';

/** A job's Slurm submission: task `task` of batch `batch`, array `arrayId` once known. */
export interface SlurmSubmission {
  jobId: number;
  runId: number;
  state: JobState;
  batch: number;
  task: number;
  arrayId: number | null;
  /** The attempt's outcome (see `outcomeOf`); null while Slurm still has the job. */
  result: string | null;
  /** Times this attempt was submitted again after a node failure, a preemption or running out of memory. */
  requeues: number;
  /** Memory asked for, where not the home's --mem (after OUT_OF_MEMORY). */
  mem: string | null;
  /** What Slurm last said of the task while it waited (its pending reason). */
  note: string | null;
}

const SUBMISSION_COLUMNS = `id AS jobId, run_id AS runId, state, slurm_batch AS batch, slurm_task AS task,
  slurm_array AS arrayId, slurm_result AS result, slurm_requeues AS requeues, slurm_mem AS mem, slurm_note AS note`;

const SQL = {
  submission: `SELECT ${SUBMISSION_COLUMNS} FROM jobs WHERE id = ? AND slurm_batch IS NOT NULL`,
  nextBatch: 'UPDATE runs SET slurm_batches = slurm_batches + 1 WHERE id = ? RETURNING slurm_batches',
  assignTask:
    'UPDATE jobs SET slurm_batch = ?, slurm_task = ?, slurm_array = NULL, slurm_result = NULL, slurm_note = NULL WHERE id = ?',
  setArray: 'UPDATE jobs SET slurm_array = ? WHERE run_id = ? AND slurm_batch = ? AND slurm_array IS NULL',
  clearBatch:
    'UPDATE jobs SET slurm_batch = NULL, slurm_task = NULL WHERE run_id = ? AND slurm_batch = ? AND slurm_array IS NULL',
  unconfirmedBatches:
    'SELECT DISTINCT slurm_batch FROM jobs WHERE run_id = ? AND slurm_batch IS NOT NULL AND slurm_array IS NULL',
  hasSubmissions: 'SELECT 1 FROM jobs WHERE run_id = ? AND slurm_batch IS NOT NULL LIMIT 1',
  live: `SELECT ${SUBMISSION_COLUMNS} FROM jobs WHERE run_id = ? AND slurm_array IS NOT NULL AND slurm_result IS NULL
    AND state IN ('idle', 'running', 'held')`,
  liveTasks: `SELECT slurm_task FROM jobs WHERE slurm_array = ? AND slurm_result IS NULL AND state IN ('idle', 'running', 'held')`,
  setProgress: `UPDATE jobs SET state = ?, error = COALESCE(?, error), slurm_note = ?, updated_at = ?
    WHERE id = ? AND state IN ('idle', 'running', 'held')`,
  setResult: 'UPDATE jobs SET slurm_result = ? WHERE id = ?',
  requeue: `UPDATE jobs SET slurm_batch = NULL, slurm_task = NULL, slurm_array = NULL, slurm_result = NULL,
    slurm_requeues = slurm_requeues + 1, slurm_mem = COALESCE(?, slurm_mem), slurm_note = NULL, state = 'idle', updated_at = ?
    WHERE id = ? AND state IN ('idle', 'running', 'held')`,
  forget: `UPDATE jobs SET slurm_batch = NULL, slurm_task = NULL, slurm_array = NULL, slurm_result = NULL,
    slurm_note = NULL WHERE id = ?`,
  arraysOfRun: `SELECT DISTINCT slurm_array FROM jobs WHERE run_id = ? AND slurm_array IS NOT NULL`,
  pendingNotes: `SELECT slurm_note AS reason, COUNT(*) AS jobs FROM jobs WHERE run_id = ? AND slurm_note IS NOT NULL
    AND state = 'idle' GROUP BY slurm_note ORDER BY jobs DESC, reason LIMIT 5`,
};

export class SlurmBookkeeping {
  private readonly sql;
  private readonly reserveBatch;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['nextBatch', 'unconfirmedBatches', 'liveTasks', 'arraysOfRun']);
    this.reserveBatch = db.transaction((runId: number, jobIds: number[], tasks?: number[]): number => {
      const batch = this.sql.nextBatch.get(runId) as number;
      jobIds.forEach((jobId, index) => this.sql.assignTask.run(batch, tasks?.[index] ?? index, jobId));
      return batch;
    });
  }

  /** The Slurm submission of a job's current attempt, if it has one. */
  submission(jobId: number): SlurmSubmission | undefined {
    return this.sql.submission.get(jobId) as SlurmSubmission | undefined;
  }

  /**
   * Reserves the run's next batch number and records, before sbatch runs, which array task of
   * that batch each job will be: its index in `jobIds`, or `tasks[index]` where several jobs share
   * a task (`--rows-per-job`: one task converts a group of rows). Returns the batch number.
   */
  recordBatch(runId: number, jobIds: number[], tasks?: number[]): number {
    return this.reserveBatch(runId, jobIds, tasks);
  }

  /** The array job a batch became (sbatch's answer, or found by the batch's job name). */
  setArray(runId: number, batch: number, arrayId: number): number {
    return this.sql.setArray.run(arrayId, runId, batch).changes;
  }

  /** Forgets a batch that never reached Slurm (sbatch failed, or was interrupted before it). */
  clearBatch(runId: number, batch: number): void {
    this.sql.clearBatch.run(runId, batch);
  }

  /** Batches of a run recorded but without an array id (a crash around sbatch). */
  unconfirmedBatches(runId: number): number[] {
    return this.sql.unconfirmedBatches.all(runId) as number[];
  }

  hasSubmissions(runId: number): boolean {
    return this.sql.hasSubmissions.get(runId) !== undefined;
  }

  /** Whether any of these jobs has a task in Slurm (its batch has an array id). */
  anyQueued(jobIds: readonly number[]): boolean {
    return jobIds.some((id) => this.submission(id)?.arrayId != null);
  }

  /** The run's submitted tasks whose outcome is not known yet: what a poll asks Slurm about. */
  live(runId: number): SlurmSubmission[] {
    return this.sql.live.all(runId) as SlurmSubmission[];
  }

  /** Tasks of an array still queued as far as cogd knows (to scancel a whole array). */
  liveTasks(arrayId: number): number[] {
    return this.sql.liveTasks.all(arrayId) as number[];
  }

  /** Every array a run's jobs are in now. */
  arraysOfRun(runId: number): number[] {
    return this.sql.arraysOfRun.all(runId) as number[];
  }

  /** A job's progress while Slurm has it (never over a final state), and what Slurm said of it. */
  setProgress(jobId: number, state: 'idle' | 'running' | 'held', note: string | null, error?: string): void {
    this.sql.setProgress.run(state, error ?? null, note, now(), jobId);
  }

  /** The attempt's outcome as read from Slurm and the exit record. */
  setResult(jobId: number, result: string): void {
    this.sql.setResult.run(result, jobId);
  }

  /**
   * The job's task ended through no fault of its own (node failure, preemption) or ran out of
   * memory: its submission is forgotten, the requeue counted (and `mem` asked for next time), and
   * it waits for the next batch — all within the same attempt.
   */
  requeue(jobId: number, mem: string | undefined): void {
    this.sql.requeue.run(mem ?? null, now(), jobId);
  }

  /** Forgets the job's submission without ending its attempt (its task was cancelled by cogd). */
  forget(jobId: number): void {
    this.sql.forget.run(jobId);
  }

  /** What Slurm says the run's waiting jobs wait for, most common first. */
  pendingNotes(runId: number): Array<{ reason: string; jobs: number }> {
    return this.sql.pendingNotes.all(runId) as Array<{ reason: string; jobs: number }>;
  }
}
