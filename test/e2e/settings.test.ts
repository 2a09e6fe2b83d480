/**
 * Settings have one owner each: a watch's are stored with it and a second `cogd start` changes only
 * those it gives, applied by the running daemon; the home's are stored in the home and a change
 * beside a running daemon is reported, not dropped; bad values exit 2 naming the flag.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  baseArgs,
  cogd,
  freshBuckets,
  makeTiff,
  put,
  putFile,
  ROOT,
  status,
  tempDir,
  until,
} from '../support/helpers.js';

const FAULT_GDAL = path.join(ROOT, 'test/fixtures/fault-gdal');
const homes: string[] = [];

afterEach(async () => {
  for (const home of homes.splice(0)) await cogd(['stop', '--home', home]);
});

describe('settings', () => {
  it('a --retries given to a second cogd start is applied by the running daemon; a home setting is reported', async () => {
    const home = await tempDir();
    homes.push(home);
    const buckets = await freshBuckets();
    const env = { PATH: `${FAULT_GDAL}:${process.env['PATH'] ?? ''}` };
    const args = await baseArgs(buckets, home);
    const first = await cogd(['start', ...args, '--retries', '0', '--schedule', '0 0 1 1 *'], { env });
    expect(first.exitCode, first.stderr).toBe(0);

    const second = await cogd(
      ['start', ...args, '--retries', '2', '--schedule', '* * * * * *', '--io-concurrency', '4'],
      { env },
    );
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^watch 1: --retries 0 → 2$/m);
    expect(second.stdout).toMatch(/^watch 1: --schedule "0 0 1 1 \*" → "\* \* \* \* \* \*"$/m);
    expect(second.stdout).toMatch(/^home: --io-concurrency 8 → 4 \(takes effect after `cogd stop && cogd start`\)$/m);

    // A conversion that fails every time: with the new --retries it is tried 1 + 2 times.
    await putFile(
      buckets.input,
      'bad.tif',
      await makeTiff(path.join(home, 'bad.tif'), { bands: 1, type: 'UInt16', metadata: { COGD_TEST: 'fail' } }),
    );
    await put(buckets.input, 'm-raw.csv', 'bad.tif,1\n');
    const done = await until('the run done', async () => {
      const s = await status(home, '--jobs');
      return s.runs[0]?.state === 'done' ? s : undefined;
    });
    expect(done.jobs?.[0]).toMatchObject({ state: 'failed', attempts: 3 });
    expect(done.jobs?.[0]?.error).toMatch(/simulated conversion failure of s3:\/\/in-\S+\/bad\.tif/);

    const config = await cogd(['config', '--json', '--home', home]);
    expect(config.exitCode, config.stderr).toBe(0);
    const report = JSON.parse(config.stdout) as {
      settings: Array<{ setting: string; value: string; source: string }>;
      watches: Array<{ settings: Array<{ setting: string; value: string; source: string }> }>;
    };
    const homeSetting = (name: string) => report.settings.find((s) => s.setting === name);
    expect(homeSetting('ioConcurrency')).toMatchObject({ value: '4', source: expect.stringMatching(/^given \d{4}-/) });
    expect(homeSetting('jobTimeoutMs')).toEqual({
      setting: 'jobTimeoutMs',
      flag: '--job-timeout',
      value: '1800 s',
      source: 'default',
    });
    const watchSetting = (name: string) => report.watches[0]?.settings.find((s) => s.setting === name);
    expect(watchSetting('retries')).toMatchObject({ value: '2', source: expect.stringMatching(/^given /) });
    expect(watchSetting('maxRunning')).toMatchObject({ value: '10000', source: 'default' });
    const text = await cogd(['config', '--home', home]);
    expect(text.stdout).toMatch(/^ {2}--io-concurrency +4 +given \d{4}-/m);

    // The daemon reads its home settings from the home at its start, never from argv.
    expect((await cogd(['stop', '--home', home])).exitCode).toBe(0);
    const third = await cogd(['start', ...args]);
    expect(third.exitCode, third.stderr).toBe(0);
    expect(third.stdout).not.toMatch(/→/);
    const ps = await import('execa').then(({ execa }) => execa('ps', ['-eo', 'args']));
    const daemonLine = ps.stdout.split('\n').find((line) => line.includes(' daemon --home ') && line.includes(home));
    expect(daemonLine).toMatch(new RegExp(`daemon --home ${home.replace(/[.]/g, '\\.')}$`));
  });

  it.each([
    [['status', '--interval', 'abc'], /--interval must be a number of seconds, got "abc"/],
    [['status', '--watch', '--interval', '0'], /--interval must be at least 0\.1 seconds, got 0/],
    [['watch', '--interval', '-1'], /--interval must be at least 0\.1 seconds/],
    [['stop', '--timeout', 'x'], /--timeout must be a number of seconds, got "x"/],
    [['logs', '1.2'], /"1\.2" is not a run id/],
    [['rm', '1.2.3'], /"1\.2\.3" is not a run, job, watch or batch name/],
    [
      ['poll', '-p', '*', '--input-bucket', 'in-b', '--output-bucket', 'out-b', '-m', 'many'],
      /-m\/--max-running must be a whole number, got "many"/,
    ],
    [['start', '-p', '*', '--input-bucket', 'in-b', '--output-bucket', 'out-b', '--executor', 'slurm'], /--executor/],
    [['config', 'x3'], /"x3" is not a watch id/],
  ])('cogd %j exits 2 naming the flag and what it takes', async (command, message) => {
    const home = await tempDir();
    const result = await cogd([...command, '--home', home]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  it('cogd --version names cogd, Node.js and GDAL, for bug reports', async () => {
    const result = await cogd(['--version']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      expect.stringMatching(/^cogd \d+\.\d+\.\d+$/),
      `Node.js ${process.version}`,
      expect.stringMatching(/^GDAL \d+\.\d+/),
    ]);
  });
});
