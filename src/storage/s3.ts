/**
 * The one S3 client. Made once at start and handed to whoever needs it; it keeps its sockets alive
 * and counts the requests it sends (the benchmark reports them per image).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { pipeline as streamPipeline, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Backoff } from '../util/backoff.js';
import { retry } from '../util/retry.js';
import { CogdError, describeError, PermanentError } from '../errors.js';
import type { Log } from '../log/index.js';
import type { S3Settings } from '../types.js';

export interface ObjectInfo {
  key: string;
  etag: string;
  size: number;
  /** ISO 8601 */
  lastModified: string;
}

/** What an upload sent: its size and the SHA-256 (hex) of its bytes. */
export interface Uploaded {
  size: number;
  sha256: string;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Called with the object's size before its first byte is written (a free-space check, say). */
  beforeWrite?: (size: number) => Promise<void>;
}

/** What the rest of cogd may do with S3: a narrow surface, so every call goes through here. */
export interface Storage {
  /** Every object under `prefix`, page by page (1000 keys per request). */
  list(bucket: string, prefix: string): AsyncGenerator<ObjectInfo>;
  /** The object's metadata, or undefined when it does not exist. */
  head(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  /** Streams the object to `file`; returns its size. */
  download(bucket: string, key: string, file: string, options?: DownloadOptions): Promise<number>;
  /**
   * Uploads a local file (multipart above the threshold) and verifies what S3 holds: the answer's
   * ETag against the MD5 of the bytes sent, else (multipart, SSE-KMS) a HEAD against the size.
   * Returns the size and the SHA-256 of the bytes sent, hashed on their way out.
   */
  uploadFile(bucket: string, key: string, file: string, contentType: string, signal?: AbortSignal): Promise<Uploaded>;
  put(bucket: string, key: string, body: string | Buffer, contentType: string): Promise<void>;
  /**
   * Creates the object only if the key is free (`If-None-Match: *`): true when this call created
   * it, false when it already existed. Only as safe as the endpoint's enforcement (see
   * probeConditionalWrites).
   */
  putIfAbsent(bucket: string, key: string, body: string, contentType: string): Promise<boolean>;
  /** The object's content as text, or undefined when it does not exist. */
  getText(bucket: string, key: string): Promise<string | undefined>;
  /**
   * Bytes `start` to `end` (inclusive; to the object's end without it) of the object, or undefined
   * when it does not exist; empty when `start` lies past its end. Reads only (a dry run's S3 access).
   */
  getRange(bucket: string, key: string, start: number, end?: number): Promise<Buffer | undefined>;
  /** The object's size and SHA-256 (hex), streamed, or undefined when it does not exist. */
  digest(bucket: string, key: string): Promise<Uploaded | undefined>;
  /** Whether the endpoint refuses a second `If-None-Match: *` create of one key (RGW, MinIO, AWS do; s3rver not). */
  probeConditionalWrites(bucket: string): Promise<boolean>;
  copy(bucket: string, fromKey: string, toKey: string): Promise<void>;
  /** One request, no retries: does the endpoint answer, are the credentials good, does the bucket exist? */
  probe(bucket: string): Promise<void>;
  /** Idempotent: deleting a missing object is not an error. */
  delete(bucket: string, key: string): Promise<void>;
  /** S3 requests sent so far, retries included. */
  readonly requests: number;
  close(): void;
}

/** Files at least this big go up as multipart uploads. @defaultValue 64 MiB */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;

/**
 * How transient S3 failures (5xx, SlowDown, resets, timeouts) are retried: here, and only here.
 * @defaultValue 6 attempts, 250 ms doubling to at most 8 s, ±30% jitter
 */
export interface RetryPolicy {
  attempts: number;
  backoff: Backoff;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  backoff: { kind: 'exponential', baseMs: 250, factor: 2, maxMs: 8000, jitter: 0.3 },
};

/** Network errors worth another try. */
const TRANSIENT_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** True for failures another attempt may cure: server errors, throttling, resets, timeouts. */
export function isTransient(error: unknown): boolean {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode ?? 0;
    return (
      status >= 500 ||
      status === 429 ||
      [
        'SlowDown',
        'RequestTimeout',
        'RequestTimeTooSkewed',
        'InternalError',
        'ServiceUnavailable',
        'Throttling',
        'ThrottlingException',
      ].includes(error.name)
    );
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && TRANSIENT_NETWORK.has(code)) return true;
    if (error.name === 'TimeoutError' || error.name === 'RequestTimeout') return true;
    return /socket hang up|ECONNRESET|aborted|premature close|timed? ?out/i.test(error.message);
  }
  return false;
}

/** S3 error names that retrying cannot fix. */
const PERMANENT = new Set([
  'NoSuchKey',
  'NotFound',
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidBucketName',
]);

/** Turns an SDK error into a CogdError whose message names the operation, bucket, key and S3 code. */
export function s3Error(operation: string, bucket: string, key: string | undefined, error: unknown): CogdError {
  const where = key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`;
  if (error instanceof S3ServiceException) {
    const code = error.name === 'NotFound' ? 'NoSuchKey' : error.name;
    const status = error.$metadata.httpStatusCode;
    const message = `${operation} ${where} failed: ${code}${status === undefined ? '' : ` (HTTP ${status})`}`;
    if (PERMANENT.has(error.name)) {
      const hint =
        code === 'NoSuchKey'
          ? 'check the key in the manifest'
          : code === 'NoSuchBucket'
            ? 'check the bucket name'
            : code.startsWith('Invalid') || code === 'SignatureDoesNotMatch' || code === 'AccessDenied'
              ? 'check the credentials (-a/-s or the AWS environment)'
              : undefined;
      return new PermanentError(code, message, hint === undefined ? { cause: error } : { hint, cause: error });
    }
    return new CogdError(code, message, { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new CogdError('S3Unreachable', `${operation} ${where} failed: ${detail}`, { cause: error });
}

async function readSecret(file: string, what: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (cause) {
    throw new CogdError('KeyFile', `cannot read the ${what} file ${file}`, {
      hint: 'check the path given to -a/-s',
      cause,
    });
  }
}

/** Who counts what the client does (the daemon's metrics). Operations are bounded names, never keys. */
export interface S3Observer {
  /** One request sent (retries included), by S3 API operation: GetObject, PutObject… */
  request(operation: string): void;
  /** A cogd operation (download, upload, list…) is tried again after a transient failure. */
  retry(operation: string): void;
  /** A cogd operation failed for good (after its retries, or at once for a permanent error). */
  failed(operation: string): void;
  /** Object bytes moved: in (downloaded, read) or out (uploaded, written). */
  transferred(direction: 'in' | 'out', bytes: number): void;
}

export interface StorageOptions {
  /** Where retries are logged (attempt N of M, delay, reason). */
  log?: Log;
  /** Told of requests, retries, failures and bytes. @defaultValue none */
  observer?: S3Observer | undefined;
  retry?: RetryPolicy;
  /** @defaultValue MULTIPART_THRESHOLD */
  multipartThreshold?: number;
  /** Part size of multipart uploads (S3's minimum is 5 MiB). @defaultValue 16 MiB */
  partSize?: number;
}

/**
 * Chunk size of the file streams of downloads and uploads: 1 MiB, not Node's 16/64 KiB — each chunk
 * costs a thread-pool round trip, a hash update and stream bookkeeping, so a 3 MB image moves in 3
 * chunks instead of ~50 (part of cogd's own CPU per image, see the README's Benchmark section).
 */
const STREAM_CHUNK = 1024 * 1024;

export async function createStorage(settings: S3Settings, options: StorageOptions = {}): Promise<Storage> {
  // cogd targets the Node.js it is installed with (20 on Debian 12 access points) and pins the SDK
  // through package-lock.json; the SDK's notice about its future Node.js support is noise to users.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  const config: S3ClientConfig = {
    region: settings.region,
    // Most S3-compatible servers (s3rver, several MinIO and Ceph versions) reject the SDK's default
    // flexible checksums; only send and check them where the operation requires one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries happen in one place, S3Storage.attempt(), where they are logged.
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
    },
  };
  if (settings.endpoint !== undefined) {
    config.endpoint = settings.endpoint;
    config.forcePathStyle = true;
  }
  if (settings.accessKeyFile !== undefined && settings.secretKeyFile !== undefined) {
    config.credentials = {
      accessKeyId: await readSecret(settings.accessKeyFile, 'access key'),
      secretAccessKey: await readSecret(settings.secretKeyFile, 'secret key'),
    };
  }
  return new S3Storage(new S3Client(config), options);
}

class S3Storage implements Storage {
  #requests = 0;

  private readonly retry: RetryPolicy;
  private readonly log: Log | undefined;
  private readonly observer: S3Observer | undefined;
  private readonly multipartThreshold: number;
  private readonly partSize: number;

  constructor(
    private readonly client: S3Client,
    options: StorageOptions,
  ) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.log = options.log;
    this.observer = options.observer;
    this.multipartThreshold = options.multipartThreshold ?? MULTIPART_THRESHOLD;
    this.partSize = options.partSize ?? 16 * 1024 * 1024;
    // The deserialize step runs once per attempt, so retries are counted too.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        this.#requests += 1;
        this.observer?.request(context.commandName ?? 'unknown');
        return next(args);
      },
      { step: 'deserialize', name: 'cogdRequestCounter' },
    );
  }

  get requests(): number {
    return this.#requests;
  }

  /**
   * Runs one S3 operation, retrying transient failures with back-off and jitter; permanent ones
   * (NoSuchKey, AccessDenied…) and cancellations fail at once. Errors name the operation, the
   * object and the S3 code.
   */
  private async attempt<T>(
    operation: string,
    bucket: string,
    key: string | undefined,
    work: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    let attempts = 0;
    try {
      return await retry(
        async (attempt) => {
          attempts = attempt;
          return await work();
        },
        {
          attempts: this.retry.attempts,
          backoff: this.retry.backoff,
          // Ours (a free-space check, say) are not S3's to retry; nor are cancellations.
          retryable: (error) => !(error instanceof CogdError) && signal?.aborted !== true && isTransient(error),
          onRetry: (error, attempt, delayMs) => {
            this.observer?.retry(operation);
            this.log?.info('S3:Retry', {
              operation,
              bucket,
              key,
              attempt,
              of: this.retry.attempts,
              delayMs,
              reason: describeError(s3Error(operation, bucket, key, error)),
            });
          },
          ...(signal === undefined ? {} : { signal }),
        },
      );
    } catch (error) {
      this.observer?.failed(operation);
      if (error instanceof CogdError) throw error;
      const failure = s3Error(operation, bucket, key, error);
      if (attempts > 1) failure.message += ` (after ${attempts} attempts)`;
      throw failure;
    }
  }

  async *list(bucket: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    do {
      const page = await this.attempt('list', bucket, prefix === '' ? undefined : `${prefix}*`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield {
          key: item.Key,
          etag: item.ETag ?? '',
          size: item.Size ?? 0,
          lastModified: (item.LastModified ?? new Date(0)).toISOString(),
        };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    return this.attempt('head', bucket, key, async () => {
      try {
        const out = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return {
          key,
          etag: out.ETag ?? '',
          size: out.ContentLength ?? 0,
          lastModified: (out.LastModified ?? new Date(0)).toISOString(),
        };
      } catch (error) {
        if (error instanceof S3ServiceException && (error.name === 'NotFound' || error.name === 'NoSuchKey'))
          return undefined;
        throw error;
      }
    });
  }

  async download(bucket: string, key: string, file: string, options: DownloadOptions = {}): Promise<number> {
    const { signal } = options;
    // A download cut off midway starts again from the beginning (the file is rewritten).
    await this.attempt(
      'download',
      bucket,
      key,
      async () => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        await options.beforeWrite?.(out.ContentLength ?? 0);
        await pipeline(out.Body as Readable, createWriteStream(file, { highWaterMark: STREAM_CHUNK }), { signal });
      },
      signal,
    );
    const { size } = await stat(file);
    this.observer?.transferred('in', size);
    return size;
  }

  async uploadFile(
    bucket: string,
    key: string,
    file: string,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<Uploaded> {
    const { size } = await stat(file);
    let sha256 = '';
    await this.attempt(
      'upload',
      bucket,
      key,
      async () => {
        // The body is hashed on its way out, once per attempt: SHA-256 for the record (STAC's
        // file:checksum), MD5 to check the answer's ETag — an ETag equal to it proves S3 holds exactly
        // these bytes without another request. Where the ETag is no MD5 (SSE-KMS, multipart), a
        // HEAD checks the size.
        const md5 = createHash('md5');
        const sha = createHash('sha256');
        const hashing = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            md5.update(chunk);
            sha.update(chunk);
            done(null, chunk);
          },
        });
        // Errors of either stream reach the body the SDK reads (and fail the attempt).
        const body = streamPipeline(createReadStream(file, { highWaterMark: STREAM_CHUNK }), hashing, () => undefined);
        if (size < this.multipartThreshold) {
          const out = await this.client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: body,
              ContentLength: size,
              ContentType: contentType,
            }),
            { abortSignal: signal },
          );
          sha256 = sha.digest('hex');
          if (out.ETag?.replace(/"/g, '') === md5.digest('hex')) return;
          await this.verifySize(bucket, key, size, 'upload');
          return;
        }
        const upload = new Upload({
          client: this.client,
          params: { Bucket: bucket, Key: key, Body: body, ContentType: contentType },
          queueSize: 4,
          partSize: this.partSize,
        });
        // The upload then fails on its own, with the abort as its reason.
        signal?.addEventListener(
          'abort',
          () => {
            upload.abort().catch(() => undefined);
          },
          { once: true },
        );
        // Ceph RGW answers CompleteMultipartUpload with an empty ETag: trust a HEAD, not the answer.
        await upload.done();
        sha256 = sha.digest('hex');
        await this.verifySize(bucket, key, size, 'multipart upload');
      },
      signal,
    );
    this.observer?.transferred('out', size);
    return { size, sha256 };
  }

  private async verifySize(bucket: string, key: string, size: number, what: string): Promise<void> {
    const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== size) {
      throw new CogdError(
        'VerifyFailed',
        `${what} of s3://${bucket}/${key} left ${head.ContentLength ?? 0} bytes, expected ${size}`,
      );
    }
  }

  async put(bucket: string, key: string, body: string | Buffer, contentType: string): Promise<void> {
    await this.attempt('put', bucket, key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentLength: Buffer.byteLength(body),
          ContentType: contentType,
        }),
      ),
    );
    this.observer?.transferred('out', Buffer.byteLength(body));
  }

  async putIfAbsent(bucket: string, key: string, body: string, contentType: string): Promise<boolean> {
    return this.attempt('put', bucket, key, async () => {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: Buffer.byteLength(body),
            ContentType: contentType,
            IfNoneMatch: '*',
          }),
        );
        return true;
      } catch (error) {
        // 412: someone created it first. 409 ConditionalRequestConflict: a concurrent create is in flight.
        if (error instanceof S3ServiceException && [412, 409].includes(error.$metadata.httpStatusCode ?? 0))
          return false;
        throw error;
      }
    });
  }

  async getText(bucket: string, key: string): Promise<string | undefined> {
    return this.attempt('get', bucket, key, async () => {
      try {
        const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const text = await out.Body!.transformToString();
        this.observer?.transferred('in', Buffer.byteLength(text));
        return text;
      } catch (error) {
        if (error instanceof S3ServiceException && (error.name === 'NoSuchKey' || error.name === 'NotFound'))
          return undefined;
        throw error;
      }
    });
  }

  async getRange(bucket: string, key: string, start: number, end?: number): Promise<Buffer | undefined> {
    return this.attempt('get', bucket, key, async () => {
      try {
        const out = await this.client.send(
          new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end ?? ''}` }),
        );
        return Buffer.from(await out.Body!.transformToByteArray());
      } catch (error) {
        if (error instanceof S3ServiceException && (error.name === 'NoSuchKey' || error.name === 'NotFound'))
          return undefined;
        // 416: the range starts past the end (an empty object, a header cut short).
        if (
          error instanceof S3ServiceException &&
          (error.name === 'InvalidRange' || error.$metadata.httpStatusCode === 416)
        )
          return Buffer.alloc(0);
        throw error;
      }
    });
  }

  async digest(bucket: string, key: string): Promise<Uploaded | undefined> {
    return this.attempt('get', bucket, key, async () => {
      try {
        const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const sha = createHash('sha256');
        let size = 0;
        for await (const chunk of out.Body as Readable) {
          sha.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        return { size, sha256: sha.digest('hex') };
      } catch (error) {
        if (error instanceof S3ServiceException && (error.name === 'NoSuchKey' || error.name === 'NotFound'))
          return undefined;
        throw error;
      }
    });
  }

  async probeConditionalWrites(bucket: string): Promise<boolean> {
    const key = `.cogd/probe-${randomUUID()}`;
    try {
      const first = await this.putIfAbsent(bucket, key, 'probe', 'text/plain');
      const second = await this.putIfAbsent(bucket, key, 'probe', 'text/plain');
      return first && !second;
    } finally {
      await this.delete(bucket, key);
    }
  }

  async copy(bucket: string, fromKey: string, toKey: string): Promise<void> {
    await this.attempt('copy', bucket, fromKey, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: toKey,
          CopySource: `${bucket}/${encodeURIComponent(fromKey).replace(/%2F/g, '/')}`,
        }),
      ),
    );
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.attempt('delete', bucket, key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
    );
  }

  /** One cheap request that proves the endpoint, the credentials and the bucket work. */
  async probe(bucket: string): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }));
    } catch (error) {
      throw s3Error('list', bucket, undefined, error);
    }
  }

  close(): void {
    this.client.destroy();
  }
}
