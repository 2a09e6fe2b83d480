/** Removal requests: recorded by `cogd rm`, applied by whoever executes the run. */
import type Database from 'better-sqlite3';
import { now, prepareAll } from './statements.js';

const SQL = {
  requestRun: `UPDATE runs SET remove_requested = 1 WHERE id = ? AND state != 'done'`,
  requestJob: `UPDATE jobs SET remove_requested = 1 WHERE id = ? AND state IN ('idle', 'running', 'held')`,
  jobsToRemove: `SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id
    WHERE j.state IN ('idle', 'running', 'held') AND (j.remove_requested = 1 OR r.remove_requested = 1)`,
  markRemoved: `UPDATE jobs SET state = 'removed', error = 'removed by user', updated_at = ?,
      condor_batch = NULL, condor_cluster = NULL, condor_proc = NULL, condor_result = NULL,
      slurm_batch = NULL, slurm_task = NULL, slurm_array = NULL, slurm_result = NULL, slurm_requeues = 0,
      slurm_mem = NULL, slurm_note = NULL
    WHERE id = ? AND state IN ('idle', 'running', 'held')`,
};

export class Removals {
  private readonly sql;
  private readonly markAll;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['jobsToRemove']);
    this.markAll = db.transaction((jobIds: number[]) => {
      const stamp = now();
      for (const id of jobIds) this.sql.markRemoved.run(stamp, id);
    });
  }

  /** Asks for a run's removal; false when there is no such unfinished run. */
  requestRun(runId: number): boolean {
    return this.sql.requestRun.run(runId).changes > 0;
  }

  /** Asks for a job's removal; false when there is no such unfinished job. */
  requestJob(jobId: number): boolean {
    return this.sql.requestJob.run(jobId).changes > 0;
  }

  /** Unfinished jobs whose removal was requested, by job or by run. */
  jobsToRemove(): number[] {
    return this.sql.jobsToRemove.all() as number[];
  }

  /** Marks jobs removed where no process is executing them. */
  markRemoved(jobIds: number[]): void {
    this.markAll(jobIds);
  }
}
