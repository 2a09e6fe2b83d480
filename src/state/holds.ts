/**
 * Holds the user puts on watches (no polls), runs (no new jobs) and jobs (not started), recorded by
 * `cogd hold` and kept across restarts; `cogd release` takes them off. Each is JSON in the row's
 * `hold` column: why, since when, by whom, and whether running work was stopped at once.
 */
import type Database from 'better-sqlite3';
import { prepareAll } from './statements.js';

export interface Hold {
  reason: string;
  /** ISO 8601 */
  since: string;
  /** The user who held it. */
  by: string;
  /** Jobs already running were stopped and requeued (`--now`), not left to finish. */
  now: boolean;
}

/** A held thing, for `cogd status -hold`. */
export interface HeldEntry {
  kind: 'watch' | 'run' | 'job';
  /** w3, 12 or 12.5 */
  id: string;
  hold: Hold;
}

const SQL = {
  holdWatch: 'UPDATE watches SET hold = ? WHERE id = ? AND removed_at IS NULL AND hold IS NULL',
  holdRun: `UPDATE runs SET hold = ? WHERE id = ? AND state != 'done' AND hold IS NULL`,
  holdJob: `UPDATE jobs SET hold = ? WHERE id = ? AND state IN ('idle', 'running', 'held') AND hold IS NULL`,
  releaseWatch: 'UPDATE watches SET hold = NULL WHERE id = ? AND hold IS NOT NULL',
  releaseRun: 'UPDATE runs SET hold = NULL WHERE id = ? AND hold IS NOT NULL',
  releaseJob: 'UPDATE jobs SET hold = NULL WHERE id = ? AND hold IS NOT NULL',
  heldWatches: 'SELECT id, hold FROM watches WHERE removed_at IS NULL AND hold IS NOT NULL ORDER BY id',
  heldRuns: `SELECT id, hold FROM runs WHERE state != 'done' AND hold IS NOT NULL ORDER BY id`,
  heldJobs: `SELECT j.id, j.run_id AS runId, j.line, j.hold FROM jobs j
    WHERE j.state IN ('idle', 'running', 'held') AND j.hold IS NOT NULL ORDER BY j.id`,
  // Jobs HTCondor or Slurm has now, with the user's hold on them or their run: what
  // condor_hold/condor_release and scontrol hold/release act on.
  inExecutors: `SELECT j.id, CASE WHEN j.condor_cluster IS NOT NULL THEN 'condor' ELSE 'slurm' END AS executor,
      j.state, COALESCE(j.hold, r.hold) AS hold, j.executor_hold AS asked
    FROM jobs j JOIN runs r ON r.id = j.run_id
    WHERE j.state IN ('idle', 'running', 'held')
      AND ((j.condor_cluster IS NOT NULL AND j.condor_result IS NULL) OR (j.slurm_array IS NOT NULL AND j.slurm_result IS NULL))
    ORDER BY j.id`,
  setAsked: 'UPDATE jobs SET executor_hold = ? WHERE id = ?',
};

/** A job HTCondor or Slurm has, the user's hold on it (its own, else its run's), and whether cogd had the executor hold it. */
export interface ExecutorJobHold {
  id: number;
  executor: 'condor' | 'slurm';
  state: 'idle' | 'running' | 'held';
  hold: Hold | null;
  /** cogd asked the executor to hold it (and not yet to release it). */
  asked: boolean;
}

type Row = { id: number; hold: string };

export class Holds {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL);
  }

  /** Holds a live watch, an unfinished run or a live job; false when there is none, or it is held already. */
  hold(kind: 'watch' | 'run' | 'job', id: number, hold: Hold): boolean {
    const statement = kind === 'watch' ? this.sql.holdWatch : kind === 'run' ? this.sql.holdRun : this.sql.holdJob;
    return statement.run(JSON.stringify(hold), id).changes > 0;
  }

  /** Releases a hold; false when it was not held. */
  release(kind: 'watch' | 'run' | 'job', id: number): boolean {
    const statement =
      kind === 'watch' ? this.sql.releaseWatch : kind === 'run' ? this.sql.releaseRun : this.sql.releaseJob;
    return statement.run(id).changes > 0;
  }

  watches(): Map<number, Hold> {
    return new Map((this.sql.heldWatches.all() as Row[]).map((r) => [r.id, JSON.parse(r.hold) as Hold]));
  }

  runs(): Map<number, Hold> {
    return new Map((this.sql.heldRuns.all() as Row[]).map((r) => [r.id, JSON.parse(r.hold) as Hold]));
  }

  /** Held live jobs: their run and manifest line too. */
  jobs(): Array<{ id: number; runId: number; line: number; hold: Hold }> {
    return (this.sql.heldJobs.all() as Array<Row & { runId: number; line: number }>).map((r) => ({
      id: r.id,
      runId: r.runId,
      line: r.line,
      hold: JSON.parse(r.hold) as Hold,
    }));
  }

  inExecutors(): ExecutorJobHold[] {
    type Row = Omit<ExecutorJobHold, 'hold' | 'asked'> & { hold: string | null; asked: number };
    return (this.sql.inExecutors.all() as Row[]).map((r) => ({
      ...r,
      hold: r.hold === null ? null : (JSON.parse(r.hold) as Hold),
      asked: r.asked === 1,
    }));
  }

  /** Records that cogd had the executor hold these jobs (true) or release them (false). */
  setAsked(jobIds: readonly number[], asked: boolean): void {
    for (const id of jobIds) this.sql.setAsked.run(asked ? 1 : 0, id);
  }

  /** Everything held, watches first. */
  all(): HeldEntry[] {
    return [
      ...[...this.watches()].map(([id, hold]) => ({ kind: 'watch' as const, id: `w${id}`, hold })),
      ...[...this.runs()].map(([id, hold]) => ({ kind: 'run' as const, id: String(id), hold })),
      ...this.jobs().map((j) => ({ kind: 'job' as const, id: `${j.runId}.${j.line}`, hold: j.hold })),
    ];
  }
}
