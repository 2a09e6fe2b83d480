/**
 * HTCondor bookkeeping (the condor executor): each job's submission — batch, cluster, proc, the
 * outcome read from the event log — and per run, the batches submitted and the event log offset.
 */
import type Database from 'better-sqlite3';
import type { JobState } from '../types.js';
import { now, prepareAll } from './statements.js';

/** A job's HTCondor submission: proc `proc` of batch `batch`, cluster `cluster` once known. */
export interface CondorSubmission {
  jobId: number;
  runId: number;
  state: JobState;
  batch: number;
  cluster: number | null;
  proc: number;
  /** `ok`, or why the attempt failed; null while HTCondor still has the job. */
  result: string | null;
}

const SUBMISSION_COLUMNS =
  'id AS jobId, run_id AS runId, state, condor_batch AS batch, condor_cluster AS cluster, condor_proc AS proc, condor_result AS result';

const SQL = {
  submission: `SELECT ${SUBMISSION_COLUMNS} FROM jobs WHERE id = ? AND condor_batch IS NOT NULL`,
  job: `SELECT ${SUBMISSION_COLUMNS} FROM jobs WHERE run_id = ? AND condor_cluster = ? AND condor_proc = ? ORDER BY id`,
  nextBatch: 'UPDATE runs SET condor_batches = condor_batches + 1 WHERE id = ? RETURNING condor_batches',
  assignProc:
    'UPDATE jobs SET condor_batch = ?, condor_proc = ?, condor_cluster = NULL, condor_result = NULL WHERE id = ?',
  setCluster: 'UPDATE jobs SET condor_cluster = ? WHERE run_id = ? AND condor_batch = ? AND condor_cluster IS NULL',
  clearBatch:
    'UPDATE jobs SET condor_batch = NULL, condor_proc = NULL WHERE run_id = ? AND condor_batch = ? AND condor_cluster IS NULL',
  unconfirmedBatches:
    'SELECT DISTINCT condor_batch FROM jobs WHERE run_id = ? AND condor_batch IS NOT NULL AND condor_cluster IS NULL',
  hasSubmissions: 'SELECT 1 FROM jobs WHERE run_id = ? AND condor_batch IS NOT NULL LIMIT 1',
  liveProcs: `SELECT condor_proc FROM jobs WHERE condor_cluster = ? AND condor_result IS NULL AND state IN ('idle', 'running', 'held')`,
  setProgress: `UPDATE jobs SET state = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ? AND state IN ('idle', 'running', 'held')`,
  setResult: 'UPDATE jobs SET condor_result = ? WHERE id = ?',
  offset: 'SELECT condor_offset FROM runs WHERE id = ?',
  setOffset: 'UPDATE runs SET condor_offset = ? WHERE id = ?',
};

export class CondorBookkeeping {
  private readonly sql;
  private readonly reserveBatch;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['nextBatch', 'unconfirmedBatches', 'liveProcs', 'offset']);
    this.reserveBatch = db.transaction((runId: number, jobIds: number[], procs?: number[]): number => {
      const batch = this.sql.nextBatch.get(runId) as number;
      jobIds.forEach((jobId, index) => this.sql.assignProc.run(batch, procs?.[index] ?? index, jobId));
      return batch;
    });
  }

  /** The HTCondor submission of a job's current attempt, if it has one. */
  submission(jobId: number): CondorSubmission | undefined {
    return this.sql.submission.get(jobId) as CondorSubmission | undefined;
  }

  /**
   * Reserves the run's next batch number and records, before condor_submit runs, which proc of
   * that batch each job will be: its index in `jobIds`, or `procs[index]` where several jobs share
   * a proc (`--rows-per-job`: one proc converts a group of rows). Returns the batch number.
   */
  recordBatch(runId: number, jobIds: number[], procs?: number[]): number {
    return this.reserveBatch(runId, jobIds, procs);
  }

  /** The cluster a batch became (from condor_submit's output, or its submit events). */
  setCluster(runId: number, batch: number, cluster: number): number {
    return this.sql.setCluster.run(cluster, runId, batch).changes;
  }

  /** Forgets a batch that never reached the queue (condor_submit failed). */
  clearBatch(runId: number, batch: number): void {
    this.sql.clearBatch.run(runId, batch);
  }

  /** The jobs that are proc `proc` of `cluster` in this run's current submissions (several for a group). */
  jobs(runId: number, cluster: number, proc: number): CondorSubmission[] {
    return this.sql.job.all(runId, cluster, proc) as CondorSubmission[];
  }

  /** Submissions of a run whose batch was recorded but whose cluster is not known (a crash during condor_submit). */
  unconfirmedBatches(runId: number): number[] {
    return this.sql.unconfirmedBatches.all(runId) as number[];
  }

  /** Whether any job of the run has an HTCondor submission. */
  hasSubmissions(runId: number): boolean {
    return this.sql.hasSubmissions.get(runId) !== undefined;
  }

  /** Whether any of these jobs is queued in HTCondor (its submission has a cluster). */
  anyQueued(jobIds: number[]): boolean {
    return jobIds.some((id) => this.submission(id)?.cluster != null);
  }

  /** Procs of a cluster still queued as far as cogd knows (for condor_rm of a whole cluster). */
  liveProcs(cluster: number): number[] {
    return this.sql.liveProcs.all(cluster) as number[];
  }

  /** A job's progress while HTCondor has it (never over a final state). */
  setProgress(jobId: number, state: 'idle' | 'running' | 'held', error?: string): void {
    this.sql.setProgress.run(state, error ?? null, now(), jobId);
  }

  /** What the event log says the attempt ended with: `ok`, or the reason it failed. */
  setResult(jobId: number, result: string): void {
    this.sql.setResult.run(result, jobId);
  }

  /** Bytes of the run's HTCondor event log already applied. */
  offset(runId: number): number {
    return (this.sql.offset.get(runId) as number | undefined) ?? 0;
  }

  setOffset(runId: number, offset: number): void {
    this.sql.setOffset.run(offset, runId);
  }
}
