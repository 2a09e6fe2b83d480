/**
 * The state DB: one SQLite file in the home, the single source of truth. WAL mode, so readers such
 * as `cogd status` never block the daemon.
 *
 * StateDB is the one door to it. Its SQL lives in one module per concern — watches, runs, jobs,
 * condor (HTCondor bookkeeping), slurm (Slurm bookkeeping), removals, processes (GDAL), skipped (objects that are not
 * manifests), status (what `cogd status` reads), settings (the home's, and when each watch
 * setting was given) — each preparing its statements once, when the
 * connection opens (statements.ts); opening and integrity are in open.ts. Methods are documented
 * where their SQL is.
 */
import type Database from 'better-sqlite3';
import type {
  ClaimStep,
  ConversionSettings,
  JobState,
  RunState,
  Watch,
  WatchIdentity,
  WatchSettings,
} from '../types.js';
import { CondorBookkeeping, type CondorSubmission } from './condor.js';
import { Jobs, type JobRecord, type JobStateFields, type NewJob } from './jobs.js';
import { asDamaged, openState, openStateReadOnly, quickCheck } from './open.js';
import { GdalProcesses, type ProcessRecord } from './processes.js';
import { Holds, type ExecutorJobHold, type Hold, type HeldEntry } from './holds.js';
import { Removals } from './removals.js';
import { Runs, type HookOutcome, type NewRun, type RunEndDue, type RunEndRecord, type RunRecord } from './runs.js';
import { HomeSettingsTable, WatchGivenTable, type StoredSetting } from './settings.js';
import { SkippedObjects, type ListedObject } from './skipped.js';
import { SlurmBookkeeping, type SlurmSubmission } from './slurm.js';
import {
  StatusQueries,
  type ExecutorHeld,
  type HoldReason,
  type JobRow,
  type JobsInState,
  type LiveJobCount,
} from './status.js';
import { Watches } from './watches.js';

export type { WatchIdentity, WatchSettings } from '../types.js';
export type { CondorSubmission } from './condor.js';
export type { JobRecord, JobStateFields, NewJob } from './jobs.js';
export type { ProcessRecord } from './processes.js';
export type { SlurmSubmission } from './slurm.js';
export type { HookOutcome, NewRun, RunEndDue, RunEndRecord, RunRecord } from './runs.js';
export type { StoredSetting } from './settings.js';
export type { ExecutorJobHold, Hold, HeldEntry } from './holds.js';
export type { ExecutorHeld, HoldReason, JobRow, JobsInState, LiveJobCount } from './status.js';

/** The concerns, each with its statements prepared on this connection. */
function concerns(db: Database.Database) {
  return {
    watches: new Watches(db),
    runs: new Runs(db),
    jobs: new Jobs(db),
    condor: new CondorBookkeeping(db),
    slurm: new SlurmBookkeeping(db),
    removals: new Removals(db),
    processes: new GdalProcesses(db),
    skipped: new SkippedObjects(db),
    status: new StatusQueries(db),
    homeSettings: new HomeSettingsTable(db),
    watchGiven: new WatchGivenTable(db),
    holds: new Holds(db),
  };
}

/** A job state change made by setJobStateSoon, kept until its transaction commits. */
type SoonWrite = [jobId: number, state: JobState, fields: JobStateFields];

export class StateDB {
  private readonly db: Database.Database;
  readonly #concerns: ReturnType<typeof concerns>;
  /**
   * The job state changes of this turn of the event loop (setJobStateSoon), in one open transaction;
   * undefined when none is open.
   */
  #soon: SoonWrite[] | undefined;
  /** Why the last end-of-turn commit failed: thrown by the next setJobStateSoon, where the scheduler writes. */
  #commitError: Error | undefined;
  /** Commits at the end of the turn (setImmediate) and at process exit. */
  readonly #commitAtTurnEnd = (): void => {
    try {
      this.commitSoon();
    } catch (error) {
      this.#commitError = error instanceof Error ? error : new Error(String(error));
    }
  };

  /** The SQL of each concern; a job state change waiting for its commit is committed first. */
  private get of(): ReturnType<typeof concerns> {
    if (this.#soon !== undefined) this.commitSoon();
    return this.#concerns;
  }

  /** Opens (creating, migrating) the state file; or takes a connection opened otherwise (`readOnly`). */
  constructor(
    readonly file: string,
    connection?: Database.Database,
  ) {
    this.db = connection ?? openState(file);
    try {
      this.#concerns = concerns(this.db);
    } catch (error) {
      this.db.close();
      throw asDamaged(file, error);
    }
  }

  /**
   * The home's state for reading only, changing nothing in the home (see openStateReadOnly);
   * undefined where the home has none. Its writing methods fail with SQLITE_READONLY.
   */
  static readOnly(file: string): StateDB | undefined {
    const connection = openStateReadOnly(file);
    return connection === undefined ? undefined : new StateDB(file, connection);
  }

  /** Checks every page of the file once at start (quick_check); see open.ts. */
  check(): void {
    this.commitSoon();
    quickCheck(this.db, this.file);
  }

  close(): void {
    this.commitSoon();
    this.db.close();
  }

  /** Runs `work` in one transaction (the event follower applies a chunk of events and its offset together). */
  transaction<T>(work: () => T): T {
    this.commitSoon();
    return this.db.transaction(work)();
  }

  /** Like transaction(), taking the write lock at once: for read-then-write work two processes may do together. */
  writeTransaction<T>(work: () => T): T {
    this.commitSoon();
    return this.db.transaction(work).immediate();
  }

  // ---- watches (watches.ts)

  findWatch(identity: WatchIdentity): Watch | undefined {
    return this.of.watches.find(identity);
  }
  saveWatch(identity: WatchIdentity, settings: WatchSettings): Watch {
    return this.of.watches.save(identity, settings);
  }
  watch(id: number): Watch | undefined {
    return this.of.watches.get(id);
  }
  liveWatches(): Watch[] {
    return this.of.watches.live();
  }
  removeWatch(watchId: number): boolean {
    return this.of.watches.remove(watchId);
  }
  setConditionalWrites(watchId: number, enforced: boolean): void {
    this.of.watches.setConditionalWrites(watchId, enforced);
  }
  setWatchWarning(watchId: number, warning: string | null): void {
    this.of.watches.setWarning(watchId, warning);
  }
  setWatchPolled(watchId: number, error: string | null): void {
    this.of.watches.setPolled(watchId, error);
  }
  lastPoll(watchId: number): { at: string | null; error: string | null } {
    return this.of.watches.lastPoll(watchId);
  }

  // ---- settings (settings.ts)

  homeSettings(): Record<string, StoredSetting> {
    return this.of.homeSettings.all();
  }
  storeHomeSettings(values: Readonly<Record<string, unknown>>): void {
    this.of.homeSettings.store(values);
  }
  watchGiven(watchId: number): Record<string, string> {
    return this.of.watchGiven.of(watchId);
  }
  markWatchGiven(watchId: number, names: readonly string[]): void {
    this.of.watchGiven.mark(watchId, names);
  }

  // ---- holds (holds.ts)

  hold(kind: 'watch' | 'run' | 'job', id: number, hold: Hold): boolean {
    return this.of.holds.hold(kind, id, hold);
  }
  release(kind: 'watch' | 'run' | 'job', id: number): boolean {
    return this.of.holds.release(kind, id);
  }
  heldWatches(): Map<number, Hold> {
    return this.of.holds.watches();
  }
  heldRuns(): Map<number, Hold> {
    return this.of.holds.runs();
  }
  heldJobs(): Array<{ id: number; runId: number; line: number; hold: Hold }> {
    return this.of.holds.jobs();
  }
  held(): HeldEntry[] {
    return this.of.holds.all();
  }
  executorJobHolds(): ExecutorJobHold[] {
    return this.of.holds.inExecutors();
  }
  setExecutorHoldAsked(jobIds: readonly number[], asked: boolean): void {
    this.transaction(() => this.of.holds.setAsked(jobIds, asked));
  }

  // ---- runs (runs.ts)

  findRun(inputBucket: string, key: string, etag: string, mtime: string): RunRecord | undefined {
    return this.of.runs.find(inputBucket, key, etag, mtime);
  }
  runDirTaken(runDir: string): boolean {
    return this.of.runs.dirTaken(runDir);
  }
  insertRun(run: NewRun): RunRecord {
    return this.of.runs.insert(run);
  }
  run(id: number): RunRecord | undefined {
    return this.of.runs.get(id);
  }
  /** Records a retry run with its settings and jobs, all or nothing (`cogd retry`). */
  insertRetryRun(run: NewRun, retryOf: number, conversion: ConversionSettings, jobs: NewJob[]): RunRecord {
    return this.transaction(() => {
      const inserted = this.of.runs.insertRetry(run, retryOf);
      this.of.runs.setConversion(inserted.id, conversion);
      this.of.jobs.insert(inserted.id, jobs);
      return this.of.runs.get(inserted.id)!;
    });
  }
  runTsTaken(inputBucket: string, base: string, ts: string): boolean {
    return this.of.runs.tsTaken(inputBucket, base, ts);
  }
  unfinishedRuns(watchId?: number): RunRecord[] {
    return this.of.runs.unfinished(watchId);
  }
  runsByBatch(batchName: string): RunRecord[] {
    return this.of.runs.byBatch(batchName);
  }
  deleteRun(runId: number): void {
    this.of.runs.delete(runId);
  }
  setClaimStep(runId: number, step: ClaimStep): void {
    this.of.runs.setClaimStep(runId, step);
  }
  setRunState(runId: number, state: RunState): void {
    this.of.runs.setState(runId, state);
  }
  setRunError(runId: number, error: string): void {
    this.of.runs.setError(runId, error);
  }
  setPostError(runId: number, error: string | null): void {
    this.of.runs.setPostError(runId, error);
  }
  runConversion(runId: number): ConversionSettings | undefined {
    return this.of.runs.conversion(runId);
  }
  setRunConversion(runId: number, settings: ConversionSettings): void {
    this.of.runs.setConversion(runId, settings);
  }
  /**
   * Makes the run final; what its watch's --on-run-end and --notify-url say now becomes due in the
   * same statement.
   */
  finishRun(runId: number, processed: number, failed: number): void {
    this.writeTransaction(() => {
      const watchId = this.of.runs.get(runId)?.watchId;
      const settings = watchId === undefined ? undefined : this.of.watches.get(watchId)?.runEnd;
      const due: RunEndDue = { command: settings?.onRunEnd ?? [], notifyUrl: settings?.notifyUrl ?? null };
      this.of.runs.finish(runId, processed, failed, due);
    });
  }

  // ---- run-end hooks and notifications (runs.ts)

  runEnd(runId: number): RunEndRecord | undefined {
    return this.of.runs.runEnd(runId);
  }
  runEndPending(watchId?: number): number[] {
    return this.of.runs.runEndPending(watchId);
  }
  hookStarted(runId: number): void {
    this.of.runs.hookStarted(runId);
  }
  setHookOutcome(runId: number, outcome: HookOutcome): void {
    this.of.runs.setHookOutcome(runId, outcome);
  }
  setNotifyOutcome(runId: number, outcome: { ok: boolean; result: string }): void {
    this.of.runs.setNotifyOutcome(runId, outcome);
  }

  // ---- jobs (jobs.ts)

  insertJobs(runId: number, jobs: NewJob[]): void {
    this.of.jobs.insert(runId, jobs);
  }
  jobs(runId: number): JobRecord[] {
    return this.of.jobs.ofRun(runId);
  }
  /** Up to `limit` jobs of a run after manifest line `afterLine`, in manifest order (read in pages). */
  jobsAfter(runId: number, afterLine: number, limit: number): JobRecord[] {
    return this.of.jobs.pageAfter(runId, afterLine, limit);
  }
  /** Up to `limit` jobs not final yet and due by `now` (ms), after `afterLine`: the scheduler's next page. */
  liveJobsAfter(runId: number, afterLine: number, now: number, limit: number): JobRecord[] {
    return this.of.jobs.liveAfter(runId, afterLine, now, limit);
  }
  /** When the next job of the run still in its back-off is due (ms after the epoch), if any. */
  nextJobDue(runId: number, now: number): number | undefined {
    return this.of.jobs.nextWake(runId, now);
  }
  /** How many jobs of the run are not final yet. */
  liveJobCount(runId: number): number {
    return this.of.jobs.live(runId);
  }
  job(jobId: number): JobRecord | undefined {
    return this.of.jobs.get(jobId);
  }
  jobByLine(runId: number, line: number): JobRecord | undefined {
    return this.of.jobs.byLine(runId, line);
  }
  runOfJob(jobId: number): number | undefined {
    return this.of.jobs.runOf(jobId);
  }
  jobError(jobId: number): string | null {
    return this.of.jobs.error(jobId);
  }
  jobCounts(runId: number): Record<JobState, number> {
    return this.of.jobs.counts(runId);
  }
  requeueRunning(runId: number): number {
    return this.of.jobs.requeueRunning(runId);
  }
  setJobState(jobId: number, state: JobState, fields: JobStateFields = {}): void {
    this.of.jobs.setState(jobId, state, fields);
  }

  /**
   * Like setJobState, committed with the other changes of this turn of the event loop: at its end
   * (setImmediate), or before anything else uses the state — another write is never reordered
   * before it, or left waiting for it — or at close and process exit. For the scheduler's changes
   * of a job's own state, where a crash before the commit costs no more than a crash a moment
   * earlier: the job runs again (its outputs are idempotent). One commit per turn instead of one per
   * change: a commit writes its pages to the WAL, the cost of most of a change on its own (see the
   * README, Big runs). Inside a transaction someone else opened, it is part of that one.
   */
  setJobStateSoon(jobId: number, state: JobState, fields: JobStateFields = {}): void {
    if (this.#commitError !== undefined) {
      const error = this.#commitError;
      this.#commitError = undefined;
      throw error;
    }
    if (this.#soon === undefined) {
      if (this.db.inTransaction) {
        this.#concerns.jobs.setState(jobId, state, fields);
        return;
      }
      this.db.exec('BEGIN IMMEDIATE');
      this.#soon = [];
      setImmediate(this.#commitAtTurnEnd);
      process.once('exit', this.#commitAtTurnEnd);
    }
    try {
      this.#concerns.jobs.setState(jobId, state, fields);
    } catch (error) {
      // The change fails alone, as setJobState's would; the others of this turn stay.
      this.commitSoon();
      throw error;
    }
    this.#soon.push([jobId, state, fields]);
  }

  /**
   * Commits the job state changes setJobStateSoon made. Should the commit itself fail (a full disk),
   * they are made again one by one, each committed alone, as setJobState would: the first that
   * fails throws, as it would have where it was made.
   */
  commitSoon(): void {
    const soon = this.#soon;
    if (soon === undefined) return;
    this.#soon = undefined;
    process.removeListener('exit', this.#commitAtTurnEnd);
    try {
      this.db.exec('COMMIT');
      return;
    } catch {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    }
    for (const [jobId, state, fields] of soon) this.#concerns.jobs.setState(jobId, state, fields);
  }

  // ---- HTCondor submissions (condor.ts)

  condorSubmission(jobId: number): CondorSubmission | undefined {
    return this.of.condor.submission(jobId);
  }
  recordCondorBatch(runId: number, jobIds: number[], procs?: number[]): number {
    return this.of.condor.recordBatch(runId, jobIds, procs);
  }
  setCondorCluster(runId: number, batch: number, cluster: number): number {
    return this.of.condor.setCluster(runId, batch, cluster);
  }
  clearCondorBatch(runId: number, batch: number): void {
    this.of.condor.clearBatch(runId, batch);
  }
  condorJob(runId: number, cluster: number, proc: number): CondorSubmission | undefined {
    return this.of.condor.jobs(runId, cluster, proc)[0];
  }
  condorJobs(runId: number, cluster: number, proc: number): CondorSubmission[] {
    return this.of.condor.jobs(runId, cluster, proc);
  }
  unconfirmedCondorBatches(runId: number): number[] {
    return this.of.condor.unconfirmedBatches(runId);
  }
  hasCondorSubmissions(runId: number): boolean {
    return this.of.condor.hasSubmissions(runId);
  }
  anyCondorSubmissions(jobIds: number[]): boolean {
    return this.of.condor.anyQueued(jobIds);
  }
  liveCondorProcs(cluster: number): number[] {
    return this.of.condor.liveProcs(cluster);
  }
  setCondorProgress(jobId: number, state: 'idle' | 'running' | 'held', error?: string): void {
    this.of.condor.setProgress(jobId, state, error);
  }
  setCondorResult(jobId: number, result: string): void {
    this.of.condor.setResult(jobId, result);
  }
  condorOffset(runId: number): number {
    return this.of.condor.offset(runId);
  }
  setCondorOffset(runId: number, offset: number): void {
    this.of.condor.setOffset(runId, offset);
  }

  // ---- Slurm submissions (slurm.ts)

  slurmSubmission(jobId: number): SlurmSubmission | undefined {
    return this.of.slurm.submission(jobId);
  }
  recordSlurmBatch(runId: number, jobIds: number[], tasks?: number[]): number {
    return this.of.slurm.recordBatch(runId, jobIds, tasks);
  }
  setSlurmArray(runId: number, batch: number, arrayId: number): number {
    return this.of.slurm.setArray(runId, batch, arrayId);
  }
  clearSlurmBatch(runId: number, batch: number): void {
    this.of.slurm.clearBatch(runId, batch);
  }
  unconfirmedSlurmBatches(runId: number): number[] {
    return this.of.slurm.unconfirmedBatches(runId);
  }
  hasSlurmSubmissions(runId: number): boolean {
    return this.of.slurm.hasSubmissions(runId);
  }
  anySlurmSubmissions(jobIds: readonly number[]): boolean {
    return this.of.slurm.anyQueued(jobIds);
  }
  liveSlurmSubmissions(runId: number): SlurmSubmission[] {
    return this.of.slurm.live(runId);
  }
  liveSlurmTasks(arrayId: number): number[] {
    return this.of.slurm.liveTasks(arrayId);
  }
  slurmArraysOfRun(runId: number): number[] {
    return this.of.slurm.arraysOfRun(runId);
  }
  setSlurmProgress(jobId: number, state: 'idle' | 'running' | 'held', note: string | null, error?: string): void {
    this.of.slurm.setProgress(jobId, state, note, error);
  }
  setSlurmResult(jobId: number, result: string): void {
    this.of.slurm.setResult(jobId, result);
  }
  requeueSlurmJob(jobId: number, mem: string | undefined): void {
    this.of.slurm.requeue(jobId, mem);
  }
  forgetSlurmSubmission(jobId: number): void {
    this.of.slurm.forget(jobId);
  }
  slurmPendingNotes(runId: number): Array<{ reason: string; jobs: number }> {
    return this.of.slurm.pendingNotes(runId);
  }

  // ---- removal requests (removals.ts)

  requestRunRemoval(runId: number): boolean {
    return this.of.removals.requestRun(runId);
  }
  requestJobRemoval(jobId: number): boolean {
    return this.of.removals.requestJob(jobId);
  }
  jobsToRemove(): number[] {
    return this.of.removals.jobsToRemove();
  }
  markRemoved(jobIds: number[]): void {
    this.of.removals.markRemoved(jobIds);
  }

  // ---- GDAL processes of jobs (processes.ts)

  recordProcess(proc: ProcessRecord): void {
    this.of.processes.record(proc);
  }
  forgetProcess(pid: number): void {
    this.of.processes.forget(pid);
  }
  leftProcesses(ownerPid: number): ProcessRecord[] {
    return this.of.processes.leftBehind(ownerPid);
  }

  // ---- objects a pattern matched that are not manifests (skipped.ts)

  isSkipped(bucket: string, object: ListedObject): boolean {
    return this.of.skipped.has(bucket, object);
  }
  recordSkipped(bucket: string, object: ListedObject, reason: string): void {
    this.of.skipped.record(bucket, object, reason);
  }

  // ---- status (status.ts)

  recentRuns(since: string): RunRecord[] {
    return this.of.status.recentRuns(since);
  }
  /** Jobs of the given runs with their state, line and last error (for `status --jobs`). */
  jobsOfRuns(runIds: number[]): JobRecord[] {
    return runIds.flatMap((id) => this.of.jobs.ofRun(id));
  }
  jobsByState(runId: number): JobsInState[] {
    return this.of.status.jobsByState(runId);
  }
  holdReasons(runId: number): HoldReason[] {
    return this.of.status.holdReasons(runId);
  }
  executorHeld(): ExecutorHeld[] {
    return this.of.status.executorHeld();
  }
  jobsPage(runId: number, state: JobState | undefined, limit: number, offset: number): JobRow[] {
    return this.of.status.jobsPage(runId, state, limit, offset);
  }
  countJobs(runId: number, state: JobState | undefined): number {
    return this.of.status.countJobs(runId, state);
  }
  jobRow(runId: number, line: number): JobRow | undefined {
    return this.of.status.jobRow(runId, line);
  }
  liveJobCounts(): LiveJobCount[] {
    return this.of.status.liveJobCounts();
  }
  /** Whether the connection answers (the daemon's health check). */
  ping(): boolean {
    return this.of.status.ping();
  }
}
