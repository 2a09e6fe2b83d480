import { describe, expect, it } from 'vitest';
import path from 'node:path';
import {
  checkWatchSettings,
  DEFAULT_WATCH_SETTINGS,
  homeChanges,
  readRunRequest,
  resolveHomeSettings,
} from '../../src/config/index.js';
import { endpoint } from '../../src/config/parse.js';

const normalizeEndpoint = (value: string): string => endpoint(value, '--s3-endpoint');
/** What commander hands over for `cogd start` with these flags (raw strings). */
const resolveConfig = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv) => readRunRequest('start', flags, env);
import { UsageError } from '../../src/errors.js';
import { collectWhileIdle, DAEMON_NODE_FLAGS, supportedDaemonFlags } from '../../src/daemon/node-flags.js';

const base = { pattern: '*raw.csv', inputBucket: 'in-bucket', outputBucket: 'out-bucket' };

describe('config', () => {
  it('reads a bare host as https and keeps a URL as given', () => {
    expect(normalizeEndpoint('s3.example.org')).toBe('https://s3.example.org');
    expect(normalizeEndpoint('s3.example.org:9000')).toBe('https://s3.example.org:9000');
    expect(normalizeEndpoint('http://127.0.0.1:9000')).toBe('http://127.0.0.1:9000');
    expect(normalizeEndpoint('https://s3.example.org/')).toBe('https://s3.example.org');
    expect(() => normalizeEndpoint('ftp://x')).toThrow(UsageError);
  });

  it("has the reference tool's defaults, applied only to what no flag gives", () => {
    expect(DEFAULT_WATCH_SETTINGS).toMatchObject({
      maxRunning: 10000,
      retries: 3,
      schedule: '*/15 * * * *',
      executor: 'local',
      region: 'us-east-1',
    });
    const config = resolveConfig(base, {});
    // Nothing given: a new watch takes the defaults, an existing one keeps what it has.
    expect(config.watch.given).toEqual({});
    expect(config.watch.identity).toEqual({
      pattern: '*raw.csv',
      inputBucket: 'in-bucket',
      outputBucket: 'out-bucket',
      endpoint: undefined,
    });
    const given = resolveConfig(
      {
        ...base,
        maxRunning: '500',
        schedule: '* * * * *',
        retries: '0',
        retryDelay: '2.5',
        executor: 'condor',
        accessKey: 'a',
        secretKey: 's',
      },
      { AWS_REGION: 'eu-west-1' },
    );
    expect(given.watch.given).toEqual({
      maxRunning: 500,
      schedule: '* * * * *',
      retries: 0,
      retryDelayMs: 2500,
      executor: 'condor',
      accessKeyFile: path.resolve('a'),
      secretKeyFile: path.resolve('s'),
      region: 'eu-west-1',
    });
  });

  it('refuses an output bucket equal to the input bucket: the COGs would overwrite their sources', () => {
    expect(() => resolveConfig({ ...base, outputBucket: 'in-bucket' }, {})).toThrow(
      /--input-bucket and --output-bucket are both "in-bucket": every COG would overwrite its source image/,
    );
  });

  it('refuses a scratch directory that is, holds, or lies in the logs of the home', () => {
    expect(() => resolveConfig({ ...base, home: '/tmp/h1', scratch: '/tmp/h1' }, {})).toThrow(
      /--scratch \/tmp\/h1 is the cogd home/,
    );
    expect(() => resolveConfig({ ...base, home: '/tmp/h1', scratch: '/tmp' }, {})).toThrow(
      /--scratch \/tmp contains the cogd home/,
    );
    expect(() => resolveConfig({ ...base, home: '/tmp/h1', scratch: '/' }, {})).toThrow(UsageError);
    expect(() => resolveConfig({ ...base, home: '/tmp/h1', scratch: '/tmp/h1/logs/x' }, {})).toThrow(
      /inside the home's logs/,
    );
    expect(resolveConfig({ ...base, home: '/tmp/h1', scratch: '/tmp/h1/scratch2' }, {}).given.home.scratch).toBe(
      '/tmp/h1/scratch2',
    );
    expect(resolveConfig({ ...base, home: '/tmp/h1', scratch: '/tmp/elsewhere' }, {}).given.home.scratch).toBe(
      '/tmp/elsewhere',
    );
  });

  it('resolves home settings given over stored over defaults, and says what a start changes', () => {
    const { settings, sources } = resolveHomeSettings(
      '/tmp/h1',
      { ioConcurrency: 4, jobTimeoutMs: 60_000 },
      { jobTimeoutMs: 120_000 },
    );
    expect(settings.ioConcurrency).toBe(4);
    expect(sources.ioConcurrency).toBe('stored');
    expect(settings.jobTimeoutMs).toBe(120_000);
    expect(sources.jobTimeoutMs).toBe('given');
    expect(settings.stepTimeoutMs).toBe(120_000); // its default follows the job timeout
    expect(settings.scratch).toBe('/tmp/h1/scratch');
    expect(sources.cpuConcurrency).toBe('default');
    expect(homeChanges('/tmp/h1', { ioConcurrency: 8 }, { ioConcurrency: 4, maxBands: 64 })).toEqual([
      '--io-concurrency 8 → 4',
    ]);
  });

  it('checks what the stored and given settings make together: condor and slurm need key files', () => {
    expect(() => checkWatchSettings({ ...DEFAULT_WATCH_SETTINGS, executor: 'condor' })).toThrow(
      /--executor condor needs the S3 keys in files/,
    );
    expect(() => checkWatchSettings({ ...DEFAULT_WATCH_SETTINGS, executor: 'slurm' })).toThrow(
      /--executor slurm needs the S3 keys in files: the jobs read them on the compute nodes/,
    );
    expect(() =>
      checkWatchSettings({ ...DEFAULT_WATCH_SETTINGS, executor: 'slurm', accessKeyFile: '/a', secretKeyFile: '/s' }),
    ).not.toThrow();
    expect(() =>
      checkWatchSettings({ ...DEFAULT_WATCH_SETTINGS, executor: 'condor', accessKeyFile: '/a', secretKeyFile: '/s' }),
    ).not.toThrow();
  });

  it('takes the home from the flag, else COGD_HOME, else the current directory', () => {
    expect(resolveConfig({ ...base, home: '/tmp/h1' }, { COGD_HOME: '/tmp/h2' }).home).toBe('/tmp/h1');
    expect(resolveConfig(base, { COGD_HOME: '/tmp/h2' }).home).toBe('/tmp/h2');
    expect(resolveConfig(base, {}).home).toBe(process.cwd());
  });

  it.each([
    [{ ...base, maxRunning: 'lots' }, /-m\/--max-running must be a whole number, got "lots"/],
    [{ ...base, maxRunning: '0' }, /at least 1/],
    [{ ...base, inputBucket: 'Bad_Bucket' }, /--input-bucket "Bad_Bucket" is not a valid bucket name/],
    [{ ...base, outputBucket: undefined }, /--output-bucket is required/],
    [{ ...base, accessKey: 'a.key' }, /go together/],
    [{ ...base, schedule: 'every minute' }, /not a cron expression/],
    [{ ...base, pattern: ' ' }, /-p\/--pattern is required/],
    [{ ...base, retryDelay: 'soon' }, /--retry-delay must be a number of seconds, got "soon"/],
    [{ ...base, executor: 'pbs' }, /--executor "pbs" is unknown/],
    [{ ...base, mem: '2 GB' }, /--mem "2 GB" is not a Slurm memory size/],
    [{ ...base, partition: 'a b' }, /--partition "a b" is not a Slurm partition or account name/],
    [{ ...base, slurmPoll: '1' }, /--slurm-poll must be at least 2 seconds, got 1/],
    [{ ...base, sbatchArg: ['--job-name=mine'] }, /--sbatch-arg "--job-name=mine": cogd sets --job-name itself/],
    [{ ...base, ioConcurrency: '0' }, /--io-concurrency must be at least 1, got 0/],
    [{ ...base, jobTimeout: '-5' }, /--job-timeout must be at least 1 seconds, got -5/],
    [{ ...base, requestMemory: 'lots' }, /--request-memory "lots" is not a size/],
    [{ ...base, submitTemplate: '/no/such.sub' }, /--submit-template \/no\/such\.sub: no such file/],
  ])('rejects bad input with a message naming it: %j', (flags, message) => {
    expect(() => resolveConfig(flags, {})).toThrow(message);
  });
});

describe('the daemon on this Node.js line', () => {
  it('has every V8 flag the daemon starts with, or starts without the ones a newer V8 dropped', () => {
    const { flags, dropped } = supportedDaemonFlags();
    // Run on every Node.js line CI tests (20 and 24): a dropped flag shows here first.
    expect(dropped, `Node.js ${process.version}`).toEqual([]);
    expect(flags).toEqual([...DAEMON_NODE_FLAGS]);
    expect(supportedDaemonFlags('/no/such/node')).toEqual({ flags: [], dropped: [...DAEMON_NODE_FLAGS] });
  });
  it('collects garbage in a process started without --expose-gc too (cogd poll --wait after a big plan)', () => {
    expect((globalThis as { gc?: unknown }).gc, 'this test needs a worker without --expose-gc').toBeUndefined();
    const held: { rows?: Array<{ key: string }> } = {
      rows: Array.from({ length: 1_000_000 }, (_, i) => ({ key: `row-${i}` })),
    };
    expect(held.rows?.length).toBe(1_000_000);
    delete held.rows;
    const before = process.memoryUsage().heapUsed;
    collectWhileIdle();
    const after = process.memoryUsage().heapUsed;
    expect(before - after, `${before} → ${after} bytes`).toBeGreaterThan(30_000_000);
  });
});
