/**
 * The engine of cogd: polls watches, claims manifests, plans and executes runs, runs their post
 * steps, and applies removal requests. `cogd poll` drives it for one poll; the daemon process
 * (`cogd start`) keeps it going on each watch's schedule.
 */
import path from 'node:path';
import { closeAll } from '../util/cleanup.js';
import type { EngineConfig } from '../config/index.js';
import { exponential, type Backoff } from '../util/backoff.js';
import { retry } from '../util/retry.js';
import { planManifest } from '../dag/plan.js';
import type { EngineObserver } from '../dag/observer.js';
import { Scheduler } from '../dag/scheduler.js';
import { CogdError, describeError } from '../errors.js';
import { CondorExecutor } from '../executors/condor/executor.js';
import { cleanScratch, LocalExecutor } from '../executors/local.js';
import { SlurmExecutor } from '../executors/slurm/executor.js';
import type { Executor } from '../executors/types.js';
import type { Log } from '../log/index.js';
import { MANIFEST_FILE } from '../manifest/names.js';
import { post, recordPostFailure } from '../post/post.js';
import type { RunRecord, StateDB } from '../state/db.js';
import { createStorage, type Storage } from '../storage/s3.js';
import type { S3Settings, Watch } from '../types.js';
import { claim, continueClaim, forgetClaim, LostClaim, writeRunInfo } from '../watch/claim.js';
import { findNewManifests } from '../watch/poll.js';
import { crashPoint } from '../util/crash.js';
import { homeId, homePaths } from './home.js';
import { ProcessRegistry } from './processes.js';
import { RunEnds } from './run-ends.js';
import { settleRemovals } from './removal.js';
import { collectWhileIdle } from './node-flags.js';

export type DaemonOptions = EngineConfig;

/** Attempts of a post step within one poll before the run is left in `post` for the next poll. */
const POST_ATTEMPTS = 3;
/** 1 s, then 2 s between post attempts. */
const POST_BACKOFF: Backoff = { kind: 'exponential', baseMs: 1000, factor: 2, maxMs: 2000, jitter: 0 };

/** How a hold cogd asked HTCondor for starts its reason: never confused with HTCondor's own holds. */
const CONDOR_HOLD_MARK = 'cogd hold: ';

export class Daemon {
  readonly logDir: string;
  readonly scratch: string;
  private readonly executor: Executor;
  /** GDAL processes of jobs, recorded while they run. */
  private readonly processes: ProcessRegistry;
  /** Made when a watch first needs it. */
  private condor: CondorExecutor | undefined;
  private slurm: SlurmExecutor | undefined;
  private readonly scheduler: Scheduler;
  /** Hooks and notifications of finished runs, in the background. */
  private readonly runEnds: RunEnds;
  /** Runs being advanced by this process, by id (undefined once a lost claim is forgotten). */
  private readonly active = new Map<number, Promise<RunRecord | undefined>>();
  /** Watches whose endpoint was probed for conditional writes by this process. */
  private readonly probed = new Set<number>();
  /** One S3 client per endpoint and credentials, made on first use and kept. */
  private readonly storages = new Map<string, Promise<Storage>>();

  constructor(
    private readonly db: StateDB,
    private readonly log: Log,
    private readonly options: DaemonOptions,
    private readonly observer?: EngineObserver,
  ) {
    this.logDir = homePaths(options.home).logs;
    // cogd's own subdirectory of the scratch directory: the only part of it cogd ever deletes.
    this.scratch = path.join(options.scratch, `cogd-${homeId(options.home)}`);
    this.processes = new ProcessRegistry(db);
    this.executor = new LocalExecutor({
      scratch: this.scratch,
      processes: (jobId) => this.processes.forJob(jobId),
      cpu: options.cpuConcurrency,
      io: options.ioConcurrency,
      stepTimeoutMs: options.stepTimeoutMs,
      inspectTimeoutMs: options.inspectTimeoutMs,
      limits: options.limits,
      scratchWaitMs: options.scratchWaitMs,
    });
    this.scheduler = new Scheduler(db, {
      jobTimeoutMs: options.jobTimeoutMs,
      retryTimeouts: options.retryTimeouts,
      observer,
    });
    this.runEnds = new RunEnds(db, log, options.runEnd, this.processes);
  }

  /** The executor of a run: its watch's, or HTCondor's or Slurm's while any of its jobs is queued there. */
  private executorFor(run: RunRecord): Executor {
    const watch = this.db.watch(run.watchId);
    if (this.db.hasCondorSubmissions(run.id)) return this.condorExecutor();
    if (this.db.hasSlurmSubmissions(run.id)) return this.slurmExecutor();
    if (watch?.executor === 'condor') return this.condorExecutor();
    if (watch?.executor === 'slurm') return this.slurmExecutor();
    return this.executor;
  }

  private slurmExecutor(): SlurmExecutor {
    const o = this.options;
    this.slurm ??= new SlurmExecutor({
      ...o.slurm,
      db: this.db,
      log: this.log,
      homeId: homeId(o.home),
      retryTimeouts: o.retryTimeouts,
      engine: {
        limits: o.limits,
        stepTimeoutMs: o.stepTimeoutMs,
        inspectTimeoutMs: o.inspectTimeoutMs,
        scratchWaitMs: o.scratchWaitMs,
      },
    });
    return this.slurm;
  }

  private condorExecutor(): CondorExecutor {
    this.condor ??= new CondorExecutor({ ...this.options.condor, db: this.db, log: this.log });
    return this.condor;
  }

  /**
   * Stops the GDAL processes a killed process of this home left running, then removes its scratch
   * files. Call once, before the first poll: no job may run again while an old attempt still does.
   */
  async prepare(): Promise<void> {
    await this.processes.killLeftovers(this.log);
    await cleanScratch(this.scratch);
  }

  storageFor(settings: S3Settings): Promise<Storage> {
    const key = JSON.stringify([settings.endpoint, settings.accessKeyFile, settings.secretKeyFile, settings.region]);
    let storage = this.storages.get(key);
    if (storage === undefined) {
      storage = createStorage(settings, { log: this.log, observer: this.observer });
      this.storages.set(key, storage);
      storage.catch(() => this.storages.delete(key));
    }
    return storage;
  }

  /** S3 requests sent so far by every client of this process. */
  async requests(): Promise<number> {
    const all = await Promise.allSettled(this.storages.values());
    return all.reduce((sum, s) => sum + (s.status === 'fulfilled' ? s.value.requests : 0), 0);
  }

  /**
   * One poll of a watch: resumes its unfinished runs, then claims every new matching manifest.
   * Returns the runs now in progress; `settled()` waits for them. With `planOnly`, runs are claimed
   * and planned but not executed (a later poll or the daemon takes them on).
   */
  async poll(watch: Watch, options: { planOnly?: boolean } = {}): Promise<number[]> {
    const planOnly = options.planOnly ?? false;
    if (watch.hold !== null) {
      this.log.debug('Watch:Held', { watch: watch.id, reason: watch.hold.reason });
      return this.resume(watch.id, planOnly); // its claimed runs go on (unless held themselves)
    }
    if (watch.inputBucket === watch.outputBucket) {
      // Refused at `cogd start`; a watch stored by an older cogd may still have it.
      throw new CogdError(
        'SameBucket',
        `watch ${watch.id} writes its outputs to its input bucket s3://${watch.inputBucket}: every COG would overwrite its source image`,
        {
          hint: `remove it (cogd rm w${watch.id}) and start it again with another --output-bucket`,
        },
      );
    }
    const started = this.resume(watch.id, planOnly);
    let manifests: Awaited<ReturnType<typeof findNewManifests>>;
    let storage: Storage;
    try {
      storage = await this.storageFor(watch.s3);
      manifests = await findNewManifests(storage, this.db, watch);
    } catch (error) {
      this.db.setWatchPolled(watch.id, describeError(error));
      this.observer?.polled(watch.id, true);
      throw error;
    }
    this.db.setWatchPolled(watch.id, null);
    this.observer?.polled(watch.id, false);
    this.log.info('Watch:Polled', { watch: watch.id, pattern: watch.pattern, found: manifests.length });
    if (manifests.length > 0) await this.checkConditionalWrites(watch, storage);
    for (const object of manifests) {
      const run = await claim({ db: this.db, storage, log: this.log, logDir: this.logDir }, watch, object);
      if (run === undefined) continue; // another cogd won it
      this.track(run, planOnly);
      started.push(run.id);
    }
    if (this.active.size === 0) collectWhileIdle(); // nothing in flight until the next poll
    return started;
  }

  /**
   * Claims are safe across daemons only where the endpoint enforces conditional creates. Probed
   * once per watch and process; the answer is kept for `cogd status`.
   */
  private async checkConditionalWrites(watch: Watch, storage: Storage): Promise<void> {
    if (this.probed.has(watch.id)) return;
    const enforced = await storage.probeConditionalWrites(watch.inputBucket);
    this.probed.add(watch.id);
    this.db.setConditionalWrites(watch.id, enforced);
    if (!enforced) {
      this.log.warn('Watch:UnsafeClaims', {
        watch: watch.id,
        bucket: watch.inputBucket,
        reason: `s3://${watch.inputBucket} does not enforce conditional writes (If-None-Match): only one cogd daemon may watch this bucket`,
      });
    }
  }

  /** Applies the watches' stored settings to their runs in progress (called when they are reloaded). */
  updateWatches(watches: Watch[]): void {
    for (const watch of watches) {
      this.scheduler.updateWatch(watch.id, {
        maxRunning: watch.maxRunning,
        retries: watch.retries,
        backoff: exponential(watch.retryDelayMs),
      });
    }
  }

  /**
   * Takes on every unfinished run (of one watch, or all) that this process is not advancing yet;
   * unless planning only, also the hooks and notifications of finished runs still pending.
   */
  resume(watchId?: number, planOnly = false): number[] {
    const ids: number[] = [];
    for (const run of this.db.unfinishedRuns(watchId)) {
      if (!this.active.has(run.id)) this.track(run, planOnly);
      ids.push(run.id);
    }
    if (!planOnly) this.runEnds.resume(watchId);
    return ids;
  }

  /**
   * Waits for the hooks and notifications in flight (of the given runs, or all) — which a run's
   * end started without waiting: `settled()` returns before them.
   */
  async runEndsSettled(runIds?: readonly number[]): Promise<void> {
    await this.runEnds.settled(runIds);
  }

  /** Waits for the given runs to finish (or to stop where this process can take them no further). */
  async settled(runIds: number[]): Promise<RunRecord[]> {
    const results: RunRecord[] = [];
    for (const id of runIds) {
      const pending = this.active.get(id);
      const run = pending === undefined ? this.db.run(id) : await pending;
      if (run !== undefined) results.push(run); // a claim lost to another cogd leaves no run
    }
    return results;
  }

  /**
   * Applies the removal requests `cogd rm` recorded: jobs executing here are stopped, waiting ones
   * never start. Requests for runs no process executes are applied to the DB directly.
   */
  applyRemovals(): void {
    const requested = this.db.jobsToRemove();
    if (requested.length === 0) return;
    const notHere = this.scheduler.remove(requested).filter((id) => !this.isActiveJob(id));
    // Jobs no process follows may still be queued in HTCondor or Slurm: they leave the queue too (a
    // failing condor_rm or scancel is logged by the executor). Each reads its ids before it waits.
    settleRemovals(this.db, notHere, async (queued) => {
      const inSlurm = queued.filter((id) => this.db.anySlurmSubmissions([id]));
      const inCondor = queued.filter((id) => this.db.anyCondorSubmissions([id]));
      await Promise.all([
        inCondor.length > 0 ? this.condorExecutor().cancel(inCondor) : undefined,
        inSlurm.length > 0 ? this.slurmExecutor().cancel(inSlurm) : undefined,
      ]);
      return true;
    }).catch((error: unknown) =>
      this.log.error('Job:RemovalFailed', { jobs: notHere.join(' '), reason: describeError(error) }),
    );
  }

  /**
   * Applies the user's holds (`cogd hold`, recorded in the DB): held runs start no job, held jobs
   * are not started, and where a hold says `now`, jobs already running here are stopped and
   * requeued. Cheap: called with every removal check.
   */
  applyHolds(): void {
    const runs = this.db.heldRuns();
    const jobs = this.db.heldJobs();
    const nowRuns = new Set([...runs].filter(([, hold]) => hold.now).map(([id]) => id));
    const now = [...this.scheduler.inFlightOf(nowRuns), ...jobs.filter((j) => j.hold.now).map((j) => j.id)];
    this.scheduler.setHolds({ runs: runs.keys(), jobs: jobs.map((j) => j.id), now });
    this.applyExecutorHolds();
  }

  /** Jobs with a condor_hold / scontrol (hold or release) call in flight: never asked twice at once. */
  private readonly asking = new Set<number>();

  /**
   * The user's holds on jobs HTCondor or Slurm has: held there (`condor_hold -reason "cogd hold: …"`
   * for waiting jobs, running ones too with `--now`, which HTCondor vacates; `scontrol hold` for
   * waiting tasks), and released there once the hold is taken off. Which jobs cogd had held is kept
   * in the DB, so a release after a restart releases them, and holds made outside cogd (HTCondor's
   * own after a failed transfer, an admin's) are never touched.
   */
  private applyExecutorHolds(): void {
    const hold = new Map<string, { executor: 'condor' | 'slurm'; reason: string; jobIds: number[] }>();
    const release = new Map<'condor' | 'slurm', number[]>();
    for (const job of this.db.executorJobHolds()) {
      if (this.asking.has(job.id)) continue;
      const executor = job.executor === 'condor' ? this.condor : this.slurm;
      if (executor === undefined) continue; // not followed by this process yet: applied once it is
      const stoppable =
        job.state === 'idle' || (job.state === 'running' && job.hold?.now === true && job.executor === 'condor');
      if (job.hold !== null && !job.asked && stoppable) {
        const reason = `${CONDOR_HOLD_MARK}${job.hold.reason} (by ${job.hold.by})`;
        const key = `${job.executor}\n${reason}`;
        const entry = hold.get(key) ?? { executor: job.executor, reason, jobIds: [] };
        entry.jobIds.push(job.id);
        hold.set(key, entry);
      } else if (job.hold === null && job.asked) {
        release.set(job.executor, [...(release.get(job.executor) ?? []), job.id]);
      }
    }
    const ask = (jobIds: number[], asked: boolean, call: Promise<boolean>): void => {
      for (const id of jobIds) this.asking.add(id);
      call
        .then((ok) => {
          if (ok) this.db.setExecutorHoldAsked(jobIds, asked); // else asked again at the next check
        })
        .catch((error: unknown) => this.log.warn('Hold:ExecutorFailed', { reason: describeError(error) }))
        .finally(() => {
          for (const id of jobIds) this.asking.delete(id);
        });
    };
    for (const { executor, reason, jobIds } of hold.values()) {
      ask(jobIds, true, executor === 'condor' ? this.condor!.hold(jobIds, reason) : this.slurm!.hold(jobIds));
    }
    for (const [executor, jobIds] of release) {
      ask(jobIds, false, executor === 'condor' ? this.condor!.release(jobIds) : this.slurm!.release(jobIds));
    }
  }

  /** Applies what `cogd rm`, `hold` and `release` recorded. */
  applyRequests(): void {
    this.applyRemovals();
    this.applyHolds();
  }

  private isActiveJob(jobId: number): boolean {
    const runId = this.db.runOfJob(jobId);
    return runId !== undefined && this.active.has(runId);
  }

  private track(run: RunRecord, planOnly: boolean): void {
    const pending = this.advance(run, planOnly)
      .catch((error: unknown) => {
        // A failure here is the whole run's (S3 unreachable during the claim, say): log it, keep the
        // run unfinished so the next poll picks it up again, never take the daemon down.
        this.log.error('Run:Stalled', { run: run.id, manifest: run.manifestKey, reason: describeError(error) });
        return this.db.run(run.id);
      })
      .finally(() => this.active.delete(run.id));
    this.active.set(run.id, pending);
  }

  /** Takes a run from wherever it is to done: finish claim → plan → execute → post. */
  private async advance(initial: RunRecord, planOnly: boolean): Promise<RunRecord | undefined> {
    let run = initial;
    const watch = this.db.watch(run.watchId)!;
    const storage = await this.storageFor(watch.s3);
    const log = this.log.child({ run: run.id }).withFile(path.join(run.runDir, 'run.log'));
    try {
      if (run.state === 'claiming') {
        try {
          run = await continueClaim({ db: this.db, storage, log, logDir: this.logDir }, run);
        } catch (error) {
          if (!(error instanceof LostClaim)) throw error;
          await log.close();
          await forgetClaim({ db: this.db, log: this.log, storage }, run, error);
          return undefined;
        }
        await writeRunInfo(run);
        const rows = await this.plan(run, log);
        run = this.db.run(run.id)!;
        // The plan of a big manifest (~1.5 KB a row) is garbage now: collected before execution
        // starts, it does not stay in the heap's high-water mark (the daemon may; `cogd poll` cannot).
        if (rows >= 10_000) collectWhileIdle();
      }
      if (planOnly) return run;
      if (run.state === 'running') {
        const planned = run;
        this.applyHolds(); // a run held before this process took it starts nothing
        const execution = this.scheduler.execute({
          run: planned,
          log,
          storage,
          executor: this.executorFor(planned),
          maxRunning: watch.maxRunning,
          retries: watch.retries,
          backoff: exponential(watch.retryDelayMs),
          conversion: this.db.runConversion(planned.id) ?? watch.conversion,
          post: () => this.postWithRetries(planned, storage, log),
        });
        this.applyRequests(); // requests recorded while no process was executing this run
        await execution;
      } else if (run.state === 'post') {
        await this.postWithRetries(run, storage, log);
      }
      const final = this.db.run(run.id)!;
      // Its hook and notification start now, in the background: never awaited by the run or a poll.
      if (final.state === 'done') this.runEnds.start(final.id);
      return final;
    } finally {
      await log.close();
    }
  }

  /** Plans a claimed run: every row stored as a job (rejected rows failed). Returns the rows. */
  private async plan(run: RunRecord, log: Log): Promise<number> {
    const plan = await planManifest(path.join(run.runDir, MANIFEST_FILE));
    if (plan.error !== null) {
      this.db.setRunError(run.id, plan.error);
      log.warn('Run:ManifestRejected', { manifest: run.manifestKey, reason: plan.error });
    }
    this.db.insertJobs(run.id, plan.jobs);
    crashPoint('plan:stored');
    log.info('Run:Planned', {
      manifest: run.manifestKey,
      rows: plan.jobs.length,
      rejected: plan.jobs.filter((j) => j.state === 'failed').length,
    });
    return plan.jobs.length;
  }

  private async postWithRetries(run: RunRecord, storage: Storage, log: Log): Promise<void> {
    try {
      const result = await retry(() => post({ db: this.db, storage, log }, this.db.run(run.id)!), {
        attempts: POST_ATTEMPTS,
        backoff: POST_BACKOFF,
        onRetry: (error, attempt) =>
          log.warn('Run:PostAttemptFailed', { attempt, of: POST_ATTEMPTS, reason: describeError(error) }),
      });
      const rejected = (this.db.run(run.id)?.error ?? null) !== null;
      this.observer?.runFinished(rejected ? 'rejected' : result.failed > 0 ? 'failures' : 'processed');
    } catch (error) {
      log.warn('Run:PostAttemptFailed', { attempt: POST_ATTEMPTS, of: POST_ATTEMPTS, reason: describeError(error) });
      await recordPostFailure({ db: this.db, log }, run, error);
    }
  }

  /** Stops launching jobs; jobs in flight are interrupted and go back to idle for the next start. */
  async close(): Promise<void> {
    await closeAll(
      [
        () => this.runEnds.close(),
        () => this.scheduler.drain(),
        () => this.executor.close(),
        async () => this.condor?.close(),
        async () => this.slurm?.close(),
        async () => {
          for (const storage of await Promise.allSettled(this.storages.values())) {
            if (storage.status === 'fulfilled') storage.value.close();
          }
        },
      ],
      'the cogd engine',
    );
  }
}
