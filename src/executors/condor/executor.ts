/**
 * The HTCondor executor: cogd plans, submits, follows and reconciles on the access point; execute
 * nodes convert. Jobs of a run are submitted in batches — one `condor_submit -terse` per batch,
 * `queue ... from` an item file — and followed through the run's job event log (no `condor_q` in
 * the steady state). Every step is in the state DB before anything depends on it:
 *
 *   1. batch N recorded (which job is which proc)  →  condor_submit  →  cluster recorded
 *   2. events applied and the log offset saved in one transaction (running, held, released, the
 *      attempt's outcome), so a restart resumes from the offset and re-attaches to queued jobs
 *   3. the scheduler acts on the outcome (converted, retried as a new submission, failed)
 *
 * A crash between 1 and the cluster being recorded is resolved from the submit events, which carry
 * the note `cogd run R batch N` (`submit_event_notes`).
 */
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../../util/crash.js';
import { CogdError, describeError, PermanentError } from '../../errors.js';
import type { Log, StepFiles } from '../../log/index.js';
import type { StateDB } from '../../state/db.js';
import type { S3Settings } from '../../types.js';
import { Shutdown, type Executor, type JobSpec } from '../types.js';
import type { JobEvent } from './eventlog.js';
import { EventLogFollower } from './follower.js';
import { condorUnsafeKey, itemLine, renderSubmit, renderWorker, TEMPLATES_DIR } from './render.js';
import { parseSubmitOutput } from './tools.js';

export interface CondorOptions {
  db: StateDB;
  log: Log;
  /** The submit description template. @defaultValue submit-templates/cog.sub */
  submitTemplate?: string | undefined;
  /** The image execute nodes run the worker in (config's DEFAULT_CONTAINER_IMAGE by default). */
  containerImage: string;
  /** Rows per condor_submit. @defaultValue 1000 */
  batchSize: number;
  requestCpus: number;
  requestMemory: string;
  requestDisk: string;
  /** Holds after which HTCondor removes a job (periodic_remove). @defaultValue 5 */
  maxHolds: number;
  /** First release delay in seconds; doubles with each hold. @defaultValue 60 */
  releaseDelayS: number;
  /** allowed_execute_duration, seconds. */
  jobTimeoutS: number;
  /** How often the event logs are read. @defaultValue 1000 */
  followIntervalMs?: number;
  /** How long a batch waits for more rows before it is submitted. @defaultValue 200 */
  lingerMs?: number;
}

const REMOVED_AFTER_HOLDS = 'HTCondor removed the job after repeated holds';

/** The worker's exit code for an input it can never convert (not a TIFF, unpreviewable type). */
const WORKER_PERMANENT_EXIT = 2;

/** HTCondor's S3 URL of a bucket: `s3://host[:port]/bucket` for an endpoint, the AWS virtual-host form otherwise. */
export function condorS3Url(s3: S3Settings, bucket: string): string {
  if (s3.endpoint === undefined) return `s3://${bucket}.s3.${s3.region}.amazonaws.com`;
  return `s3://${new URL(s3.endpoint).host}/${bucket}`;
}

interface Waiter {
  job: JobSpec;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Pending {
  job: JobSpec;
  waiter: Waiter;
}

/** What the executor keeps per run it follows. */
interface RunFollow {
  runId: number;
  runDir: string;
  follower: EventLogFollower;
  waiters: Map<number, Waiter>;
  pending: Pending[];
  flushTimer: NodeJS.Timeout | undefined;
  /** condor_submit calls in progress, by job id. */
  submitting: Map<number, Promise<void>>;
  fields: Record<string, string>;
  reading: Promise<void> | undefined;
}

/** The `C.P` ids of the jobs' current HTCondor submissions (jobs not in HTCondor are left out). */
export function queuedIds(db: StateDB, jobIds: number[]): string[] {
  const ids: string[] = [];
  for (const jobId of jobIds) {
    const submission = db.condorSubmission(jobId);
    if (submission?.cluster != null && submission.result === null) ids.push(`${submission.cluster}.${submission.proc}`);
  }
  return ids;
}

/**
 * One `condor_rm` for the given `C.P` ids; a cluster whose every live proc is named is removed as
 * a cluster (`condor_rm C`).
 */
export async function removeFromQueue(db: StateDB, ids: string[]): Promise<{ args: string[]; exitCode: number | undefined; output: string }> {
  const byCluster = new Map<string, string[]>();
  for (const id of ids) {
    const cluster = id.split('.')[0]!;
    byCluster.set(cluster, [...(byCluster.get(cluster) ?? []), id]);
  }
  const args: string[] = [];
  for (const [cluster, procs] of byCluster) {
    const named = new Set(procs);
    const whole = db.liveCondorProcs(Number(cluster)).every((proc) => named.has(`${cluster}.${proc}`));
    args.push(...(whole ? [cluster] : procs));
  }
  const result = await execa('condor_rm', args, { reject: false, timeout: 120_000 });
  const output = `${result.stdout}\n${result.stderr}`.trim();
  return { args, exitCode: result.exitCode, output: result.failed && result.exitCode === undefined ? describeError(result) : output };
}

export class CondorExecutor implements Executor {
  readonly name = 'condor';
  private readonly runs = new Map<number, Promise<RunFollow>>();
  private readonly timer: NodeJS.Timeout;
  private template: Promise<string> | undefined;
  private removals = new Set<string>();
  private removalFlush: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: CondorOptions) {
    this.timer = setInterval(() => void this.readAll(), options.followIntervalMs ?? 1000);
  }

  private get db(): StateDB {
    return this.options.db;
  }

  detached(jobId: number): boolean {
    return this.db.condorSubmission(jobId)?.cluster != null;
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const follow = await this.follow(job.runId);
    // The run may have gone idle (and unfollowed) while this call waited: follow it again.
    if (!this.runs.has(job.runId)) this.runs.set(job.runId, Promise.resolve(follow));
    const submission = this.db.condorSubmission(job.jobId);
    const outcome = new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { job, resolve, reject };
      follow.waiters.set(job.jobId, waiter);
      if (submission?.cluster != null) {
        // Queued before a restart (or finished while nobody listened): follow it again.
        job.files.log(`following HTCondor job ${submission.cluster}.${submission.proc} (log ${path.basename(follow.follower.file)})`);
        if (submission.state === 'running') job.started();
        if (submission.result !== null) this.settle(follow, job.jobId, submission.result);
        return;
      }
      for (const key of [job.imageKey, job.previewKey, job.files.name]) {
        const reason = condorUnsafeKey(key);
        if (reason !== undefined) {
          reject(new PermanentError('UnsafeKey', `${key}: ${reason}`));
          return;
        }
      }
      follow.pending.push({ job, waiter });
      this.scheduleFlush(follow);
    });
    const onAbort = (): void => void this.abandon(follow, job.jobId, signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await outcome;
    } finally {
      signal.removeEventListener('abort', onAbort);
      follow.waiters.delete(job.jobId);
      this.forgetIfIdle(follow);
    }
    await this.verify(job);
  }

  /** Both outputs in S3, as HTCondor's transfer left them. */
  private async verify(job: JobSpec): Promise<void> {
    for (const key of [job.cogKey, job.previewKey]) {
      const head = await job.storage.head(job.outputBucket, key);
      if (head === undefined || head.size === 0) {
        throw new CogdError('VerifyFailed', `s3://${job.outputBucket}/${key} is ${head === undefined ? 'missing' : 'empty'} after the HTCondor job ended successfully`, {
          hint: 'check transfer_output_remaps in the submit template',
        });
      }
    }
    job.files.log(`verified s3://${job.outputBucket}/${job.cogKey} and ${job.previewKey}`);
  }

  /**
   * The job's attempt is aborted. A shutdown leaves a submitted job queued (the next start follows
   * it again); a removal or a deadline removes it from the queue.
   */
  private async abandon(follow: RunFollow, jobId: number, reason: unknown): Promise<void> {
    const waiter = follow.waiters.get(jobId);
    const index = follow.pending.findIndex((p) => p.job.jobId === jobId);
    if (index !== -1) {
      follow.pending.splice(index, 1);
      waiter?.reject(reason);
      return;
    }
    await follow.submitting.get(jobId)?.catch(() => undefined);
    const submission = this.db.condorSubmission(jobId);
    if (!(reason instanceof Shutdown) && submission?.cluster != null && submission.result === null) {
      await this.condorRm([`${submission.cluster}.${submission.proc}`]);
      waiter?.job.files.log(`condor_rm ${submission.cluster}.${submission.proc}`);
    }
    waiter?.reject(reason);
  }

  async cancel(jobIds: number[]): Promise<void> {
    const ids = queuedIds(this.db, jobIds);
    if (ids.length > 0) await this.condorRm(ids);
  }

  /**
   * Removes procs from the queue. Requests arriving together (a whole run removed) go out as one
   * condor_rm; a cluster whose every live proc is named is removed as a cluster.
   */
  private condorRm(ids: string[]): Promise<void> {
    for (const id of ids) this.removals.add(id);
    this.removalFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const requested = [...this.removals];
      this.removals = new Set();
      this.removalFlush = undefined;
      const result = await removeFromQueue(this.db, requested);
      if (result.exitCode !== 0) this.options.log.warn('Condor:RmFailed', { ids: result.args.join(' '), exitCode: result.exitCode, output: result.output });
      else this.options.log.info('Condor:Removed', { ids: result.args.join(' ') });
    });
    return this.removalFlush;
  }

  // ---- following runs

  /** The run's follow state, created on first use: event log read up to date before any submission. */
  private follow(runId: number): Promise<RunFollow> {
    let follow = this.runs.get(runId);
    if (follow === undefined) {
      follow = this.startFollowing(runId);
      this.runs.set(runId, follow);
      follow.catch(() => this.runs.delete(runId));
    }
    return follow;
  }

  private async startFollowing(runId: number): Promise<RunFollow> {
    const run = this.db.run(runId);
    const watch = run === undefined ? undefined : this.db.watch(run.watchId);
    if (run === undefined || watch === undefined) throw new CogdError('Condor', `run ${runId} is not in the state DB`);
    const { accessKeyFile, secretKeyFile } = watch.s3;
    if (accessKeyFile === undefined || secretKeyFile === undefined) {
      throw new PermanentError('CondorCredentials', 'the condor executor needs the S3 keys in files (HTCondor reads them through aws_access_key_id_file)', {
        hint: 'start the watch with -a/--access-key FILE and -s/--secret-key FILE',
      });
    }
    const condorDir = path.join(run.runDir, 'condor');
    await mkdir(condorDir, { recursive: true });
    const worker = path.join(condorDir, 'cog-worker.sh');
    await writeFile(worker, await renderWorker(), { mode: 0o755 });
    const follow: RunFollow = {
      runId,
      runDir: run.runDir,
      follower: new EventLogFollower(path.join(run.runDir, 'condor.log'), this.db.condorOffset(runId)),
      waiters: new Map(),
      pending: [],
      flushTimer: undefined,
      submitting: new Map(),
      reading: undefined,
      fields: {
        container_image: this.options.containerImage,
        worker,
        access_key_file: accessKeyFile,
        secret_key_file: secretKeyFile,
        input_url: condorS3Url(watch.s3, run.inputBucket),
        output_url: condorS3Url(watch.s3, run.outputBucket),
        run_dir: run.runDir,
        event_log: path.join(run.runDir, 'condor.log'),
        batch_name: run.batchName,
        request_cpus: String(this.options.requestCpus),
        request_memory: this.options.requestMemory,
        request_disk: this.options.requestDisk,
        job_timeout: String(this.options.jobTimeoutS),
        max_holds: String(this.options.maxHolds),
        release_base: String(this.options.releaseDelayS),
        release_splay: String(this.options.releaseDelayS),
      },
    };
    // Catch up with everything written while no cogd followed this run.
    await this.read(follow);
    for (const batch of this.db.unconfirmedCondorBatches(runId)) {
      this.options.log.warn('Condor:BatchUnconfirmed', {
        run: runId,
        batch,
        reason: 'condor_submit was interrupted and the event log has no submit event of this batch: its rows are submitted again',
      });
      this.db.clearCondorBatch(runId, batch);
    }
    return follow;
  }

  private async readAll(): Promise<void> {
    for (const follow of this.runs.values()) {
      try {
        await this.read(await follow);
      } catch (error) {
        this.options.log.error('Condor:FollowFailed', { reason: describeError(error) });
      }
    }
  }

  /** Reads new events and applies them (one read at a time per run). */
  private read(follow: RunFollow): Promise<void> {
    follow.reading ??= this.readOnce(follow).finally(() => (follow.reading = undefined));
    return follow.reading;
  }

  private async readOnce(follow: RunFollow): Promise<void> {
    for (;;) {
      const { events, next, skipped } = await follow.follower.read();
      if (next === follow.follower.offset) return;
      for (const line of skipped) this.options.log.warn('Condor:EventLogLineSkipped', { run: follow.runId, line });
      const settled: Array<[number, string]> = [];
      const notes: Array<[number, string, boolean]> = [];
      this.db.transaction(() => {
        for (const event of events) this.apply(follow, event, settled, notes);
        this.db.setCondorOffset(follow.runId, next);
      });
      follow.follower.advance(next);
      if (settled.length > 0) crashPoint('condor:result-recorded');
      for (const [jobId, line, started] of notes) {
        const waiter = follow.waiters.get(jobId);
        waiter?.job.files.log(line);
        // Only if it still runs once the whole chunk is applied (it may be held already).
        if (started && this.db.condorSubmission(jobId)?.state === 'running') waiter?.job.started();
      }
      for (const [jobId, result] of settled) this.settle(follow, jobId, result);
    }
  }

  /** One event, inside the transaction that also stores the new offset. */
  private apply(follow: RunFollow, event: JobEvent, settled: Array<[number, string]>, notes: Array<[number, string, boolean]>): void {
    const { runId } = follow;
    let job = this.db.condorJob(runId, event.cluster, event.proc);
    if (job === undefined && event.code === 0) {
      // A submit event of a batch whose condor_submit output we never read (a crash).
      const note = event.body.map((line) => /^cogd run (\d+) batch (\d+)$/.exec(line)).find((m) => m != null);
      if (note != null && Number(note[1]) === runId) {
        this.db.setCondorCluster(runId, Number(note[2]), event.cluster);
        job = this.db.condorJob(runId, event.cluster, event.proc);
      }
    }
    if (job === undefined || job.result !== null) return; // another attempt's job, or already ended
    const id = `${event.cluster}.${event.proc}`;
    const note = (line: string, started = false): void => void notes.push([job.jobId, `HTCondor ${id}: ${line}`, started]);
    switch (event.code) {
      case 0:
        note('submitted');
        break;
      case 1:
        this.db.setCondorProgress(job.jobId, 'running');
        note(event.description, true);
        break;
      case 4:
      case 7:
        this.db.setCondorProgress(job.jobId, 'idle');
        note(`${event.description} ${event.reason ?? ''}`.trim());
        break;
      case 12: {
        const code = event.holdCode === undefined ? '' : ` (hold code ${event.holdCode}/${event.holdSubcode ?? 0})`;
        const reason = `held: ${event.reason ?? 'no reason given'}${code}`;
        this.db.setCondorProgress(job.jobId, 'held', reason);
        note(reason);
        break;
      }
      case 13:
        this.db.setCondorProgress(job.jobId, 'idle');
        note(`released${event.reason === undefined || event.reason === event.description ? '' : `: ${event.reason}`}`);
        break;
      case 5: {
        const t = event.termination;
        const result =
          t === undefined ? 'the job terminated without a return value in the event log'
          : t.normal ? (t.returnValue === 0 ? 'ok' : `exit ${t.returnValue}`)
          : `the worker was killed by signal ${t.signal}`;
        this.db.setCondorResult(job.jobId, result);
        settled.push([job.jobId, result]);
        note(t?.normal === true ? `terminated, return value ${t.returnValue}` : `terminated: ${result}`);
        break;
      }
      case 9: {
        const error = this.db.jobError(job.jobId);
        const lastHold = error?.startsWith('held: ') === true ? error : null;
        const why = event.reason ?? event.description;
        const result = lastHold !== null && /PeriodicRemove/.test(why) ? `${REMOVED_AFTER_HOLDS}; last ${lastHold}` : `HTCondor aborted the job: ${why}`;
        this.db.setCondorResult(job.jobId, result);
        settled.push([job.jobId, result]);
        note(`aborted: ${why}`);
        break;
      }
      default:
        break;
    }
  }

  /** Ends a job's wait with the attempt's outcome as the event log gave it. */
  private settle(follow: RunFollow, jobId: number, result: string): void {
    const waiter = follow.waiters.get(jobId);
    if (waiter === undefined) return; // recorded in the DB; settled when the job is followed again
    if (result === 'ok') {
      waiter.resolve();
      return;
    }
    const exit = /^exit (\d+)$/.exec(result);
    if (exit === null) {
      // HTCondor already retried a job it removed after repeated holds (periodic_release).
      const ErrorType = result.startsWith(REMOVED_AFTER_HOLDS) ? PermanentError : CogdError;
      waiter.reject(new ErrorType('CondorJobFailed', result));
      return;
    }
    void this.workerError(waiter.job.files).then((said) => {
      const message = `the worker exited with code ${exit[1]}${said === undefined ? '' : `: ${said}`}`;
      const ErrorType = Number(exit[1]) === WORKER_PERMANENT_EXIT ? PermanentError : CogdError;
      waiter.reject(new ErrorType('CondorJobFailed', message));
    });
  }

  /** The worker's last own message in the job's `.err` (HTCondor brings it back). */
  private async workerError(files: StepFiles): Promise<string | undefined> {
    const text = await readFile(files.path('err'), 'utf8').catch(() => '');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    return [...lines].reverse().find((l) => l.startsWith('cogd-worker:')) ?? lines.at(-1);
  }

  /** Nobody waits on the run: stop reading its log until a job of it runs again. */
  private forgetIfIdle(follow: RunFollow): void {
    if (follow.waiters.size > 0 || follow.pending.length > 0 || follow.submitting.size > 0) return;
    this.runs.delete(follow.runId);
  }

  // ---- submitting

  private scheduleFlush(follow: RunFollow): void {
    if (follow.pending.length >= this.options.batchSize) {
      clearTimeout(follow.flushTimer);
      follow.flushTimer = undefined;
      this.flush(follow);
      return;
    }
    follow.flushTimer ??= setTimeout(() => {
      follow.flushTimer = undefined;
      this.flush(follow);
    }, this.options.lingerMs ?? 200);
  }

  private flush(follow: RunFollow): void {
    while (follow.pending.length > 0) {
      const batch = follow.pending.splice(0, this.options.batchSize);
      const submitted = this.submit(follow, batch);
      for (const { job } of batch) follow.submitting.set(job.jobId, submitted);
      void submitted.finally(() => {
        for (const { job } of batch) follow.submitting.delete(job.jobId);
        this.forgetIfIdle(follow);
      });
    }
  }

  private async submit(follow: RunFollow, batch: Pending[]): Promise<void> {
    const jobIds = batch.map((p) => p.job.jobId);
    const number = this.db.recordCondorBatch(follow.runId, jobIds);
    crashPoint('condor:batch-recorded');
    const base = path.join(follow.runDir, 'condor', `batch-${number}`);
    try {
      const items = batch.map(({ job }) => itemLine({ inputKey: job.imageKey, cogKey: job.cogKey, previewKey: job.previewKey, logName: job.files.name }));
      await writeFile(`${base}.items`, `${items.join('\n')}\n`);
      const template = await this.loadTemplate();
      const description = renderSubmit(template, { ...follow.fields, items_file: `${base}.items`, submit_notes: `cogd run ${follow.runId} batch ${number}` });
      await writeFile(`${base}.sub`, description);
      const result = await execa('condor_submit', ['-terse', `${base}.sub`], { cwd: follow.runDir, reject: false, timeout: 300_000 });
      if (result.exitCode === 0) crashPoint('condor:submitted');
      const parsed = parseSubmitOutput(result.stdout);
      const cluster = parsed.clusters[0];
      if (result.exitCode !== 0 || cluster === undefined) {
        const said = [...parsed.messages, ...result.stderr.split('\n')].map((l) => l.trim()).filter((l) => l !== '');
        throw new CogdError('CondorSubmitFailed', `condor_submit ${path.basename(base)}.sub failed (exit ${result.exitCode ?? result.signal ?? '?'}): ${said.slice(0, 3).join(' / ') || 'no output'}`, {
          hint: 'check that this machine is an HTCondor access point (condor_q works) and the submit template',
        });
      }
      const expected = batch.length;
      if (cluster.jobs !== null && cluster.jobs !== expected) {
        this.options.log.warn('Condor:SubmitCount', { run: follow.runId, batch: number, cluster: cluster.cluster, submitted: cluster.jobs, expected });
      }
      this.db.setCondorCluster(follow.runId, number, cluster.cluster);
      this.options.log.info('Condor:Submitted', { run: follow.runId, batch: number, cluster: cluster.cluster, jobs: expected });
      batch.forEach(({ job }, proc) => job.files.log(`submitted as HTCondor job ${cluster.cluster}.${proc} (batch ${number})`));
    } catch (error) {
      // Nothing reached the queue (condor_submit is all or nothing): the attempt failed, retried by the scheduler.
      this.db.clearCondorBatch(follow.runId, number);
      this.options.log.warn('Condor:SubmitFailed', { run: follow.runId, batch: number, reason: describeError(error) });
      for (const { waiter } of batch) waiter.reject(error);
    }
  }

  private loadTemplate(): Promise<string> {
    this.template ??= readFile(this.options.submitTemplate ?? path.join(TEMPLATES_DIR, 'cog.sub'), 'utf8').catch((error: unknown) => {
      this.template = undefined;
      throw new CogdError('Template', `cannot read the submit template ${this.options.submitTemplate}: ${describeError(error)}`);
    });
    return this.template;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const follows = await Promise.allSettled(this.runs.values());
    for (const f of follows) {
      if (f.status !== 'fulfilled') continue;
      clearTimeout(f.value.flushTimer);
      await Promise.allSettled(f.value.submitting.values());
      await f.value.reading?.catch(() => undefined);
    }
    await this.removalFlush;
  }
}
