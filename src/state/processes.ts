/** GDAL processes of jobs, so a restart can stop those a killed process left behind. */
import type Database from 'better-sqlite3';
import { now, prepareAll } from './statements.js';

/** A GDAL process a job started. */
export interface ProcessRecord {
  pid: number;
  jobId: number;
  command: string;
  /** Boot id and start time (`processStart`): with the pid, one process and no later one. */
  startTime: string;
  ownerPid: number;
}

const SQL = {
  record:
    'INSERT OR REPLACE INTO processes (pid, job_id, command, start_time, owner_pid, started_at) VALUES (?, ?, ?, ?, ?, ?)',
  forget: 'DELETE FROM processes WHERE pid = ?',
  leftBehind:
    'SELECT pid, job_id AS jobId, command, start_time AS startTime, owner_pid AS ownerPid FROM processes WHERE owner_pid != ? ORDER BY pid',
};

export class GdalProcesses {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL);
  }

  /** Recorded the moment the process starts. */
  record(proc: ProcessRecord): void {
    this.sql.record.run(proc.pid, proc.jobId, proc.command, proc.startTime, proc.ownerPid, now());
  }

  /** Dropped when the process ends. */
  forget(pid: number): void {
    this.sql.forget.run(pid);
  }

  /** Processes recorded by cogd processes other than `ownerPid`. */
  leftBehind(ownerPid: number): ProcessRecord[] {
    return this.sql.leftBehind.all(ownerPid) as ProcessRecord[];
  }
}
