/**
 * The local executor: converts images on this machine. Transfers and GDAL have separate limits, so
 * a download never holds a CPU slot; at most `cpu * 2 + io` jobs hold scratch space at once.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { inspect, runGdal } from '../convert/gdal.js';
import { cogArgs, jpegArgs, needsStatistics } from '../convert/rules.js';
import { crashPoint } from '../daemon/crash.js';
import { CogdError, PermanentError } from '../errors.js';
import { Semaphore } from './semaphore.js';
import type { Executor, JobSpec } from './types.js';

export interface LocalOptions {
  /** Scratch directory; each job works in its own sub-directory, removed on every exit path. */
  scratch: string;
  /** Concurrent GDAL processes. @defaultValue the machine's cores */
  cpu: number;
  /** Concurrent S3 transfers. @defaultValue 8 */
  io: number;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly cpu: Semaphore;
  private readonly io: Semaphore;
  private readonly admitted: Semaphore;

  constructor(private readonly options: LocalOptions) {
    this.cpu = new Semaphore(options.cpu);
    this.io = new Semaphore(options.io);
    this.admitted = new Semaphore(options.cpu * 2 + options.io);
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<void> {
    await this.admitted.use(async () => {
      const dir = path.join(this.options.scratch, `job-${job.jobId}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      try {
        await this.convert(job, dir, signal);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  private async convert(job: JobSpec, dir: string, signal: AbortSignal): Promise<void> {
    const { files } = job;
    const input = path.join(dir, 'input.tif');
    const cog = path.join(dir, 'cog.tif');
    const preview = path.join(dir, 'preview.jpg');

    signal.throwIfAborted();
    const size = await this.io.use(() => job.storage.download(job.inputBucket, job.imageKey, input, signal)).catch((error: unknown) => {
      if (error instanceof CogdError && error.code === 'NoSuchKey') {
        throw new PermanentError('NoSuchKey', `the image s3://${job.inputBucket}/${job.imageKey} does not exist`, { hint: 'check the key in the manifest', cause: error });
      }
      throw error;
    });
    files.log(`downloaded s3://${job.inputBucket}/${job.imageKey} (${size} bytes)`);
    crashPoint('job:downloaded');

    await this.cpu.use(async () => {
      signal.throwIfAborted();
      let info = await inspect(input, files, { statistics: false, signal });
      if (info.bands.length !== job.declaredBands) {
        files.log(`warning: the manifest declares ${job.declaredBands} bands, the file has ${info.bands.length}; using the file's ${info.bands.length}`);
        job.log.warn('Job:BandMismatch', { key: job.imageKey, declared: job.declaredBands, actual: info.bands.length });
      }
      if (needsStatistics(info)) info = await inspect(input, files, { statistics: true, signal });
      await runGdal('gdal_translate', cogArgs(input, cog), files, signal);
      await runGdal('gdal_translate', jpegArgs(info, input, preview), files, signal);
    });
    crashPoint('job:converted');

    signal.throwIfAborted();
    const [cogSize, previewSize] = await Promise.all([
      this.io.use(() => job.storage.uploadFile(job.outputBucket, job.cogKey, cog, 'image/tiff', signal)),
      this.io.use(() => job.storage.uploadFile(job.outputBucket, job.previewKey, preview, 'image/jpeg', signal)),
    ]);
    crashPoint('job:uploaded');
    files.log(`uploaded s3://${job.outputBucket}/${job.cogKey} (${cogSize} bytes) and s3://${job.outputBucket}/${job.previewKey} (${previewSize} bytes)`);

    // Verify what S3 now holds, not what we meant to send.
    for (const [key, expected] of [[job.cogKey, cogSize], [job.previewKey, previewSize]] as const) {
      const head = await this.io.use(() => job.storage.head(job.outputBucket, key));
      if (head === undefined || head.size !== expected) {
        throw new CogdError('VerifyFailed', `s3://${job.outputBucket}/${key} is ${head === undefined ? 'missing' : `${head.size} bytes`} after upload, expected ${expected} bytes`);
      }
    }
    files.log('verified both outputs');
  }

  async close(): Promise<void> {
    // Nothing long-lived: GDAL processes end with their jobs.
  }
}

/** Removes scratch left by a process that died mid-job. */
export async function cleanScratch(scratch: string): Promise<void> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
}
