/**
 * Faults and hostile inputs: a flaky endpoint (fault-injecting proxy), GDAL that hangs, crashes,
 * fails or floods its output (fault-gdal fixtures), a post step that cannot write, a full scratch
 * disk. Every run must end with every row accounted for and every failure explained.
 */
import { execa } from 'execa';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { createLog, StepFiles } from '../../src/log/index.js';
import { DEFAULT_LIMITS } from '../../src/convert/rules.js';
import { JobClock } from '../../src/util/clock.js';
import { LocalExecutor } from '../../src/executors/local.js';
import { createStorage } from '../../src/storage/s3.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import {
  baseArgs,
  cogd,
  endpoint,
  freshBuckets,
  getText,
  keyFiles,
  keys,
  makeTiff,
  put,
  putFile,
  resultKeyOf,
  ROOT,
  tempDir,
} from '../support/helpers.js';
import { DEFAULT_CONVERSION } from '../../src/convert/profiles.js';

const FAULT_GDAL = path.join(ROOT, 'test/fixtures/fault-gdal');
let proxy: FaultProxy | undefined;

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** Our fixture processes still alive (their sleeps carry distinctive durations). */
async function leftovers(): Promise<string[]> {
  const { stdout } = await execa('ps', ['-eo', 'args']);
  return stdout.split('\n').filter((line) => /^sleep 98[67]$/.test(line.trim()));
}

/** The flags for the proxy endpoint instead of the server itself. */
function viaProxy(args: string[], proxyEndpoint: string): string[] {
  return args.map((a, i) => (args[i - 1] === '-e' ? proxyEndpoint : a));
}

describe('faults', () => {
  it('a run with a hanging, a crashing, a failing, a chatty and a corrupt image on an endpoint with 20% faults', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows: string[] = [];
    for (let i = 0; i < 24; i += 1) {
      const key = `good/img-${i}.tif`;
      await putFile(
        buckets.input,
        key,
        await makeTiff(path.join(home, `g${i}.tif`), { bands: i % 2 === 0 ? 3 : 1, width: 48, height: 40 }),
      );
      rows.push(`${key},${i % 2 === 0 ? 3 : 1}`);
    }
    for (const mode of ['hang', 'crash', 'fail', 'chatty', 'hang-info']) {
      // 16-bit, so cogd inspects it with gdalinfo (plain 8-bit TIFFs are planned from their header).
      await putFile(
        buckets.input,
        `bad/${mode}.tif`,
        await makeTiff(path.join(home, `${mode}.tif`), { bands: 1, type: 'UInt16', metadata: { COGD_TEST: mode } }),
      );
      rows.push(`bad/${mode}.tif,1`);
    }
    await put(buckets.input, 'bad/corrupt.tif', Buffer.concat([Buffer.from('II*\0'), Buffer.alloc(64, 7)]));
    rows.push('bad/corrupt.tif,1');
    expect(rows.length).toBe(30);
    await put(buckets.input, 'faulty-raw.csv', `${rows.join('\n')}\n`);

    proxy = await startFaultProxy({ target: endpoint(), rate: 0.2, seed: 7 });
    const args = viaProxy(await baseArgs(buckets, home), proxy.endpoint);
    const result = await cogd(
      ['poll', '--wait', ...args, '--retries', '1', '--job-timeout', '6', '--inspect-timeout', '3'],
      {
        env: { PATH: `${FAULT_GDAL}:${process.env['PATH'] ?? ''}` },
      },
    );
    expect(result.stdout, result.stderr).toMatch(/30 rows, 25 processed, 5 failed/);
    expect(result.exitCode).toBe(1);
    expect(Object.values(proxy.injected).reduce((a, b) => a + b, 0)).toBeGreaterThan(20);

    const processed = (await getText(buckets.input, (await resultKeyOf(buckets.input, 'faulty-', 'processed'))!))
      .split('\n')
      .filter(Boolean);
    const failed = (await getText(buckets.input, (await resultKeyOf(buckets.input, 'faulty-', 'failed'))!))
      .split('\n')
      .filter(Boolean);
    expect([...processed, ...failed].sort()).toEqual([...rows].sort());
    expect(failed.sort()).toEqual([
      'bad/corrupt.tif,1',
      'bad/crash.tif,1',
      'bad/fail.tif,1',
      'bad/hang-info.tif,1',
      'bad/hang.tif,1',
    ]);
    // No row is marked processed whose outputs are missing.
    const outputs = new Set(await keys(buckets.output));
    for (const row of processed) {
      const key = row.split(',')[0]!;
      expect(outputs.has(key), key).toBe(true);
      expect(outputs.has(key.replace(/\.tif$/, '.jpg')), key).toBe(true);
    }
    // The errors CSV names the cause of every failed row.
    const errors = await getText(buckets.input, (await resultKeyOf(buckets.input, 'faulty-', 'errors'))!);
    expect(errors).toMatch(/bad\/hang\.tif,timed out after 6 s,/);
    expect(errors).toMatch(/bad\/hang-info\.tif,.*gdalinfo timed out after 3 s.*hangs GDAL/);
    expect(errors).toMatch(/bad\/crash\.tif,gdal_translate failed \(killed by SIGSEGV\)/);
    expect(errors).toMatch(
      /bad\/fail\.tif,gdal_translate failed \(exit code 1\): ERROR 1: simulated conversion failure/,
    );
    expect(errors).toMatch(/bad\/corrupt\.tif,not a readable TIFF/);
    // Retries are logged with their attempt in the storage module.
    const daemonLog = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8');
    const retries = daemonLog
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => e['message'] === 'S3:Retry');
    expect(retries.length).toBeGreaterThan(5);
    expect(retries[0]).toMatchObject({
      attempt: expect.any(Number),
      of: 6,
      delayMs: expect.any(Number),
      reason: expect.any(String),
    });
    // The chatty image converted and its output went to its files, not to cogd's memory.
    const runDir = path.join(home, result.stdout.match(/logs in (logs\/run-[\d-]+)/)![1]!);
    expect((await stat(path.join(runDir, 'chatty.out'))).size).toBeGreaterThanOrEqual(40_000_000);
    expect((await stat(path.join(runDir, 'chatty.err'))).size).toBeGreaterThanOrEqual(40_000_000);
    // The timed-out job was not retried, the crashing one was.
    const hangLog = await readFile(path.join(runDir, 'hang.log'), 'utf8');
    expect(hangLog.match(/attempt \d of 2/g)).toEqual(['attempt 1 of 2']);
    const crashLog = await readFile(path.join(runDir, 'crash.log'), 'utf8');
    expect(crashLog.match(/attempt \d of 2:/g)).toEqual(['attempt 1 of 2:', 'attempt 2 of 2:']);
    // Killed with their process groups: no fixture process outlives the run.
    expect(await leftovers()).toEqual([]);
  });

  it('keeps a run whose post step cannot write visible, and finishes it on the next poll', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    await put(buckets.input, 'x-raw.csv', 'img.tif,1\n');
    proxy = await startFaultProxy({
      target: endpoint(),
      rate: 0,
      rule: (method, url) => (method === 'PUT' && url.includes('-processed-') ? 'access-denied' : undefined),
    });
    const args = viaProxy(await baseArgs(buckets, home), proxy.endpoint);
    const first = await cogd(['poll', '--wait', ...args]);
    expect(first.exitCode).toBe(1);
    expect(first.stdout).toMatch(/post failed: put s3:\/\/\S+\/x-processed-\d{8}-\d{6}\.csv failed: AccessDenied/);
    const status = await cogd(['status', '--home', home]);
    expect(status.stdout).toMatch(/run 1 \S+: post failed: put .* AccessDenied .*\(retried at the next poll\)/);
    expect(
      await readFile(path.join(home, first.stdout.match(/logs in (logs\/run-[\d-]+)/)![1]!, 'post.err'), 'utf8'),
    ).toMatch(/AccessDenied/);
    expect((await keys(buckets.input)).some((k) => k.includes('-processing-'))).toBe(true); // nothing lost

    proxy.setRule(undefined);
    const second = await cogd(['poll', '--wait', ...args]);
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toMatch(/run 1 .*1 rows, 1 processed, 0 failed/);
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'x-', 'processed'))!)).toBe('img.tif,1\n');
    expect((await keys(buckets.input)).some((k) => k.includes('-processing-'))).toBe(false);
  });

  it('fails fast with one clear line on wrong credentials or an unreachable endpoint', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const { access, secret } = await keyFiles(home);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(access, 'NOT-A-KEY\n');
    const base = [
      '--input-bucket',
      buckets.input,
      '--output-bucket',
      buckets.output,
      '-a',
      access,
      '-s',
      secret,
      '--home',
      home,
    ];
    onTestFinished(async () => {
      await cogd(['stop', '--home', home]); // never leak a daemon, even if a start wrongly succeeds
    });
    const wrong = await cogd(['start', '-p', '*raw.csv', '-e', endpoint(), ...base]);
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stderr.trim()).toMatch(
      /^cogd: list s3:\/\/in-\S+ failed: InvalidAccessKeyId \(HTTP 403\) \(check the credentials/,
    );
    expect(wrong.stderr.split('\n').filter(Boolean).length).toBe(1);
    const unreachable = await cogd(['start', '-p', '*raw.csv', '-e', 'http://127.0.0.1:9', ...base]);
    expect(unreachable.exitCode).toBe(1);
    expect(unreachable.stderr.trim()).toMatch(/^cogd: list s3:\/\/in-\S+ failed: .*ECONNREFUSED/);
    expect(unreachable.stderr.split('\n').filter(Boolean).length).toBe(1);
  });
});

describe('scratch space', () => {
  async function job(freeSpace: (dir: string) => Promise<number>, scratchWaitMs: number) {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    const { access, secret } = await keyFiles(home);
    const storage = await createStorage({
      endpoint: endpoint(),
      accessKeyFile: access,
      secretKeyFile: secret,
      region: 'us-east-1',
    });
    const executor = new LocalExecutor({
      scratch: path.join(home, 'scratch'),
      cpu: 1,
      io: 1,
      stepTimeoutMs: 60_000,
      inspectTimeoutMs: 60_000,
      limits: DEFAULT_LIMITS,
      scratchWaitMs,
      freeSpace,
    });
    const files = new StepFiles(home, 'img');
    const run = executor.run(
      {
        jobId: 1,
        runId: 1,
        imageKey: 'img.tif',
        declaredBands: 1,
        inputBucket: buckets.input,
        outputBucket: buckets.output,
        cogKey: 'img.tif',
        previewKey: 'img.jpg',
        conversion: DEFAULT_CONVERSION,
        storage,
        files,
        log: createLog({ consoleLevel: 'silent' }),
        clock: new JobClock(60_000, () => undefined),
        started: () => undefined,
      },
      new AbortController().signal,
    );
    const outcome = await run.then(
      () => 'converted',
      (error: unknown) => (error as Error).message,
    );
    await files.flush();
    storage.close();
    return {
      outcome,
      log: await readFile(files.path('log'), 'utf8').catch(() => ''),
      output: await keys(buckets.output),
    };
  }

  it('fails a job with the space it needed and had when scratch stays full', async () => {
    const { outcome, output } = await job(async () => 1000, 300);
    expect(outcome).toMatch(/^not enough scratch space in \S+ \(need \d+, have 1000\)$/);
    expect(output).toEqual([]);
  });

  it('waits for space to come free, then converts', async () => {
    let calls = 0;
    const { outcome, log, output } = await job(async () => (++calls <= 2 ? 1000 : 1e12), 30_000);
    expect(outcome).toBe('converted');
    expect(log).toMatch(/waiting for scratch space \(need \d+ bytes, have 1000\)/);
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(output).toEqual(['img.jpg', 'img.json', 'img.tif']); // the collection is the post step's
  });
});
