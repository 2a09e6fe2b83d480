/**
 * Captures what Slurm's tools print for every case cogd's Slurm parsers must read, from a real
 * throw-away cluster (scripts/lib/slurm.mjs), into test/fixtures/slurm/ — with the very argument
 * lists the executor uses (dist/executors/slurm/tools.js). test/unit/slurm-tools.test.ts checks the
 * parsers against these files. Takes about two minutes (a TIMEOUT needs Slurm's one-minute limit
 * and its 30 s check). Needs root and Slurm installed (node scripts/lib/slurm.mjs install --accounting).
 *
 *   npm run build && node scripts/slurm-fixtures.mjs
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sacctArgs, squeueArgs } from '../dist/executors/slurm/tools.js';
import { startSlurm } from './lib/slurm.mjs';

const OUT = path.resolve(import.meta.dirname, '../test/fixtures/slurm');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const withAccounting = await startSlurm({ accounting: true, cpus: 2 });
const without = await startSlurm({ accounting: false, cpus: 2 });
const work = await mkdtemp(path.join(os.tmpdir(), 'cogd-slurm-fixtures-'));
try {
  await mkdir(OUT, { recursive: true });
  const env = withAccounting.env;
  const tool = (command, args, cluster = env) => execa(command, args, { env: cluster, cwd: work, reject: false });
  const sbatch = async (args) => {
    const result = await tool('sbatch', ['--parsable', `--output=${work}/%j.out`, ...args]);
    if (result.exitCode !== 0) throw new Error(`sbatch ${args.join(' ')}: ${result.stderr}`);
    return Number(result.stdout.trim().split(';')[0]);
  };
  const state = async (id) => (await tool('squeue', ['-h', '-t', 'all', '-j', String(id), '-o', '%T'])).stdout.trim();
  const until = async (what, probe, seconds = 150) => {
    const deadline = Date.now() + seconds * 1000;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(250);
    }
  };
  const version = (await tool('sbatch', ['--version'])).stdout.trim();

  const cases = {};
  cases.ok = await sbatch(['--wrap', 'true']);
  cases.array = await sbatch([
    '--array=0-3%2',
    '--wrap',
    'if [ "$SLURM_ARRAY_TASK_ID" = 2 ]; then exit 5; fi; sleep 1',
  ]);
  cases.exit3 = await sbatch(['--wrap', 'exit 3']);
  cases.sigkill = await sbatch(['--wrap', 'kill -9 $$']);
  cases.timeout = await sbatch(['--time=1', '--wrap', 'sleep 300']);
  cases.cancelRunning = await sbatch(['--wrap', 'sleep 300']);
  cases.cancelPending = await sbatch(['--begin=now+3600', '--wrap', 'true']);
  cases.held = await sbatch(['--hold', '--wrap', 'true']);
  cases.begin = await sbatch(['--array=0-3', '--begin=now+600', '--wrap', 'true']);
  cases.cancelPendingTask = await sbatch(['--array=0-2', '--begin=now+600', '--wrap', 'true']);
  await until('the job to run', async () => (await state(cases.cancelRunning)) === 'RUNNING');
  await tool('scancel', [String(cases.cancelRunning), String(cases.cancelPending), `${cases.cancelPendingTask}_1`]);
  await until('the array to end', async () => {
    const lines = (await tool('squeue', ['-h', '-t', 'all', '-r', '-j', String(cases.array), '-o', '%T'])).stdout;
    return lines
      .split('\n')
      .filter(Boolean)
      .every((l) => ['COMPLETED', 'FAILED'].includes(l));
  });
  await sleep(3000); // sacct lags squeue by a few seconds
  const ids = Object.values(cases);
  // While some wait: held, BeginTime, the pending rest of an array, a pending task cancelled alone.
  await writeFile(path.join(OUT, 'squeue-waiting.txt'), (await tool('squeue', squeueArgs(ids))).stdout);
  await writeFile(path.join(OUT, 'sacct-waiting.txt'), (await tool('sacct', sacctArgs(ids))).stdout);

  console.log('waiting for the TIMEOUT (Slurm checks limits every 30 s after the 1-minute one)');
  await until('the time limit', async () => (await state(cases.timeout)) === 'TIMEOUT', 150);

  // A node failure: with --no-requeue (as cogd submits) the job ends NODE_FAIL; without, Slurm
  // requeues it (PENDING, BeginTime: it waits two minutes).
  cases.nodeFail = await sbatch(['--no-requeue', '--wrap', 'sleep 300']);
  cases.nodeFailRequeued = await sbatch(['--wrap', 'sleep 300']);
  await until(
    'both to run',
    async () => (await state(cases.nodeFail)) === 'RUNNING' && (await state(cases.nodeFailRequeued)) === 'RUNNING',
  );
  await tool('scontrol', ['update', 'nodename=localhost', 'state=down', 'reason=cogd-fixtures']);
  await until('the node failure', async () => (await state(cases.nodeFail)) === 'NODE_FAIL');
  await tool('scontrol', ['update', 'nodename=localhost', 'state=resume']);
  await sleep(3000);

  const all = Object.values(cases);
  await writeFile(path.join(OUT, 'squeue.txt'), (await tool('squeue', squeueArgs(all))).stdout);
  await writeFile(path.join(OUT, 'sacct.txt'), (await tool('sacct', sacctArgs(all))).stdout);
  const unknown = await tool('squeue', squeueArgs([999_999]));
  await writeFile(path.join(OUT, 'squeue-unknown.txt'), `exit ${unknown.exitCode}\n${unknown.stderr}\n`);
  const disabled = await tool('sacct', sacctArgs([1]), without.env);
  await writeFile(
    path.join(OUT, 'sacct-disabled.txt'),
    `exit ${disabled.exitCode}\n${disabled.stdout}${disabled.stderr}\n`,
  );
  const partition = await tool('sbatch', ['--parsable', '--partition=nosuch', '--wrap', 'true']);
  const memory = await tool('sbatch', ['--parsable', '--mem=99999999G', '--wrap', 'true']);
  await writeFile(
    path.join(OUT, 'sbatch-errors.txt'),
    `exit ${partition.exitCode}\n${partition.stderr}\n---\nexit ${memory.exitCode}\n${memory.stderr}\n`,
  );
  await writeFile(path.join(OUT, 'cases.json'), `${JSON.stringify({ version, cases }, null, 2)}\n`);
  console.log(`wrote ${OUT} (${version})`);
} finally {
  await withAccounting.stop();
  await without.stop();
  await rm(work, { recursive: true, force: true });
}
