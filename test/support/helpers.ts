/** Test helpers: real S3 buckets on the loopback server, real GeoTIFFs made with GDAL, the real CLI. */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { execa, type Result } from 'execa';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { expect, inject } from 'vitest';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(ROOT, 'bin', 'cogd');
/** The test server's credentials (s3rver's fixed ones, or the user the Ceph launcher made). */
export function credentials(): { accessKey: string; secretKey: string } {
  return { accessKey: inject('s3AccessKey'), secretKey: inject('s3SecretKey') };
}

export function s3Kind(): 'ceph' | 's3rver' {
  return inject('s3Kind');
}

let client: S3Client | undefined;

export function endpoint(): string {
  return inject('s3Endpoint');
}

export function s3(): S3Client {
  client ??= new S3Client({
    endpoint: endpoint(),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: credentials().accessKey, secretAccessKey: credentials().secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return client;
}

let counter = 0;

/** A fresh pair of buckets for one test. */
export async function freshBuckets(): Promise<{ input: string; output: string }> {
  counter += 1;
  const stem = `t${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
  const input = `in-${stem}`;
  const output = `out-${stem}`;
  await s3().send(new CreateBucketCommand({ Bucket: input }));
  await s3().send(new CreateBucketCommand({ Bucket: output }));
  createdBuckets.push(output);
  return { input, output };
}

/** Output buckets this test file made: the STAC documents cogd writes there are all checked after it. */
export const createdBuckets: string[] = [];

export async function put(bucket: string, key: string, body: string | Buffer): Promise<void> {
  await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function putFile(bucket: string, key: string, file: string): Promise<void> {
  await put(bucket, key, await readFile(file));
}

export async function keys(bucket: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) if (item.Key !== undefined) found.push(item.Key);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return found.sort();
}

export async function getText(bucket: string, key: string): Promise<string> {
  const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString();
}

export async function download(bucket: string, key: string, file: string): Promise<string> {
  const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await writeFile(file, await out.Body!.transformToByteArray());
  return file;
}

/** The single key under `prefix` whose name contains `kind` (processed, failed, errors…). */
export async function resultKeyOf(bucket: string, prefix: string, kind: string): Promise<string | undefined> {
  return (await keys(bucket, prefix)).find((key) => new RegExp(`-${kind}-\\d{8}-\\d{6}(-\\d+)?\\.csv$`).test(key));
}

export async function tempDir(prefix = 'cogd-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Files holding the test server's credentials, for -a/-s. */
export async function keyFiles(dir: string): Promise<{ access: string; secret: string }> {
  const access = path.join(dir, 'access.key');
  const secret = path.join(dir, 'secret.key');
  await writeFile(access, `${credentials().accessKey}\n`);
  await writeFile(secret, `  ${credentials().secretKey}  \n`);
  return { access, secret };
}

export { makeTiff } from '../../scripts/lib/geotiff.mjs';

export async function gdalinfo(file: string): Promise<{
  bands: Array<{ type: string }>;
  metadata?: Record<string, Record<string, string>>;
  driverShortName: string;
}> {
  const { stdout } = await execa('gdalinfo', ['-json', file]);
  return JSON.parse(stdout) as {
    bands: Array<{ type: string }>;
    metadata?: Record<string, Record<string, string>>;
    driverShortName: string;
  };
}

/** GDAL's own COG validator, run with Debian's python3 (a pyenv python3 on PATH lacks osgeo). */
export async function validateCog(file: string): Promise<{ ok: boolean; output: string }> {
  const result = await execa('/usr/bin/python3', ['-m', 'osgeo_utils.samples.validate_cloud_optimized_geotiff', file], {
    reject: false,
  });
  return { ok: result.exitCode === 0, output: `${result.stdout}${result.stderr}` };
}

export interface CogdRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a child process. */
export async function cogd(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CogdRun> {
  const result: Result = await execa('node', [CLI, ...args], {
    reject: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...options.env },
    cwd: options.cwd ?? ROOT,
    timeout: 170_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The flags every pipeline test passes: the test server, its credentials, a home, fast retries. */
export async function baseArgs(
  buckets: { input: string; output: string },
  home: string,
  pattern = '*raw.csv',
): Promise<string[]> {
  const { access, secret } = await keyFiles(home);
  return [
    '-p',
    pattern,
    '--input-bucket',
    buckets.input,
    '--output-bucket',
    buckets.output,
    '-e',
    endpoint(),
    '-a',
    access,
    '-s',
    secret,
    '--home',
    home,
    '--retry-delay',
    '0.1',
  ];
}

/** What `cogd status --json` says (the parts tests read). */
export interface Status {
  daemon: { running: boolean; pid: number | null };
  poll?: { pid: number | null };
  watches: Array<{ id: string; batchName: string; warning: string | null }>;
  runs: Array<{ id: number; state: string; counts: Record<string, number> }>;
  jobs?: Array<{ id: string; state: string; error: string | null; attempts: number }>;
}

export async function status(home: string, ...args: string[]): Promise<Status> {
  const result = await cogd(['status', '--json', '--home', home, ...args]);
  expect(result.exitCode, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Status;
}

/** Polls `probe` until it gives a value (every 200 ms), or fails the test after `seconds`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, seconds = 60): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Running (a zombie waiting for its new parent to reap it has exited). */
export const alive = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
};
