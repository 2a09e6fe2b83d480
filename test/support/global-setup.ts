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
import { slurmMissing, startSlurm, type SlurmCluster } from '../../scripts/lib/slurm.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3Kind: 'ceph' | 's3rver';
    s3AccessKey: string;
    s3SecretKey: string;
    /** SLURM_CONF of the throw-away cluster with accounting (sacct), or '' when there is none. */
    slurmConf: string;
    /** SLURM_CONF of a second cluster without accounting (squeue only), or ''. */
    slurmConfNoAccounting: string;
    /** Why there is no Slurm cluster ('' when there is). */
    slurmUnavailable: string;
  }
}

let server: ResultPromise | undefined;
let ceph: CephRgw | undefined;
const slurms: SlurmCluster[] = [];

/**
 * Whether this vitest run includes the Slurm suites: every run without file filters does; one given
 * files (`npx vitest run test/e2e/x.test.ts`) only if one names slurm outside test/unit (the unit tests
 * read captured outputs). COGD_TEST_SLURM=on|off decides.
 */
function wantsSlurm(): boolean {
  const setting = process.env['COGD_TEST_SLURM'];
  if (setting === 'off') return false;
  if (setting === 'on') return true;
  const args = process.argv.slice(2);
  const filters = args.slice(args.indexOf('run') + 1).filter((a) => !a.startsWith('-'));
  return filters.length === 0 || filters.some((f) => /slurm/i.test(f) && !/unit/.test(f));
}

/** Two throw-away Slurm clusters on loopback — with accounting (sacct) and without — or why not. */
async function setupSlurm(project: TestProject): Promise<void> {
  project.provide('slurmConf', '');
  project.provide('slurmConfNoAccounting', '');
  if (!wantsSlurm()) {
    project.provide('slurmUnavailable', 'not started for this selection of test files (COGD_TEST_SLURM=on starts it)');
    return;
  }
  const missing = slurmMissing(true);
  if (missing.length > 0) {
    project.provide(
      'slurmUnavailable',
      `Slurm is not installed (missing ${missing.join(' ')}); .ci/run installs it (node scripts/lib/slurm.mjs install)`,
    );
    return;
  }
  if (process.getuid?.() !== 0) {
    project.provide('slurmUnavailable', 'the Slurm test cluster runs its daemons as root, and this is not root');
    return;
  }
  try {
    const started = Date.now();
    const [withAccounting, without] = await Promise.all([
      startSlurm({ accounting: true, cpus: 4 }),
      startSlurm({ accounting: false, cpus: 4 }),
    ]);
    slurms.push(withAccounting, without);
    console.log(
      `Slurm for this test run: two one-node clusters on loopback, with and without accounting (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    project.provide('slurmConf', withAccounting.conf);
    project.provide('slurmConfNoAccounting', without.conf);
    project.provide('slurmUnavailable', '');
  } catch (error) {
    for (const cluster of slurms.splice(0)) await cluster.stop();
    project.provide(
      'slurmUnavailable',
      `the Slurm test cluster did not start: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

export async function setup(project: TestProject): Promise<void> {
  await setupS3(project);
  await setupSlurm(project);
}

async function setupS3(project: TestProject): Promise<void> {
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
  await Promise.all(slurms.splice(0).map((cluster) => cluster.stop()));
}
