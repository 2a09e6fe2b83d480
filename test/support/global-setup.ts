/**
 * Starts the S3 server once per test run; every test makes its own buckets.
 * COGD_TEST_S3=ceph|s3rver picks it; the default is Ceph RGW where its binaries are installed
 * (CI), else s3rver (quick local runs). s3rver runs as a child process: it needs Node's legacy
 * OpenSSL provider.
 */
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import readline from 'node:readline';
import type { TestProject } from 'vitest/node';
import { cephAvailable, startCephRgw, type CephRgw } from '../../scripts/lib/ceph-rgw.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3Kind: 'ceph' | 's3rver';
    s3AccessKey: string;
    s3SecretKey: string;
  }
}

let server: ResultPromise | undefined;
let ceph: CephRgw | undefined;

export async function setup(project: TestProject): Promise<void> {
  const requested = process.env['COGD_TEST_S3'];
  if (requested !== undefined && requested !== 'ceph' && requested !== 's3rver') {
    throw new Error(`COGD_TEST_S3 must be ceph or s3rver, got "${requested}"`);
  }
  const kind = requested ?? (cephAvailable() ? 'ceph' : 's3rver');
  if (kind === 'ceph') {
    const started = Date.now();
    ceph = await startCephRgw();
    console.log(
      `S3 for this test run: Ceph RGW on ${ceph.endpoint} (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    project.provide('s3Endpoint', ceph.endpoint);
    project.provide('s3Kind', 'ceph');
    project.provide('s3AccessKey', ceph.accessKey);
    project.provide('s3SecretKey', ceph.secretKey);
    return;
  }
  const script = path.resolve(import.meta.dirname, '../../scripts/s3-server.mjs');
  server = execa('node', ['--openssl-legacy-provider', script], { stdout: 'pipe', stderr: 'inherit', reject: false });
  const lines = readline.createInterface({ input: server.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    server!.then(
      (result) => reject(new Error(`the S3 test server exited early: ${result.exitCode ?? result.signal ?? ''}`)),
      reject,
    );
  });
  const { endpoint } = JSON.parse(first) as { endpoint: string };
  console.log(`S3 for this test run: s3rver on ${endpoint}`);
  project.provide('s3Endpoint', endpoint);
  project.provide('s3Kind', 's3rver');
  project.provide('s3AccessKey', 'S3RVER');
  project.provide('s3SecretKey', 'S3RVER');
}

export async function teardown(): Promise<void> {
  server?.kill('SIGTERM');
  await server;
  await ceph?.stop();
}
