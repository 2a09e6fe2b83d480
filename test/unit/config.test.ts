import { describe, expect, it } from 'vitest';
import { normalizeEndpoint, resolveConfig } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

const base = { pattern: '*raw.csv', inputBucket: 'in-bucket', outputBucket: 'out-bucket' };

describe('config', () => {
  it('reads a bare host as https and keeps a URL as given', () => {
    expect(normalizeEndpoint('s3.example.org')).toBe('https://s3.example.org');
    expect(normalizeEndpoint('s3.example.org:9000')).toBe('https://s3.example.org:9000');
    expect(normalizeEndpoint('http://127.0.0.1:9000')).toBe('http://127.0.0.1:9000');
    expect(normalizeEndpoint('https://s3.example.org/')).toBe('https://s3.example.org');
    expect(() => normalizeEndpoint('ftp://x')).toThrow(UsageError);
  });

  it('has the reference tool\'s defaults', () => {
    const config = resolveConfig(base, {});
    expect(config.maxRunning).toBe(10000);
    expect(config.retries).toBe(3);
    expect(config.schedule).toBe('*/15 * * * *');
    expect(config.executor).toBe('local');
    expect(config.s3.region).toBe('us-east-1');
    expect(config.s3.endpoint).toBeUndefined();
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
  ])('rejects bad input with a message naming it: %j', (flags, message) => {
    expect(() => resolveConfig(flags, {})).toThrow(message);
  });
});
