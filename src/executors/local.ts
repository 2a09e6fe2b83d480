/**
 * The local executor: converts images on this machine. Transfers and GDAL have separate limits, so
 * a download never holds a CPU slot; at most `cpu * 2 + io` jobs hold scratch space at once, and
 * none downloads without room for its input and outputs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkCog } from '../convert/cog-check.js';
import { differences } from '../convert/fidelity.js';
import { gdalVersion, inspect, inspectRaw, runGdal, type GdalOptions, type ProcessTracker } from '../convert/gdal.js';
import { planPreview, previewCommand, previewVrt } from '../convert/preview.js';
import { cogCommand, planCog, wantsChecksum, type CogPlan } from '../convert/profiles.js';
import { footprint, type Footprint } from '../stac/footprint.js';
import { buildItem } from '../stac/item.js';
import { itemPlace } from '../stac/publish.js';
import { COGD_VERSION } from '../version.js';
import { checkLimits, type Limits } from '../convert/rules.js';
import { readTiffHeader } from '../convert/tiff-header.js';
import { crashPoint } from '../util/crash.js';
import pLimit, { type LimitFunction } from 'p-limit';
import { CogdError, PermanentError } from '../errors.js';
import type { Executor, JobOutput, JobSpec } from './types.js';

export interface LocalOptions {
  /**
   * cogd's own directory on the scratch disk (`<--scratch>/cogd-<home id>`): each attempt of a job
   * works in a fresh sub-directory of it, removed on every exit path. Nothing outside it is touched.
   */
  scratch: string;
  /** Records each GDAL process of a job while it runs. @defaultValue none */
  processes?: (jobId: number) => ProcessTracker;
  /** Concurrent GDAL processes. @defaultValue the machine's cores */
  cpu: number;
  /** Concurrent S3 transfers. @defaultValue 8 */
  io: number;
  /** Deadline of one GDAL command (a conversion step). @defaultValue 30 minutes */
  stepTimeoutMs: number;
  /** Deadline of the pre-flight inspection. @defaultValue 60 s */
  inspectTimeoutMs: number;
  /** What an input may be before it is rejected unconverted. */
  limits: Limits;
  /** How long a job waits for scratch space before failing. @defaultValue 10 minutes */
  scratchWaitMs: number;
  /** Free bytes under a directory; injectable for tests. @defaultValue statfs */
  freeSpace?: (dir: string) => Promise<number>;
}

/** Scratch a job needs beyond its input: the COG (LZW, usually smaller) and the preview. */
export function scratchNeeded(inputBytes: number): number {
  return Math.ceil(inputBytes * 2.2) + 16 * 1024 * 1024;
}

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  /** Jobs admitted at once (see `admitted`): the scheduler keeps the rest waiting in the DB. */
  readonly capacity: number;
  private readonly cpu: LimitFunction;
  private readonly io: LimitFunction;
  private readonly admitted: LimitFunction;
  /** Scratch bytes promised to jobs that are downloading or converting. */
  private reserved = 0;
  /** GDAL's environment: a block cache sized so every concurrent GDAL fits in half the memory. */
  private readonly gdalEnv: Record<string, string>;

  constructor(private readonly options: LocalOptions) {
    this.cpu = pLimit(options.cpu);
    this.io = pLimit(options.io);
    this.capacity = options.cpu * 2 + options.io;
    this.admitted = pLimit(this.capacity);
    const cacheMb = Math.max(64, Math.min(1024, Math.floor(os.totalmem() / 2 / options.cpu / 2 ** 20)));
    // One thread per GDAL process: the pool already runs one process per core.
    this.gdalEnv = { GDAL_CACHEMAX: String(cacheMb), GDAL_NUM_THREADS: '1' };
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<JobOutput | undefined> {
    return this.admitted(async () => {
      job.started();
      // A fresh directory per attempt: nothing a previous attempt left can mix with this one's files.
      // Made once the input's first bytes arrive: an image that does not exist never needs one.
      const dir = path.join(this.options.scratch, `job-${job.jobId}-${randomBytes(6).toString('hex')}`);
      // Set in `prepare`: an object, so the type checker does not take them for constants here.
      const scratch = { made: false, reserved: 0 };
      // A download tried again calls this again: what is reserved and made stays.
      const prepare = async (bytes: number): Promise<void> => {
        if (scratch.reserved === 0) {
          const need = scratchNeeded(bytes);
          await this.reserve(need, job, signal);
          scratch.reserved = need;
        }
        if (scratch.made) return;
        await mkdir(this.options.scratch, { recursive: true });
        await mkdir(dir, { mode: 0o700 });
        scratch.made = true;
      };
      try {
        return await this.convert(job, dir, signal, prepare);
      } finally {
        this.reserved -= scratch.reserved;
        if (scratch.made) await rm(dir, { recursive: true, force: true });
      }
    });
  }

  /** Waits until the scratch disk has room for `need` more bytes, then reserves them. */
  private async reserve(need: number, job: JobSpec, signal: AbortSignal): Promise<void> {
    const free = this.options.freeSpace ?? statfsFree;
    const deadline = Date.now() + this.options.scratchWaitMs;
    let logged = false;
    for (;;) {
      const have = (await free(this.options.scratch)) - this.reserved;
      if (have >= need) {
        this.reserved += need;
        return;
      }
      if (Date.now() >= deadline) {
        throw new CogdError(
          'NoScratchSpace',
          `not enough scratch space in ${this.options.scratch} (need ${need}, have ${Math.max(0, have)})`,
          {
            hint: 'free space there or point --scratch at a larger disk',
          },
        );
      }
      if (!logged) job.files.log(`waiting for scratch space (need ${need} bytes, have ${Math.max(0, have)})`);
      logged = true;
      await sleep(Math.min(2000, Math.max(50, deadline - Date.now())));
      signal.throwIfAborted();
    }
  }

  private async convert(
    job: JobSpec,
    dir: string,
    signal: AbortSignal,
    /** Reserves scratch space for an input of this size and makes `dir`. */
    prepare: (inputBytes: number) => Promise<void>,
  ): Promise<JobOutput | undefined> {
    const { files } = job;
    const input = path.join(dir, 'input.tif');
    const cog = path.join(dir, 'cog.tif');
    const preview = path.join(dir, 'preview.jpg');
    const track = this.options.processes?.(job.jobId);
    const names = {
      [input]: `s3://${job.inputBucket}/${job.imageKey}`,
      [cog]: `s3://${job.outputBucket}/${job.cogKey}`,
      [preview]: `s3://${job.outputBucket}/${job.previewKey}`,
      [dir]: `(scratch of job ${job.jobId})`,
    };
    const gdal = {
      signal,
      env: this.gdalEnv,
      timeoutMs: this.options.stepTimeoutMs,
      names,
      ...(track === undefined ? {} : { track }),
    };

    signal.throwIfAborted();
    const size = await this.io(() =>
      job.clock.ticking(() =>
        job.storage.download(job.inputBucket, job.imageKey, input, {
          signal,
          beforeWrite: prepare,
        }),
      ),
    ).catch((error: unknown) => {
      if (error instanceof CogdError && error.code === 'NoSuchKey') {
        throw new PermanentError('NoSuchKey', `the image s3://${job.inputBucket}/${job.imageKey} does not exist`, {
          hint: 'check the key in the manifest',
          cause: error,
        });
      }
      throw error;
    });
    files.log(`downloaded s3://${job.inputBucket}/${job.imageKey} (${size} bytes)`);
    crashPoint('job:downloaded');

    const made = await this.cpu(() =>
      job.clock.ticking(() => this.transform(job, { input, cog, preview, vrt: path.join(dir, 'preview.vrt') }, gdal)),
    );
    crashPoint('job:converted');

    signal.throwIfAborted();
    const [cogUpload, previewUpload] = await Promise.all([
      this.io(() =>
        job.clock.ticking(() => job.storage.uploadFile(job.outputBucket, job.cogKey, cog, 'image/tiff', signal)),
      ),
      this.io(() =>
        job.clock.ticking(() =>
          job.storage.uploadFile(job.outputBucket, job.previewKey, preview, 'image/jpeg', signal),
        ),
      ),
    ]);
    crashPoint('job:uploaded');
    // uploadFile verifies what S3 now holds: the returned ETag is the MD5 of the bytes sent (or a
    // HEAD shows the size, where the ETag is no MD5, and after multipart uploads).
    files.log(
      `uploaded and verified s3://${job.outputBucket}/${job.cogKey} (${cogUpload.size} bytes) and s3://${job.outputBucket}/${job.previewKey} (${previewUpload.size} bytes)`,
    );
    if (made.footprint === undefined) return undefined;
    // The item last: it describes the objects as they are in the bucket, checksums of the bytes sent.
    const place = itemPlace(job.cogKey, job.outputBucket, job.conversion);
    const item = buildItem({
      key: job.cogKey,
      outputBucket: job.outputBucket,
      ...place,
      gdalinfo: made.gdalinfo,
      footprint: made.footprint,
      cog: cogUpload,
      preview: previewUpload,
      previewKey: job.previewKey,
      processing: {
        cogdVersion: COGD_VERSION,
        gdalVersion: gdalVersion(),
        datetime: new Date().toISOString(),
        profile: made.plan.profile,
        creationOptions: made.plan.options,
      },
    });
    await this.io(() =>
      job.clock.ticking(() =>
        job.storage.put(job.outputBucket, place.itemKey, `${JSON.stringify(item, null, 2)}\n`, 'application/geo+json'),
      ),
    );
    files.log(`wrote the STAC item s3://${job.outputBucket}/${place.itemKey}`);
    return { item: { key: place.itemKey, bbox: item.bbox ?? null, datetime: item.properties.datetime } };
  }

  /**
   * Inspect, plan, convert, check: one gdalinfo of the input (with checksums where the profile is
   * lossless, statistics where the preview stretches), the COG and the preview, then the COG gate
   * and the fidelity check against a gdalinfo of the output. Nothing counts until both pass.
   */
  private async transform(
    job: JobSpec,
    paths: { input: string; cog: string; preview: string; vrt: string },
    gdal: GdalOptions,
  ): Promise<{ plan: CogPlan; gdalinfo: string; footprint: Footprint | undefined }> {
    const { files, conversion } = job;
    const { input, cog, preview, vrt } = paths;
    gdal.signal?.throwIfAborted();
    const inspection = { ...gdal, timeoutMs: this.options.inspectTimeoutMs };
    // GeoTIFF bands share one type: the header says at once whether the preview will stretch
    // (statistics) and lets absurd sizes fail before GDAL reads a pixel.
    const header = await readTiffHeader(input).catch(() => undefined);
    if (header !== undefined) checkLimits(header, this.options.limits);
    const statistics = header === undefined || header.bands.some((b) => b.type !== 'Byte');
    const info = await inspect(input, files, { ...inspection, statistics, checksum: wantsChecksum(conversion) });
    checkLimits(info, this.options.limits);
    if (info.bands.length !== job.declaredBands) {
      files.log(
        `warning: the manifest declares ${job.declaredBands} bands, the file has ${info.bands.length}; using the file's ${info.bands.length}`,
      );
      job.log.warn('Job:BandMismatch', { key: job.imageKey, declared: job.declaredBands, actual: info.bands.length });
    }
    // Everything is decided before any conversion: an image the profile or a preview cannot hold fails here.
    const plan = planCog(info, conversion);
    const look = planPreview(info, conversion);
    files.log(
      `profile ${plan.profile}${conversion.profile === 'auto' ? ' (auto)' : ''}: ${plan.lossless ? 'lossless' : 'lossy'}; preview from band(s) ${look.bands.join(',')}${look.masked ? ', masked pixels drawn as the background' : ''}`,
    );
    await runGdal('gdal_translate', cogCommand(plan, input, cog), files, gdal);
    if (look.masked) await writeFile(vrt, previewVrt(look, info, input));
    await runGdal('gdal_translate', previewCommand(look, look.masked ? vrt : input, preview), files, gdal);

    const gate = await checkCog(cog);
    if (!gate.ok) {
      // Each of the gate's reasons opens with "not a cloud optimized GeoTIFF: ": said once here.
      const reasons = gate.errors.map((e) => e.replace(/^not a cloud optimized GeoTIFF: /, ''));
      throw new PermanentError('NotCog', `the output is not a cloud optimized GeoTIFF: ${reasons.join('; ')}`);
    }
    // Statistics (from the overviews: cheap on a COG) where the STAC item lists them per band.
    const { info: output, json: gdalinfo } = await inspectRaw(cog, files, {
      ...inspection,
      statistics: conversion.stac,
      checksum: plan.lossless,
    });
    const changed = differences(info, output, { exactBands: plan.exactBands, alphaToMask: plan.profile === 'jpeg' });
    if (changed.length > 0)
      throw new PermanentError('NotFaithful', `the COG does not keep the input's ${changed.join('; ')}`);
    const exact =
      plan.exactBands.length === info.bands.length
        ? ', pixels identical'
        : plan.exactBands.length > 0
          ? ', visible pixels identical'
          : '';
    files.log(`checked: a valid COG, faithful to the input${exact}`);
    const env = { GDAL_PAM_ENABLED: 'NO' };
    const where = conversion.stac
      ? await footprint(cog, gdalinfo, { ...(gdal.signal ? { signal: gdal.signal } : {}), env })
      : undefined;
    return { plan, gdalinfo, footprint: where };
  }

  async close(): Promise<void> {
    // Nothing long-lived: GDAL processes end with their jobs.
  }
}

/**
 * Removes what a process that died mid-job left in cogd's own scratch directory — that directory
 * only, never the directory the user named (it may be /tmp, a mount point, or hold their files).
 */
export async function cleanScratch(scratch: string): Promise<void> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true, mode: 0o700 });
}
