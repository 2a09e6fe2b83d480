/**
 * Starts the loopback S3 protocol server once per test run; every test makes its own buckets.
 * The server runs as a child process because s3rver needs Node's legacy OpenSSL provider.
 */
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import readline from 'node:readline';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
  }
}

let server: ResultPromise | undefined;

export async function setup(project: TestProject): Promise<void> {
  const script = path.resolve(import.meta.dirname, '../../scripts/s3-server.mjs');
  server = execa('node', ['--openssl-legacy-provider', script], { stdout: 'pipe', stderr: 'inherit', reject: false });
  const lines = readline.createInterface({ input: server.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    void server!.then((result) => reject(new Error(`the S3 test server exited early: ${result.exitCode ?? result.signal ?? ''}`)));
  });
  const { endpoint } = JSON.parse(first) as { endpoint: string };
  project.provide('s3Endpoint', endpoint);
}

export async function teardown(): Promise<void> {
  server?.kill('SIGTERM');
  await server;
}
