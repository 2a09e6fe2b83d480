/**
 * The Slurm executor: cogd plans, submits, follows and reconciles on the login node; compute nodes
 * convert, each array task one row, with the local executor's own code (`task.ts`), reading and
 * writing S3 themselves. This class wires the parts of the executor seam (`../types.ts`) together:
 *
 *   submit     rows gathered per run (`SubmitQueue`) into job arrays, one `sbatch --parsable
 *              --array=0-N%K` per batch: batch recorded (which job is which task) → batch files
 *              written → sbatch → array id recorded. The job name `cogd-<home>-r<run>-b<batch>`
 *              finds the array again after a crash between the first and the last.
 *   follow     one status call per interval for every array of every run followed (sacct, or
 *              `squeue -t all -r` without accounting), plus the exit records of tasks that ended;
 *              mapped by `applyStatus` and recorded in one transaction
 *   cancel     one `scancel` for the tasks of removed jobs (coalesced)
 *   re-attach  a job with a recorded array id is followed again; an outcome recorded while nobody
 *              followed settles it at once
 *   verify     both outputs HEADed once the task's exit record says ok (`verifyOutputs`)
 *
 * hold/release (`scontrol`) are there for `cogd hold`/`release` to call.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CogdError, describeError, PermanentError } from '../../errors.js';
import type { Log } from '../../log/index.js';
import type { StateDB, SlurmSubmission } from '../../state/db.js';
import { crashPoint } from '../../util/crash.js';
import { SubmitQueue, verifyOutputs } from '../batch.js';
import { HoldNow, Shutdown, type Executor, type JobOutput, type JobSpec } from '../types.js';
import { batchBase, writeBatchFiles, type BatchFile, type TaskEngine } from './batch-file.js';
import { SlurmTools } from './commands.js';
import { exitRecordPath, readExitRecord, skipMarker, type ExitRecord } from './exit-record.js';
import { applyStatus, outcomeOf, type StatusEffect } from './outcome.js';
import { compactIds, sbatchArgs, StatusIndex, taskId, type SbatchSettings, type TaskStatus } from './tools.js';

/** The task's entry point, beside this module in dist/. */
export const TASK_SCRIPT = fileURLToPath(new URL('./task.js', import.meta.url));

/** Slurm's default MaxArraySize is 1001: task indexes 0-1000. */
export const MAX_ARRAY_TASKS = 1000;

/**
 * What the task's environment keeps of cogd's (--export): never credentials, never cogd's own
 * settings, nor TMPDIR (the node's own, where the cluster sets one, is where the task works).
 */
const EXPORTED = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'GDAL_DATA', 'PROJ_LIB', 'PROJ_DATA', 'LD_LIBRARY_PATH'];

export interface SlurmOptions {
  db: StateDB;
  log: Log;
  /** A short id of the home (`homeId`): in every job name, so homes sharing a cluster never mix. */
  homeId: string;
  partition: string | undefined;
  account: string | undefined;
  mem: string;
  cpusPerTask: number;
  extra: readonly string[];
  pollMs: number;
  timeMinutes: number;
  retryTimeouts: boolean;
  /** What a task converts with (the home's limits and timeouts). */
  engine: Omit<TaskEngine, 'cpu'>;
  /** Rows per sbatch. @defaultValue MAX_ARRAY_TASKS */
  batchSize?: number;
  /** How long a batch waits for more rows. @defaultValue 200 */
  lingerMs?: number;
  /** How long a task may be unknown to Slurm (or COMPLETED without its exit record) before it fails. @defaultValue max(20 s, 4 polls) */
  graceMs?: number;
  /** The Node.js the tasks run with (at the same path on the nodes). @defaultValue process.execPath */
  node?: string;
}

/** A `run` call waiting for its attempt's outcome (and the memory its next submission asks for). */
interface Row {
  job: JobSpec;
  resolve: (output: JobOutput | undefined) => void;
  reject: (error: unknown) => void;
  mem?: string | undefined;
}

/** What the executor keeps per run it follows. */
interface RunFollow {
  runId: number;
  runDir: string;
  /** Rows per array task (`--rows-per-job`, fixed at claim); above 1, tasks convert groups of rows. */
  rowsPerJob: number;
  script: string;
  waiters: Map<number, Row>;
  queue: SubmitQueue<Row>;
}

/** The job name of a batch: how cogd finds an array whose sbatch answer it never read. */
export function slurmJobName(homeId: string, runId: number, batch: number): string {
  return `cogd-${homeId}-r${runId}-b${batch}`;
}

/** A word for bash, always single-quoted. */
const quoted = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/** The batch script of a run: finds its row's log name, sends its streams there, runs the task. */
export function taskScript(runDir: string, node: string, task: string): string {
  return `#!/bin/bash
# cogd: one Slurm array task converts one manifest row. Written by cogd for this run; do not edit.
#   $1: the batch's task file (batch-N.json); SLURM_ARRAY_TASK_ID: the row's index in it.
set -u
batch="$1"
index="\${SLURM_ARRAY_TASK_ID:?cogd: not run as an array task}"
name="$(sed -n "$((index + 1))p" "\${batch%.json}.names")"
if [ -n "$name" ]; then
  exec >>${quoted(runDir)}/"$name.out" 2>>${quoted(runDir)}/"$name.err"
fi
exec ${quoted(node)} ${quoted(task)} "$batch"
`;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  private readonly runs = new Map<number, Promise<RunFollow>>();
  private readonly timer: NodeJS.Timeout;
  private readonly tools: SlurmTools;
  /** Tasks cogd cancelled itself (`A_T`): their CANCELLED is no outside cancel. */
  private readonly cancelled = new Set<string>();
  /** Since when each task (`A_T`) has had no decisive report. */
  private readonly unknownSince = new Map<string, number>();
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: SlurmOptions) {
    this.tools = new SlurmTools(options.log);
    this.timer = setInterval(() => {
      this.poll().catch((error: unknown) => options.log.error('Slurm:FollowFailed', { reason: describeError(error) }));
    }, options.pollMs);
  }

  private get db(): StateDB {
    return this.options.db;
  }

  detached(jobId: number): boolean {
    return this.db.slurmSubmission(jobId)?.arrayId != null;
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<JobOutput | undefined> {
    signal.throwIfAborted();
    const follow = await this.follow(job.runId);
    if (!this.runs.has(job.runId)) this.runs.set(job.runId, Promise.resolve(follow));
    const submission = this.db.slurmSubmission(job.jobId);
    const outcome = new Promise<JobOutput | undefined>((resolve, reject) => {
      const row: Row = { job, resolve, reject };
      follow.waiters.set(job.jobId, row);
      if (submission?.arrayId != null) {
        // Queued before a restart (or finished while nobody listened): follow it again.
        job.files.log(
          `following Slurm task ${taskId(submission.arrayId, submission.task)} (batch ${submission.batch})`,
        );
        if (submission.state === 'running') job.started();
        if (submission.result !== null) this.settle(follow, submission);
        return;
      }
      follow.queue.add(row);
    });
    const onAbort = (): void => {
      this.abandon(follow, job.jobId, signal.reason).catch((error: unknown) =>
        this.options.log.error('Slurm:AbandonFailed', { job: job.jobId, reason: describeError(error) }),
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let output: JobOutput | undefined;
    try {
      output = await outcome;
    } finally {
      signal.removeEventListener('abort', onAbort);
      follow.waiters.delete(job.jobId);
      this.forgetIfIdle(follow);
    }
    await verifyOutputs(
      job,
      'the Slurm task ended successfully',
      `see ${job.files.name}.log and .err in the run's directory`,
    );
    return output;
  }

  /**
   * The job's attempt is aborted. A shutdown leaves a submitted task queued (the next start follows
   * it again); a removal or a deadline cancels it.
   */
  private async abandon(follow: RunFollow, jobId: number, reason: unknown): Promise<void> {
    const row = follow.waiters.get(jobId);
    if (follow.queue.withdraw(jobId) !== undefined) {
      row?.reject(reason);
      return;
    }
    await follow.queue.submission(jobId)?.catch(() => undefined);
    const submission = this.db.slurmSubmission(jobId);
    if (
      !(reason instanceof Shutdown) &&
      submission?.arrayId != null &&
      submission.result === null &&
      sharingRows(this.db, submission, [jobId]) > 0
    ) {
      // A task that converts other rows too goes on for them: this row is passed over if its turn
      // has not come yet, and its outcome is ignored.
      await markSkipped(follow.runDir, jobId);
      row?.job.files.log('left its group task to convert the other rows; its own outcome is ignored');
    } else if (!(reason instanceof Shutdown) && submission?.arrayId != null && submission.result === null) {
      const id = taskId(submission.arrayId, submission.task);
      this.cancelled.add(id);
      const result = await this.tools.cancel([id]);
      if (!result.ok) this.options.log.warn('Slurm:CancelFailed', { ids: id, output: result.output });
      row?.job.files.log(`scancel ${id}`);
      // Stopped by `cogd hold --now` while its batch was being submitted: the attempt is given back,
      // so its cancelled task must not be followed again.
      if (reason instanceof HoldNow) this.db.forgetSlurmSubmission(jobId);
    }
    row?.reject(reason);
  }

  /** Cancels the Slurm tasks of jobs no `run` follows (removed by the user): one scancel. */
  async cancel(jobIds: number[]): Promise<void> {
    // Rows of a group whose task goes on for others: passed over when their turn comes.
    for (const jobId of jobIds) {
      const s = this.db.slurmSubmission(jobId);
      if (s?.arrayId == null || s.result !== null || sharingRows(this.db, s, jobIds) === 0) continue;
      const runDir = this.db.run(s.runId)?.runDir;
      if (runDir !== undefined) await markSkipped(runDir, jobId);
    }
    // Read synchronously: the caller marks the jobs removed (forgetting their tasks) right after.
    const { ids, tasks } = slurmTaskIds(this.db, jobIds);
    if (ids.length === 0) return;
    for (const id of tasks) this.cancelled.add(id);
    const result = await this.tools.cancel(ids);
    if (result.ok) this.options.log.info('Slurm:Cancelled', { ids: ids.join(' ') });
    else this.options.log.warn('Slurm:CancelFailed', { ids: ids.join(' '), output: result.output });
  }

  /**
   * `scontrol hold` of the jobs' tasks still waiting in Slurm, task by task: they stay PENDING (JobHeldUser), shown held, until released. For
   * `cogd hold` to call, as it calls the HTCondor executor's. Never throws: false when scontrol
   * failed (logged), for the caller to ask again.
   */
  async hold(jobIds: number[]): Promise<boolean> {
    return this.control('hold', jobIds);
  }

  /** `scontrol release` of the jobs' held tasks; see `hold`. */
  async release(jobIds: number[]): Promise<boolean> {
    return this.control('release', jobIds);
  }

  private async control(verb: 'hold' | 'release', jobIds: number[]): Promise<boolean> {
    // Task by task (A_T): a whole array's id also names its finished tasks, and scontrol then fails
    // ("Job has already finished") although it held or released the waiting ones.
    const { tasks: ids } = slurmTaskIds(this.db, jobIds);
    if (ids.length === 0) return true;
    const result = await this.tools.control(verb, ids);
    if (result.ok) this.options.log.info(verb === 'hold' ? 'Slurm:Held' : 'Slurm:Released', { ids: ids.join(' ') });
    else
      this.options.log.warn('Slurm:HoldFailed', {
        command: `scontrol ${verb}`,
        ids: ids.join(' '),
        output: result.output,
      });
    return result.ok;
  }

  // ---- following runs

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
    if (run === undefined) throw new CogdError('Slurm', `run ${runId} is not in the state DB`);
    const slurmDir = path.join(run.runDir, 'slurm');
    await mkdir(path.join(slurmDir, 'exit'), { recursive: true });
    const script = path.join(slurmDir, 'task.sh');
    await writeFile(script, taskScript(run.runDir, this.options.node ?? process.execPath, TASK_SCRIPT), {
      mode: 0o700,
    });
    const follow: RunFollow = {
      runId,
      runDir: run.runDir,
      rowsPerJob: this.db.runConversion(runId)?.rowsPerJob ?? 1,
      script,
      waiters: new Map(),
      queue: new SubmitQueue<Row>({
        size: Math.min(this.options.batchSize ?? MAX_ARRAY_TASKS, MAX_ARRAY_TASKS),
        lingerMs: this.options.lingerMs ?? 200,
        submit: (rows) => this.submit(follow, rows),
        submitted: () => this.forgetIfIdle(follow),
      }),
    };
    await this.recoverBatches(runId, new Date(run.createdAt));
    return follow;
  }

  /**
   * Batches recorded whose array id cogd never learnt (killed around sbatch): Slurm is asked for
   * their job name. Found, they are followed; not found (asked twice), they never reached Slurm and
   * their rows are submitted again. Nothing is submitted twice.
   */
  private async recoverBatches(runId: number, since: Date): Promise<void> {
    for (const batch of this.db.unconfirmedSlurmBatches(runId)) {
      const name = slurmJobName(this.options.homeId, runId, batch);
      let found: TaskStatus[] = [];
      for (let asked = 0; asked < 2 && found.length === 0; asked++) {
        // An sbatch that was still on its way when cogd died may land a moment later.
        if (asked > 0) await new Promise((resolve) => setTimeout(resolve, 2000));
        found = await this.tools.byName(name, new Date(since.getTime() - 3600_000));
      }
      const arrayId = found[0]?.arrayId;
      if (arrayId !== undefined) {
        this.db.setSlurmArray(runId, batch, arrayId);
        this.options.log.warn('Slurm:BatchRecovered', {
          run: runId,
          batch,
          array: arrayId,
          reason: "cogd stopped before it read sbatch's answer; the array was found by its job name",
        });
      } else {
        this.db.clearSlurmBatch(runId, batch);
        this.options.log.warn('Slurm:BatchUnconfirmed', {
          run: runId,
          batch,
          reason: `Slurm knows no job called ${name}: sbatch never ran; its rows are submitted again`,
        });
      }
    }
  }

  // ---- submitting

  /** One batch of a run's rows: one array per memory size asked (almost always one). */
  private async submit(follow: RunFollow, rows: Row[]): Promise<void> {
    const groups = new Map<string, Row[]>();
    for (const row of rows) groups.set(row.mem ?? '', [...(groups.get(row.mem ?? '') ?? []), row]);
    for (const [mem, group] of groups) await this.submitArray(follow, group, mem === '' ? undefined : mem);
  }

  private async submitArray(follow: RunFollow, batchRows: Row[], mem: string | undefined): Promise<void> {
    const { runId, runDir } = follow;
    // One task per row, or per group of rows (--rows-per-job): rows together until an attempt of
    // theirs failed, a retry alone. A row that fails (a missing image…) fails alone in its group.
    const perJob = follow.rowsPerJob;
    const groups: Row[][] = [];
    if (perJob > 1) {
      const together = batchRows.filter((r) => this.db.jobError(r.job.jobId) === null);
      for (let i = 0; i < together.length; i += perJob) groups.push(together.slice(i, i + perJob));
      for (const r of batchRows) if (this.db.jobError(r.job.jobId) !== null) groups.push([r]);
    } else {
      for (const r of batchRows) groups.push([r]);
    }
    const rows = groups.flat();
    const batch = this.db.recordSlurmBatch(
      runId,
      rows.map((r) => r.job.jobId),
      groups.flatMap((group, task) => group.map(() => task)),
    );
    crashPoint('slurm:batch-recorded');
    const name = slurmJobName(this.options.homeId, runId, batch);
    try {
      const run = this.db.run(runId)!;
      const watch = this.db.watch(run.watchId);
      if (watch === undefined) throw new CogdError('Slurm', `the watch of run ${runId} is not in the state DB`);
      const first = rows[0]!.job;
      const file: BatchFile = {
        version: 1,
        runId,
        batch,
        runDir,
        inputBucket: first.inputBucket,
        outputBucket: first.outputBucket,
        s3: watch.s3,
        conversion: first.conversion,
        engine: { ...this.options.engine, cpu: this.options.cpusPerTask },
        tasks: rows.map(({ job }) => ({
          jobId: job.jobId,
          imageKey: job.imageKey,
          cogKey: job.cogKey,
          previewKey: job.previewKey,
          logName: job.files.name,
          declaredBands: job.declaredBands,
        })),
      };
      if (perJob > 1) {
        let next = 0;
        file.groups = groups.map((group) => group.map(() => next++));
      }
      const batchFile = await writeBatchFiles(file);
      const settings: SbatchSettings = {
        partition: this.options.partition,
        account: this.options.account,
        // A group's time limit: --job-timeout per row.
        timeMinutes: this.options.timeMinutes * perJob,
        mem: mem ?? this.options.mem,
        cpusPerTask: this.options.cpusPerTask,
        extra: this.options.extra,
        exportNames: EXPORTED.filter((n) => process.env[n] !== undefined),
      };
      const args = sbatchArgs({
        name,
        comment: `cogd run ${runId} batch ${batch} (${run.batchName.replace(/[^\x20-\x7e]/g, '?')})`,
        tasks: groups.length,
        throttle: watch.maxRunning,
        output: `${batchBase(runDir, batch)}-%a.out`,
        workdir: runDir,
        script: follow.script,
        scriptArgs: [batchFile],
        settings,
      });
      let arrayId: number;
      try {
        arrayId = await this.tools.submit(args, runDir);
      } catch (error) {
        // sbatch gave no answer: it may still have submitted. Asked by name before giving up.
        if (!(error instanceof CogdError && error.code === 'SlurmSubmitUnanswered')) throw error;
        const found = await this.tools.byName(name, new Date(Date.now() - 3600_000));
        if (found[0] === undefined) throw error;
        arrayId = found[0].arrayId;
      }
      crashPoint('slurm:submitted');
      this.db.setSlurmArray(runId, batch, arrayId);
      this.options.log.info('Slurm:Submitted', {
        run: runId,
        batch,
        array: arrayId,
        tasks: groups.length,
        rows: rows.length,
      });
      groups.forEach((group, task) => {
        for (const { job } of group) {
          job.files.log(
            perJob > 1
              ? `submitted in Slurm task ${taskId(arrayId, task)} (batch ${batch}, job name ${name}, a group of ${group.length} row${group.length === 1 ? '' : 's'})`
              : `submitted as Slurm task ${taskId(arrayId, task)} (batch ${batch}, job name ${name})`,
          );
        }
      });
    } catch (error) {
      this.db.clearSlurmBatch(runId, batch);
      this.options.log.warn('Slurm:SubmitFailed', { run: runId, batch, reason: describeError(error) });
      for (const row of rows) row.reject(error);
    }
  }

  // ---- polling

  /** One status call for every array followed, then the exit records of what ended (one poll at a time). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const follows: RunFollow[] = [];
    for (const f of await Promise.allSettled(this.runs.values())) if (f.status === 'fulfilled') follows.push(f.value);
    const live = follows.flatMap((f) => this.db.liveSlurmSubmissions(f.runId).map((s) => ({ follow: f, s })));
    if (live.length === 0) return;
    const arrays = [...new Set(live.map(({ s }) => s.arrayId!))];
    let statuses: TaskStatus[];
    try {
      statuses = await this.tools.status(arrays);
    } catch (error) {
      // Not a finished job: nothing is decided until Slurm answers again.
      this.options.log.warn('Slurm:StatusFailed', { arrays: arrays.length, reason: describeError(error) });
      return;
    }
    const index = new StatusIndex(statuses);
    const now = Date.now();
    const decided: Array<{ follow: RunFollow; s: SlurmSubmission; effect: StatusEffect }> = [];
    for (const { follow, s } of live) {
      const id = taskId(s.arrayId!, s.task);
      const status = index.get(s.arrayId!, s.task);
      const ended = status === undefined || !isWaitingOrActive(status.state);
      let record: ExitRecord | undefined;
      if (ended) {
        record = await readExitRecord(
          exitRecordPath(follow.runDir, s.batch, s.task, follow.rowsPerJob > 1 ? s.jobId : undefined),
          s.jobId,
        ).catch((error: unknown) => {
          this.options.log.warn('Slurm:ExitRecordUnreadable', { task: id, reason: describeError(error) });
          return undefined;
        });
      }
      const effect = applyStatus(
        {
          jobId: s.jobId,
          arrayId: s.arrayId!,
          task: s.task,
          state: s.state,
          note: s.note,
          requeues: s.requeues,
          mem: s.mem,
        },
        status,
        record,
        {
          unknownForMs: now - (this.unknownSince.get(id) ?? now),
          graceMs: this.options.graceMs ?? Math.max(20_000, 4 * this.options.pollMs),
          mem: this.options.mem,
          timeMinutes: this.options.timeMinutes,
          cancelledByCogd: this.cancelled.has(id),
          arrayKnown: index.knows(s.arrayId!),
        },
      );
      if (effect.kind === 'unknown') {
        if (!this.unknownSince.has(id)) this.unknownSince.set(id, now);
        continue;
      }
      this.unknownSince.delete(id);
      if (effect.kind !== 'none') decided.push({ follow, s, effect });
    }
    if (decided.length === 0) return;
    this.db.transaction(() => {
      for (const { s, effect } of decided) {
        if (effect.kind === 'progress') this.db.setSlurmProgress(s.jobId, effect.state, effect.note, effect.error);
        else if (effect.kind === 'result') this.db.setSlurmResult(s.jobId, effect.result);
        else if (effect.kind === 'requeue') this.db.requeueSlurmJob(s.jobId, effect.mem);
      }
    });
    if (decided.some(({ effect }) => effect.kind === 'result')) crashPoint('slurm:result-recorded');
    for (const { follow, s, effect } of decided) {
      if (effect.kind === 'none' || effect.kind === 'unknown') continue;
      const row = follow.waiters.get(s.jobId);
      row?.job.files.log(effect.log);
      if (effect.kind === 'progress' && effect.state === 'running') row?.job.started();
      else if (effect.kind === 'result') this.settle(follow, { ...s, result: effect.result });
      else if (effect.kind === 'requeue') {
        this.options.log.info('Slurm:Requeued', { job: s.jobId, task: taskId(s.arrayId!, s.task), reason: effect.log });
        if (row !== undefined) {
          row.mem = effect.mem ?? row.mem;
          follow.queue.add(row);
        }
      }
    }
  }

  /** Ends a job's wait with the attempt's recorded outcome. */
  private settle(follow: RunFollow, s: SlurmSubmission): void {
    const row = follow.waiters.get(s.jobId);
    if (row === undefined || s.result === null) return; // recorded; settled when the job is followed again
    const outcome = outcomeOf(s.result, this.options.retryTimeouts);
    if (!outcome.ok) {
      const ErrorType = outcome.permanent ? PermanentError : CogdError;
      row.reject(new ErrorType(outcome.timeout ? 'SlurmTimeout' : 'SlurmJobFailed', outcome.reason));
      return;
    }
    readExitRecord(
      exitRecordPath(follow.runDir, s.batch, s.task, follow.rowsPerJob > 1 ? s.jobId : undefined),
      s.jobId,
    ).then(
      (record) => row.resolve(record?.item === undefined ? undefined : { item: record.item }),
      (error: unknown) => row.reject(error),
    );
  }

  /** Nobody waits on the run: stop asking about it until a job of it runs again. */
  private forgetIfIdle(follow: RunFollow): void {
    if (follow.waiters.size > 0 || follow.queue.busy) return;
    this.runs.delete(follow.runId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const follows = await Promise.allSettled(this.runs.values());
    for (const f of follows) if (f.status === 'fulfilled') await f.value.queue.drain();
    await this.polling?.catch(() => undefined);
  }
}

/** Whether Slurm still has the task waiting or running (else it ended). */
function isWaitingOrActive(state: string): boolean {
  return ![
    'COMPLETED',
    'FAILED',
    'TIMEOUT',
    'DEADLINE',
    'OUT_OF_MEMORY',
    'NODE_FAIL',
    'PREEMPTED',
    'BOOT_FAIL',
    'CANCELLED',
    'SPECIAL_EXIT',
    'REVOKED',
  ].includes(state);
}

/**
 * The jobs' tasks in Slurm: `ids` for one scancel or scontrol (a whole array as `A` where every
 * task still queued is named), `tasks` each as `A_T`. Read synchronously (`cogd rm` too).
 */
export function slurmTaskIds(db: StateDB, jobIds: readonly number[]): { ids: string[]; tasks: string[] } {
  const tasks: Array<{ arrayId: number; task: number }> = [];
  const seen = new Set<string>();
  for (const jobId of jobIds) {
    const s = db.slurmSubmission(jobId);
    if (s?.arrayId == null || s.result !== null) continue;
    // A task converting a group (--rows-per-job) is left to its other rows while any still lives.
    if (sharingRows(db, s, jobIds) > 0 || seen.has(taskId(s.arrayId, s.task))) continue;
    seen.add(taskId(s.arrayId, s.task));
    tasks.push({ arrayId: s.arrayId, task: s.task });
  }
  return {
    ids: compactIds(tasks, (arrayId) => db.liveSlurmTasks(arrayId)),
    tasks: tasks.map((t) => taskId(t.arrayId, t.task)),
  };
}

/** Rows other than `jobIds` that share the submission's task and still live (a group's other rows). */
function sharingRows(db: StateDB, s: SlurmSubmission, jobIds: readonly number[]): number {
  return db
    .liveSlurmSubmissions(s.runId)
    .filter(
      (o) =>
        o.arrayId === s.arrayId &&
        o.task === s.task &&
        !jobIds.includes(o.jobId) &&
        ['idle', 'running', 'held'].includes(o.state),
    ).length;
}

/** Leaves the marker that makes a group task pass over a removed row (`skipMarker`); never throws. */
async function markSkipped(runDir: string, jobId: number): Promise<void> {
  const marker = skipMarker(runDir, jobId);
  await mkdir(path.dirname(marker), { recursive: true })
    .then(() => writeFile(marker, ''))
    .catch(() => undefined);
}
