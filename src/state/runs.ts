/** Runs: one claimed manifest each, from the claim to the post step. */
import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import type { ClaimStep, RunState } from '../types.js';
import { DEFAULT_CONVERSION } from '../convert/profiles.js';
import type { ConversionSettings } from '../types.js';
import { now, prepareAll } from './statements.js';

export interface RunRecord {
  id: number;
  watchId: number;
  inputBucket: string;
  outputBucket: string;
  manifestKey: string;
  manifestEtag: string;
  manifestMtime: string;
  base: string;
  ts: string;
  processingKey: string;
  runDir: string;
  batchName: string;
  state: RunState;
  claimStep: ClaimStep;
  /** Written into the claim marker; recognises our own claim after a restart. */
  claimToken: string | null;
  rowsTotal: number | null;
  processed: number | null;
  failed: number | null;
  /** Why the whole manifest was rejected. */
  error: string | null;
  postError: string | null;
  createdAt: string;
  finishedAt: string | null;
  /** The run this one retries (`cogd retry`), or null. */
  retryOf: number | null;
}

/** What a claim records before anything is done in S3. */
export type NewRun = Pick<
  RunRecord,
  | 'watchId'
  | 'inputBucket'
  | 'outputBucket'
  | 'manifestKey'
  | 'manifestEtag'
  | 'manifestMtime'
  | 'base'
  | 'ts'
  | 'processingKey'
  | 'runDir'
  | 'batchName'
>;

/** The columns of a RunRecord. */
export const RUN_COLUMNS = `id, watch_id AS watchId, input_bucket AS inputBucket, output_bucket AS outputBucket,
  manifest_key AS manifestKey, manifest_etag AS manifestEtag, manifest_mtime AS manifestMtime, base, ts,
  processing_key AS processingKey, run_dir AS runDir, batch_name AS batchName, state, claim_step AS claimStep, claim_token AS claimToken,
  rows_total AS rowsTotal, processed, failed, error, post_error AS postError, created_at AS createdAt, finished_at AS finishedAt, retry_of AS retryOf`;

const SQL = {
  find: `SELECT ${RUN_COLUMNS} FROM runs WHERE input_bucket = ? AND manifest_key = ? AND manifest_etag = ? AND manifest_mtime = ?`,
  dirTaken: 'SELECT 1 FROM runs WHERE run_dir = ?',
  insert: `INSERT INTO runs (watch_id, input_bucket, output_bucket, manifest_key, manifest_etag, manifest_mtime, base, ts,
      processing_key, run_dir, batch_name, state, claim_step, claim_token, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'claiming', 'claimed', ?, ?)`,
  // A retry is claimed already: its rows come from the original's manifest copy, not the bucket.
  insertRetry: `INSERT INTO runs (watch_id, input_bucket, output_bucket, manifest_key, manifest_etag, manifest_mtime, base, ts,
      processing_key, run_dir, batch_name, state, claim_step, claim_token, created_at, retry_of)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'claiming', 'raw-deleted', NULL, ?, ?)`,
  tsTaken: 'SELECT 1 FROM runs WHERE input_bucket = ? AND base = ? AND ts = ?',
  get: `SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`,
  unfinished: `SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' ORDER BY id`,
  unfinishedOfWatch: `SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' AND watch_id = ? ORDER BY id`,
  byBatch: `SELECT ${RUN_COLUMNS} FROM runs WHERE batch_name = ? ORDER BY id`,
  delete: `DELETE FROM runs WHERE id = ? AND state = 'claiming' AND claim_step IN ('claimed', 'downloaded')`,
  setClaimStep: 'UPDATE runs SET claim_step = ? WHERE id = ?',
  setState: 'UPDATE runs SET state = ? WHERE id = ?',
  setError: 'UPDATE runs SET error = ? WHERE id = ?',
  setPostError: 'UPDATE runs SET post_error = ? WHERE id = ?',
  finish: `UPDATE runs SET state = 'done', processed = ?, failed = ?, post_error = NULL, finished_at = ?,
      hook_command = ?, hook_state = ?, notify_url = ?, notify_state = ? WHERE id = ?`,
  conversion: 'SELECT conversion FROM runs WHERE id = ?',
  setConversion: 'UPDATE runs SET conversion = ? WHERE id = ?',
  runEnd: `SELECT id AS runId, hook_command AS hookCommand, hook_state AS hookState, hook_starts AS hookStarts,
      hook_started_at AS hookStartedAt, hook_exit_code AS hookExitCode, hook_signal AS hookSignal,
      hook_result AS hookResult, hook_ended_at AS hookEndedAt, notify_url AS notifyUrl, notify_state AS notifyState,
      notify_result AS notifyResult, notify_ended_at AS notifyEndedAt
    FROM runs WHERE id = ?`,
  runEndPending: `SELECT id FROM runs WHERE (hook_state = 'pending' OR notify_state = 'pending') AND state = 'done' ORDER BY id`,
  runEndPendingOfWatch: `SELECT id FROM runs
    WHERE (hook_state = 'pending' OR notify_state = 'pending') AND state = 'done' AND watch_id = ? ORDER BY id`,
  hookStarted: `UPDATE runs SET hook_starts = hook_starts + 1, hook_started_at = ? WHERE id = ? AND hook_state = 'pending'`,
  setHookOutcome: `UPDATE runs SET hook_state = ?, hook_exit_code = ?, hook_signal = ?, hook_result = ?, hook_ended_at = ?
    WHERE id = ? AND hook_state = 'pending'`,
  setNotifyOutcome: `UPDATE runs SET notify_state = ?, notify_result = ?, notify_ended_at = ? WHERE id = ? AND notify_state = 'pending'`,
};

/** What a run's end was due to do, and how it went (states null: nothing was due). */
export interface RunEndRecord {
  runId: number;
  /** The command run (JSON list of words); null when none was due. */
  hookCommand: string | null;
  hookState: 'pending' | 'ok' | 'failed' | 'timeout' | null;
  /** How many times it was started: more than once when a restart ran it again. */
  hookStarts: number;
  hookStartedAt: string | null;
  /** Its exit code; null while pending, and when a signal ended it or it could not start. */
  hookExitCode: number | null;
  /** The signal that ended it (SIGKILL at its deadline…). */
  hookSignal: string | null;
  /** `exit code 3`, `timed out after 600 s; …`, `could not start: …` */
  hookResult: string | null;
  hookEndedAt: string | null;
  /** The URL as given (never print it: see util/url.ts). */
  notifyUrl: string | null;
  notifyState: 'pending' | 'sent' | 'failed' | null;
  /** `HTTP 204 after 1 attempt`, `gave up after 5 attempts: …`; never the URL. */
  notifyResult: string | null;
  notifyEndedAt: string | null;
}

/** How a hook ended. */
export interface HookOutcome {
  state: 'ok' | 'failed' | 'timeout';
  exitCode: number | null;
  signal: string | null;
  result: string;
}

/** What a run's end is due to do: its watch's settings at that moment. */
export interface RunEndDue {
  command: readonly string[];
  notifyUrl: string | null;
}

/** A new run's columns in the order both INSERTs name them, before their own. */
const newRunValues = (run: NewRun): Array<string | number> => [
  run.watchId,
  run.inputBucket,
  run.outputBucket,
  run.manifestKey,
  run.manifestEtag,
  run.manifestMtime,
  run.base,
  run.ts,
  run.processingKey,
  run.runDir,
  run.batchName,
];

export class Runs {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['runEndPending', 'runEndPendingOfWatch']);
  }

  /** The run that claimed this exact object, if any. */
  find(inputBucket: string, key: string, etag: string, mtime: string): RunRecord | undefined {
    return this.sql.find.get(inputBucket, key, etag, mtime) as RunRecord | undefined;
  }

  dirTaken(runDir: string): boolean {
    return this.sql.dirTaken.get(runDir) !== undefined;
  }

  /** Records a claim before anything is done in S3. */
  insert(run: NewRun): RunRecord {
    const { lastInsertRowid } = this.sql.insert.run(...newRunValues(run), randomUUID(), now());
    return this.get(Number(lastInsertRowid))!;
  }

  /** Records a retry of `retryOf` (`cogd retry`): claimed already, its jobs inserted next. */
  insertRetry(run: NewRun, retryOf: number): RunRecord {
    const { lastInsertRowid } = this.sql.insertRetry.run(...newRunValues(run), now(), retryOf);
    return this.get(Number(lastInsertRowid))!;
  }

  /** Another run of the same manifest name has this timestamp: its result CSVs would have the same keys. */
  tsTaken(inputBucket: string, base: string, ts: string): boolean {
    return this.sql.tsTaken.get(inputBucket, base, ts) !== undefined;
  }

  get(id: number): RunRecord | undefined {
    return this.sql.get.get(id) as RunRecord | undefined;
  }

  /** Runs that are not finished, oldest first: what a restart must resume. */
  unfinished(watchId?: number): RunRecord[] {
    if (watchId === undefined) return this.sql.unfinished.all() as RunRecord[];
    return this.sql.unfinishedOfWatch.all(watchId) as RunRecord[];
  }

  /** The runs of a batch name (`cogd rm <batch>`), oldest first. */
  byBatch(batchName: string): RunRecord[] {
    return this.sql.byBatch.all(batchName) as RunRecord[];
  }

  /** Forgets a claim that nothing was done for in the bucket (another daemon won it, or it is no manifest). */
  delete(runId: number): void {
    this.sql.delete.run(runId);
  }

  setClaimStep(runId: number, step: ClaimStep): void {
    this.sql.setClaimStep.run(step, runId);
  }

  setState(runId: number, state: RunState): void {
    this.sql.setState.run(state, runId);
  }

  /** Records why the whole manifest was rejected. */
  setError(runId: number, error: string): void {
    this.sql.setError.run(error, runId);
  }

  setPostError(runId: number, error: string | null): void {
    this.sql.setPostError.run(error, runId);
  }

  /**
   * Makes the run final. Its hook and notification (`due`, from its watch now) become pending in
   * the same statement: a crash right after it still leaves them to do.
   */
  finish(runId: number, processed: number, failed: number, due: RunEndDue = { command: [], notifyUrl: null }): void {
    const hook = due.command.length > 0;
    const notify = due.notifyUrl !== null;
    this.sql.finish.run(
      processed,
      failed,
      now(),
      hook ? JSON.stringify(due.command) : null,
      hook ? 'pending' : null,
      notify ? due.notifyUrl : null,
      notify ? 'pending' : null,
      runId,
    );
  }

  /** What the run's end was due to do and how it went (undefined: no such run). */
  runEnd(runId: number): RunEndRecord | undefined {
    return this.sql.runEnd.get(runId) as RunEndRecord | undefined;
  }

  /** Finished runs whose hook or notification is still to do (of one watch, or all), oldest first. */
  runEndPending(watchId?: number): number[] {
    if (watchId === undefined) return this.sql.runEndPending.all() as number[];
    return this.sql.runEndPendingOfWatch.all(watchId) as number[];
  }

  /** The pending hook is being started (again, after a restart, when it was started before). */
  hookStarted(runId: number): void {
    this.sql.hookStarted.run(now(), runId);
  }

  /** Records how the run's hook ended; once (only a pending hook is recorded). */
  setHookOutcome(runId: number, outcome: HookOutcome): void {
    this.sql.setHookOutcome.run(outcome.state, outcome.exitCode, outcome.signal, outcome.result, now(), runId);
  }

  /** Records how the run's notification ended; once. */
  setNotifyOutcome(runId: number, outcome: { ok: boolean; result: string }): void {
    this.sql.setNotifyOutcome.run(outcome.ok ? 'sent' : 'failed', outcome.result, now(), runId);
  }

  /** The conversion settings fixed when the run was claimed; undefined for runs claimed before. */
  conversion(runId: number): ConversionSettings | undefined {
    const json = this.sql.conversion.pluck().get(runId) as string | null | undefined;
    return json === null || json === undefined
      ? undefined
      : { ...DEFAULT_CONVERSION, ...(JSON.parse(json) as Partial<ConversionSettings>) };
  }

  setConversion(runId: number, settings: ConversionSettings): void {
    this.sql.setConversion.run(JSON.stringify(settings), runId);
  }
}
