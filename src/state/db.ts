/**
 * The state DB: one SQLite file in the home, the single source of truth. WAL mode, so readers such
 * as `cogd status` never block the daemon.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { CogdError } from '../errors.js';
import type { ClaimStep, JobState, RunState, Watch, WatchIdentity, WatchSettings } from '../types.js';

export type { WatchIdentity, WatchSettings } from '../types.js';
import { MIGRATIONS } from './migrations.js';
import { HomeSettingsTable, WatchGivenTable, type StoredSetting } from './settings.js';

export type { StoredSetting } from './settings.js';

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
}

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
}

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

/** A GDAL process a job started. */
export interface ProcessRecord {
  pid: number;
  jobId: number;
  command: string;
  /** Boot id and start time (`processStart`): with the pid, one process and no later one. */
  startTime: string;
  ownerPid: number;
}

/** What a claim records before anything is done in S3. */
export type NewRun = Pick<
  RunRecord,
  'watchId' | 'inputBucket' | 'outputBucket' | 'manifestKey' | 'manifestEtag' | 'manifestMtime' | 'base' | 'ts' | 'processingKey' | 'runDir' | 'batchName'
>;

/** One planned row. */
export type NewJob = Pick<JobRecord, 'line' | 'raw' | 'imageKey' | 'bands' | 'logName' | 'state' | 'error'>;

const now = (): string => new Date().toISOString();

const RUN_COLUMNS = `id, watch_id AS watchId, input_bucket AS inputBucket, output_bucket AS outputBucket,
  manifest_key AS manifestKey, manifest_etag AS manifestEtag, manifest_mtime AS manifestMtime, base, ts,
  processing_key AS processingKey, run_dir AS runDir, batch_name AS batchName, state, claim_step AS claimStep, claim_token AS claimToken,
  rows_total AS rowsTotal, processed, failed, error, post_error AS postError, created_at AS createdAt, finished_at AS finishedAt`;

const JOB_COLUMNS = `id, run_id AS runId, line, raw, image_key AS imageKey, bands, log_name AS logName, state,
  attempts, error, not_before AS notBefore`;

interface WatchRow {
  id: number;
  pattern: string;
  input_bucket: string;
  output_bucket: string;
  endpoint: string | null;
  access_key_file: string | null;
  secret_key_file: string | null;
  region: string;
  schedule: string;
  executor: string;
  created_at: string;
  removed_at: string | null;
  conditional_writes: number | null;
  warning: string | null;
  max_running: number;
  retries: number;
  retry_delay_ms: number;
}

function toWatch(row: WatchRow): Watch {
  return {
    id: row.id,
    pattern: row.pattern,
    inputBucket: row.input_bucket,
    outputBucket: row.output_bucket,
    schedule: row.schedule,
    s3: {
      endpoint: row.endpoint ?? undefined,
      accessKeyFile: row.access_key_file ?? undefined,
      secretKeyFile: row.secret_key_file ?? undefined,
      region: row.region,
    },
    executor: row.executor === 'condor' ? 'condor' : 'local',
    createdAt: row.created_at,
    removedAt: row.removed_at,
    conditionalWrites: row.conditional_writes === null ? null : row.conditional_writes === 1,
    warning: row.warning,
    maxRunning: row.max_running,
    retries: row.retries,
    retryDelayMs: row.retry_delay_ms,
  };
}

/** What to do about a state DB cogd cannot use; cogd never changes such a file itself. */
const DAMAGED_HINT =
  'cogd has not changed it. Restore it from a backup, or move it aside (mv cogd.db cogd.db.damaged) to start a fresh state: ' +
  'each run directory (logs/run-*/) keeps its manifest.csv and run.json, and the processing files (X-processing-<TS>.csv) of ' +
  'unfinished runs stay in the input bucket — rename those to X-raw.csv to run them again';

function damaged(file: string, why: string, cause?: unknown): CogdError {
  return new CogdError('StateDamaged', `the state DB ${file} ${why}`, { hint: DAMAGED_HINT, ...(cause === undefined ? {} : { cause }) });
}

/** Run directories under a home's logs/ (`run-<TS>`). */
function runDirCount(logs: string): number {
  try {
    return readdirSync(logs).filter((name) => name.startsWith('run-')).length;
  } catch {
    return 0;
  }
}

/**
 * Refuses, before SQLite touches it, a state file that cannot be the home's state: not SQLite, cut
 * short, or empty where the home's logs show it once held runs (a fresh state would forget them).
 * A missing file is a new home.
 */
function checkStateFile(file: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return;
  }
  if (size === 0) {
    const runs = runDirCount(path.join(path.dirname(file), 'logs'));
    if (runs > 0) {
      throw new CogdError('StateLost', `the state DB ${file} is empty, but ${path.join(path.dirname(file), 'logs')} holds ${runs} run(s): their state is lost`, {
        hint: DAMAGED_HINT,
      });
    }
    return;
  }
  const header = Buffer.alloc(100);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 100 || header.toString('latin1', 0, 16) !== 'SQLite format 3\u0000') throw damaged(file, 'is not an SQLite database');
  const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
  const pages = header.readUInt32BE(28);
  // The page count in the header is valid when its version stamp matches the change counter; with
  // a write-ahead log present, pages may still be on their way into the file.
  const sizeValid = header.readUInt32BE(24) === header.readUInt32BE(92);
  let wal = 0;
  try {
    wal = statSync(`${file}-wal`).size;
  } catch {
    // no write-ahead log
  }
  if (sizeValid && wal === 0 && pages * pageSize > size) {
    throw damaged(file, `is cut short: ${size} bytes where its header says ${pages * pageSize}`);
  }
}

const isDamage = (error: unknown): boolean =>
  error instanceof Error && 'code' in error && /^SQLITE_(CORRUPT|NOTADB)/.test(String((error as { code: unknown }).code));

export class StateDB {
  readonly db: Database.Database;

  constructor(readonly file: string) {
    checkStateFile(file);
    this.db = new Database(file, { timeout: 10_000 });
    try {
      this.db.pragma('busy_timeout = 10000');
      this.enableWal();
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (error) {
      this.db.close();
      if (isDamage(error)) throw damaged(file, `is damaged (${(error as Error).message})`, error);
      throw error;
    }
  }

  /**
   * Checks every page of the file (SQLite's quick_check): the processes that change the state call
   * it once at start, so a damaged file is refused with a clear message instead of failing later.
   */
  check(): void {
    let result: unknown;
    try {
      result = this.db.pragma('quick_check(1)', { simple: true });
    } catch (error) {
      if (isDamage(error)) throw damaged(this.file, `is damaged (${(error as Error).message})`, error);
      throw error;
    }
    if (result !== 'ok') throw damaged(this.file, `is damaged (${String(result)})`);
  }

  /**
   * WAL, so readers never block the daemon. Switching a new file to WAL can fail at once with
   * SQLITE_BUSY (no busy handler) when another process opens the same new home at that moment (two
   * `cogd start`s): try again briefly.
   */
  private enableWal(): void {
    for (let attempt = 1; ; attempt += 1) {
      try {
        this.db.pragma('journal_mode = WAL');
        return;
      } catch (error) {
        const busy = error instanceof Error && 'code' in error && String((error as { code: unknown }).code).startsWith('SQLITE_BUSY');
        if (!busy || attempt >= 100) throw error;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // a short synchronous pause
      }
    }
  }

  /**
   * Applies pending migrations. Everything happens in one IMMEDIATE transaction: two processes
   * opening a new home at once (two `cogd start`s) take turns instead of both creating tables.
   */
  private migrate(): void {
    this.db
      .transaction(() => {
        this.db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
        const applied = new Set(this.db.prepare('SELECT version FROM migrations').pluck().all() as number[]);
        for (const migration of MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          this.db.exec(migration.sql);
          this.db.prepare('INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, now());
        }
      })
      .immediate();
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, prepared once per connection: polls run these for months. */
  private statement(sql: string): Database.Statement {
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  close(): void {
    this.db.close();
  }

  // ---- the home's settings

  private homeSettingsTable: HomeSettingsTable | undefined;

  /** The home settings given so far, by name. */
  homeSettings(): Record<string, StoredSetting> {
    this.homeSettingsTable ??= new HomeSettingsTable(this.db);
    return this.homeSettingsTable.all();
  }

  storeHomeSettings(values: Readonly<Record<string, unknown>>): void {
    this.homeSettingsTable ??= new HomeSettingsTable(this.db);
    this.homeSettingsTable.store(values);
  }

  private watchGivenTable: WatchGivenTable | undefined;

  /** When each setting of a watch was last given by a flag, by name. */
  watchGiven(watchId: number): Record<string, string> {
    this.watchGivenTable ??= new WatchGivenTable(this.db);
    return this.watchGivenTable.of(watchId);
  }

  markWatchGiven(watchId: number, names: readonly string[]): void {
    this.watchGivenTable ??= new WatchGivenTable(this.db);
    this.watchGivenTable.mark(watchId, names);
  }

  // ---- watches

  /** The live watch with this pattern, buckets and endpoint, if there is one. */
  findWatch(identity: WatchIdentity): Watch | undefined {
    const id = this.statement(
      `SELECT id FROM watches WHERE removed_at IS NULL AND pattern = ? AND input_bucket = ? AND output_bucket = ? AND IFNULL(endpoint, '') = ?`,
    )
      .pluck()
      .get(identity.pattern, identity.inputBucket, identity.outputBucket, identity.endpoint ?? '') as number | undefined;
    return id === undefined ? undefined : this.watch(id);
  }

  /** Stores a watch's settings: the live watch with this identity is updated, or a new one created. */
  saveWatch(identity: WatchIdentity, settings: WatchSettings): Watch {
    const values = [
      settings.accessKeyFile ?? null,
      settings.secretKeyFile ?? null,
      settings.region,
      settings.schedule,
      settings.maxRunning,
      settings.retries,
      settings.retryDelayMs,
      settings.executor,
    ];
    const existing = this.findWatch(identity);
    if (existing !== undefined) {
      this.statement(
        `UPDATE watches SET access_key_file = ?, secret_key_file = ?, region = ?, schedule = ?, max_running = ?,
           retries = ?, retry_delay_ms = ?, executor = ? WHERE id = ?`,
      ).run(...values, existing.id);
      return this.watch(existing.id)!;
    }
    const id = this.statement(
      `INSERT INTO watches (pattern, input_bucket, output_bucket, endpoint, access_key_file, secret_key_file, region,
         schedule, max_running, retries, retry_delay_ms, executor, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(identity.pattern, identity.inputBucket, identity.outputBucket, identity.endpoint ?? null, ...values, now()).lastInsertRowid;
    return this.watch(Number(id))!;
  }

  watch(id: number): Watch | undefined {
    const row = this.db.prepare('SELECT * FROM watches WHERE id = ?').get(id) as WatchRow | undefined;
    return row === undefined ? undefined : toWatch(row);
  }

  // ---- runs

  /** The run that claimed this exact object, if any. */
  findRun(inputBucket: string, key: string, etag: string, mtime: string): RunRecord | undefined {
    return this.statement(`SELECT ${RUN_COLUMNS} FROM runs WHERE input_bucket = ? AND manifest_key = ? AND manifest_etag = ? AND manifest_mtime = ?`)
      .get(inputBucket, key, etag, mtime) as RunRecord | undefined;
  }

  runDirTaken(runDir: string): boolean {
    return this.db.prepare('SELECT 1 FROM runs WHERE run_dir = ?').get(runDir) !== undefined;
  }

  /** Records a claim before anything is done in S3. */
  insertRun(run: NewRun): RunRecord {
    const id = Number(
      this.db
        .prepare(
          `INSERT INTO runs (watch_id, input_bucket, output_bucket, manifest_key, manifest_etag, manifest_mtime, base, ts,
             processing_key, run_dir, batch_name, state, claim_step, claim_token, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'claiming', 'claimed', ?, ?)`,
        )
        .run(
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
          randomUUID(),
          now(),
        ).lastInsertRowid,
    );
    return this.run(id)!;
  }

  run(id: number): RunRecord | undefined {
    return this.db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`).get(id) as RunRecord | undefined;
  }

  /** Runs that are not finished, oldest first: what a restart must resume. */
  unfinishedRuns(watchId?: number): RunRecord[] {
    if (watchId === undefined) {
      return this.db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' ORDER BY id`).all() as RunRecord[];
    }
    return this.db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' AND watch_id = ? ORDER BY id`).all(watchId) as RunRecord[];
  }

  /** Forgets a claim that nothing was done for in the bucket (another daemon won it, or it is no manifest). */
  deleteRun(runId: number): void {
    this.db.prepare(`DELETE FROM runs WHERE id = ? AND state = 'claiming' AND claim_step IN ('claimed', 'downloaded')`).run(runId);
  }

  setConditionalWrites(watchId: number, enforced: boolean): void {
    this.db.prepare('UPDATE watches SET conditional_writes = ? WHERE id = ?').run(enforced ? 1 : 0, watchId);
  }

  setClaimStep(runId: number, step: ClaimStep): void {
    this.db.prepare('UPDATE runs SET claim_step = ? WHERE id = ?').run(step, runId);
  }

  setRunState(runId: number, state: RunState): void {
    this.db.prepare('UPDATE runs SET state = ? WHERE id = ?').run(state, runId);
  }

  /** Records why the whole manifest was rejected. */
  setRunError(runId: number, error: string): void {
    this.db.prepare('UPDATE runs SET error = ? WHERE id = ?').run(error, runId);
  }

  setPostError(runId: number, error: string | null): void {
    this.db.prepare('UPDATE runs SET post_error = ? WHERE id = ?').run(error, runId);
  }

  finishRun(runId: number, processed: number, failed: number): void {
    this.db
      .prepare(`UPDATE runs SET state = 'done', processed = ?, failed = ?, post_error = NULL, finished_at = ? WHERE id = ?`)
      .run(processed, failed, now(), runId);
  }

  /** Stores the plan of a run: every row, valid or not, in one transaction. */
  insertJobs(runId: number, jobs: NewJob[]): void {
    const insert = this.db.prepare(
      `INSERT INTO jobs (run_id, line, raw, image_key, bands, log_name, state, error, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const stamp = now();
    this.db.transaction(() => {
      for (const job of jobs) {
        insert.run(runId, job.line, job.raw, job.imageKey, job.bands, job.logName, job.state, job.error, stamp);
      }
      this.db.prepare(`UPDATE runs SET rows_total = ?, state = 'running' WHERE id = ?`).run(jobs.length, runId);
    })();
  }

  jobs(runId: number): JobRecord[] {
    return this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? ORDER BY line`).all(runId) as JobRecord[];
  }

  /**
   * Jobs left running by a process that died go back to idle and run again — except those queued
   * in HTCondor (they have a cluster): they live on outside cogd and are re-attached.
   */
  requeueRunning(runId: number): number {
    return this.db
      .prepare(`UPDATE jobs SET state = 'idle', updated_at = ? WHERE run_id = ? AND state = 'running' AND condor_cluster IS NULL`)
      .run(now(), runId).changes;
  }

  /**
   * Records a job's state. `endAttempt` marks the end of an attempt (final, or failed and to be
   * retried): the attempt's HTCondor submission is forgotten in the same write, so a restart never
   * mistakes a finished attempt for one to re-attach to.
   */
  setJobState(jobId: number, state: JobState, fields: { error?: string | null; attempts?: number; notBefore?: number; endAttempt?: boolean } = {}): void {
    this.statement(
      `UPDATE jobs SET state = ?, error = COALESCE(?, error), attempts = COALESCE(?, attempts),
         not_before = COALESCE(?, not_before), updated_at = ?,
         condor_batch = CASE WHEN ? THEN NULL ELSE condor_batch END,
         condor_cluster = CASE WHEN ? THEN NULL ELSE condor_cluster END,
         condor_proc = CASE WHEN ? THEN NULL ELSE condor_proc END,
         condor_result = CASE WHEN ? THEN NULL ELSE condor_result END
       WHERE id = ?`,
    ).run(state, fields.error ?? null, fields.attempts ?? null, fields.notBefore ?? null, now(), ...Array(4).fill(fields.endAttempt === true ? 1 : 0), jobId);
  }

  // ---- HTCondor submissions (the condor executor)

  /** The HTCondor submission of a job's current attempt, if it has one. */
  condorSubmission(jobId: number): CondorSubmission | undefined {
    const row = this.statement(
      `SELECT id AS jobId, run_id AS runId, state, condor_batch AS batch, condor_cluster AS cluster, condor_proc AS proc, condor_result AS result
       FROM jobs WHERE id = ? AND condor_batch IS NOT NULL`,
    ).get(jobId) as CondorSubmission | undefined;
    return row;
  }

  /**
   * Reserves the run's next batch number and records, before condor_submit runs, which proc of
   * that batch each job will be. Returns the batch number.
   */
  recordCondorBatch(runId: number, jobIds: number[]): number {
    return this.db.transaction(() => {
      const batch = (this.db.prepare('UPDATE runs SET condor_batches = condor_batches + 1 WHERE id = ? RETURNING condor_batches').pluck().get(runId) as number);
      const update = this.statement(
        'UPDATE jobs SET condor_batch = ?, condor_proc = ?, condor_cluster = NULL, condor_result = NULL WHERE id = ?',
      );
      jobIds.forEach((jobId, proc) => update.run(batch, proc, jobId));
      return batch;
    })();
  }

  /** The cluster a batch became (from condor_submit's output, or its submit events). */
  setCondorCluster(runId: number, batch: number, cluster: number): number {
    return this.statement('UPDATE jobs SET condor_cluster = ? WHERE run_id = ? AND condor_batch = ? AND condor_cluster IS NULL')
      .run(cluster, runId, batch).changes;
  }

  /** Forgets a batch that never reached the queue (condor_submit failed). */
  clearCondorBatch(runId: number, batch: number): void {
    this.statement('UPDATE jobs SET condor_batch = NULL, condor_proc = NULL WHERE run_id = ? AND condor_batch = ? AND condor_cluster IS NULL')
      .run(runId, batch);
  }

  /** The job that is proc `proc` of `cluster` in this run's current submissions. */
  condorJob(runId: number, cluster: number, proc: number): CondorSubmission | undefined {
    return this.statement(
      `SELECT id AS jobId, run_id AS runId, state, condor_batch AS batch, condor_cluster AS cluster, condor_proc AS proc, condor_result AS result
       FROM jobs WHERE run_id = ? AND condor_cluster = ? AND condor_proc = ?`,
    ).get(runId, cluster, proc) as CondorSubmission | undefined;
  }

  /** Submissions of a run whose batch was recorded but whose cluster is not known (a crash during condor_submit). */
  unconfirmedCondorBatches(runId: number): number[] {
    return this.db
      .prepare('SELECT DISTINCT condor_batch FROM jobs WHERE run_id = ? AND condor_batch IS NOT NULL AND condor_cluster IS NULL')
      .pluck()
      .all(runId) as number[];
  }

  /** Whether any job of the run has an HTCondor submission. */
  hasCondorSubmissions(runId: number): boolean {
    return this.statement('SELECT 1 FROM jobs WHERE run_id = ? AND condor_batch IS NOT NULL LIMIT 1').get(runId) !== undefined;
  }

  anyCondorSubmissions(jobIds: number[]): boolean {
    return jobIds.some((id) => this.condorSubmission(id)?.cluster != null);
  }

  /** Procs of a cluster still queued as far as cogd knows (for condor_rm of a whole cluster). */
  liveCondorProcs(cluster: number): number[] {
    return this.statement(
      `SELECT condor_proc FROM jobs WHERE condor_cluster = ? AND condor_result IS NULL AND state IN ('idle', 'running', 'held')`,
    ).pluck().all(cluster) as number[];
  }

  jobError(jobId: number): string | null {
    return (this.statement('SELECT error FROM jobs WHERE id = ?').pluck().get(jobId) as string | null | undefined) ?? null;
  }

  /** A job's progress while HTCondor has it (never over a final state). */
  setCondorProgress(jobId: number, state: 'idle' | 'running' | 'held', error?: string): void {
    this.statement(
      `UPDATE jobs SET state = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ? AND state IN ('idle', 'running', 'held')`,
    ).run(state, error ?? null, now(), jobId);
  }

  /** What the event log says the attempt ended with: `ok`, or the reason it failed. */
  setCondorResult(jobId: number, result: string): void {
    this.statement('UPDATE jobs SET condor_result = ? WHERE id = ?').run(result, jobId);
  }

  condorOffset(runId: number): number {
    return (this.statement('SELECT condor_offset FROM runs WHERE id = ?').pluck().get(runId) as number | undefined) ?? 0;
  }

  setCondorOffset(runId: number, offset: number): void {
    this.statement('UPDATE runs SET condor_offset = ? WHERE id = ?').run(offset, runId);
  }

  /** Runs `work` in one transaction (the event follower applies a chunk of events and its offset together). */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  /** Like transaction(), taking the write lock at once: for read-then-write work two processes may do together. */
  writeTransaction<T>(work: () => T): T {
    return this.db.transaction(work).immediate();
  }

  /** How many jobs of a run are in each state. */
  jobCounts(runId: number): Record<JobState, number> {
    const counts: Record<JobState, number> = { idle: 0, running: 0, held: 0, converted: 0, failed: 0, removed: 0 };
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs WHERE run_id = ? GROUP BY state').all(runId) as Array<{ state: JobState; n: number }>;
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  // ---- watches, for the daemon and `cogd rm`

  liveWatches(): Watch[] {
    return (this.db.prepare('SELECT * FROM watches WHERE removed_at IS NULL ORDER BY id').all() as WatchRow[]).map(toWatch);
  }

  /** Stops a watch: no more polls. Its runs already claimed go on. */
  removeWatch(watchId: number): boolean {
    return this.db.prepare('UPDATE watches SET removed_at = ? WHERE id = ? AND removed_at IS NULL').run(now(), watchId).changes > 0;
  }

  // ---- removal requests: recorded by `cogd rm`, applied by whoever executes the run

  requestRunRemoval(runId: number): boolean {
    return this.db.prepare(`UPDATE runs SET remove_requested = 1 WHERE id = ? AND state != 'done'`).run(runId).changes > 0;
  }

  requestJobRemoval(jobId: number): boolean {
    return this.db.prepare(`UPDATE jobs SET remove_requested = 1 WHERE id = ? AND state IN ('idle', 'running', 'held')`).run(jobId).changes > 0;
  }

  /** Unfinished jobs whose removal was requested, by job or by run. */
  jobsToRemove(): number[] {
    return this.db
      .prepare(
        `SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id
         WHERE j.state IN ('idle', 'running', 'held') AND (j.remove_requested = 1 OR r.remove_requested = 1)`,
      )
      .pluck()
      .all() as number[];
  }

  /** Marks jobs removed where no process is executing them. */
  markRemoved(jobIds: number[]): void {
    const update = this.db.prepare(`UPDATE jobs SET state = 'removed', error = 'removed by user', updated_at = ?,
         condor_batch = NULL, condor_cluster = NULL, condor_proc = NULL, condor_result = NULL
       WHERE id = ? AND state IN ('idle', 'running', 'held')`);
    const stamp = now();
    this.db.transaction(() => {
      for (const id of jobIds) update.run(stamp, id);
    })();
  }

  runOfJob(jobId: number): number | undefined {
    return this.db.prepare('SELECT run_id FROM jobs WHERE id = ?').pluck().get(jobId) as number | undefined;
  }

  jobByLine(runId: number, line: number): JobRecord | undefined {
    return this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? AND line = ?`).get(runId, line) as JobRecord | undefined;
  }

  runsByBatch(batchName: string): RunRecord[] {
    return this.db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE batch_name = ? ORDER BY id`).all(batchName) as RunRecord[];
  }

  // ---- GDAL processes of jobs (so a restart can stop those a killed process left behind)

  recordProcess(proc: ProcessRecord): void {
    this.statement('INSERT OR REPLACE INTO processes (pid, job_id, command, start_time, owner_pid, started_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(proc.pid, proc.jobId, proc.command, proc.startTime, proc.ownerPid, now());
  }

  forgetProcess(pid: number): void {
    this.statement('DELETE FROM processes WHERE pid = ?').run(pid);
  }

  /** Processes recorded by cogd processes other than `ownerPid`. */
  leftProcesses(ownerPid: number): ProcessRecord[] {
    return this.statement(
      'SELECT pid, job_id AS jobId, command, start_time AS startTime, owner_pid AS ownerPid FROM processes WHERE owner_pid != ? ORDER BY pid',
    ).all(ownerPid) as ProcessRecord[];
  }

  // ---- objects a pattern matched that are not manifests

  isSkipped(bucket: string, object: { key: string; etag: string; lastModified: string }): boolean {
    return this.statement('SELECT 1 FROM skipped_objects WHERE bucket = ? AND key = ? AND etag = ? AND mtime = ?')
      .get(bucket, object.key, object.etag, object.lastModified) !== undefined;
  }

  recordSkipped(bucket: string, object: { key: string; etag: string; lastModified: string }, reason: string): void {
    this.statement('INSERT OR IGNORE INTO skipped_objects (bucket, key, etag, mtime, reason, skipped_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(bucket, object.key, object.etag, object.lastModified, reason, now());
  }

  /** What a user should know about a watch (shown by `cogd status`); null clears it. */
  setWatchWarning(watchId: number, warning: string | null): void {
    this.statement('UPDATE watches SET warning = ? WHERE id = ?').run(warning, watchId);
  }

  // ---- status

  /** Runs not finished, plus runs finished since `since` (ISO 8601). */
  recentRuns(since: string): RunRecord[] {
    return this.db
      .prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE state != 'done' OR finished_at >= ? ORDER BY id`)
      .all(since) as RunRecord[];
  }

  /** Jobs of the given runs with their state, line and last error (for `status --jobs`). */
  jobsOfRuns(runIds: number[]): JobRecord[] {
    const select = this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE run_id = ? ORDER BY line`);
    return runIds.flatMap((id) => select.all(id) as JobRecord[]);
  }
}
