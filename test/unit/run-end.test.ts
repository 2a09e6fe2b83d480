/** The pieces of a run's end: the command grammar, URLs as shown, the facts and their status, the environment. */
import { describe, expect, it } from 'vitest';
import { command, httpUrl } from '../../src/config/parse.js';
import { hookEnvironment as baseEnvironment } from '../../src/config/index.js';
import { showValue } from '../../src/config/options.js';
import { UsageError } from '../../src/errors.js';
import { hookEnvironment, notifyReason, runFacts } from '../../src/post/run-end.js';
import type { RunRecord } from '../../src/state/db.js';
import type { JobState } from '../../src/types.js';
import { safeUrl, secretsOf, shownUrl } from '../../src/util/url.js';

const words = (raw: string): string[] => command(raw, '--on-run-end');

describe('--on-run-end grammar (no shell)', () => {
  it('splits at white space; quotes and backslashes keep what they hold', () => {
    expect(words('notify-run')).toEqual(['notify-run']);
    expect(words('  /usr/bin/env   python3  hook.py ')).toEqual(['/usr/bin/env', 'python3', 'hook.py']);
    expect(words(`mail -s 'run ended' "ops team"`)).toEqual(['mail', '-s', 'run ended', 'ops team']);
    expect(words(`echo 'a "b"' "c 'd'" "e\\"f\\\\g"`)).toEqual(['echo', 'a "b"', "c 'd'", 'e"f\\g']);
    expect(words(`echo a\\ b '' x''y`)).toEqual(['echo', 'a b', '', 'xy']);
    // What a shell would expand is an argument like any other, once quoted.
    expect(words(`echo '$HOME' "*; rm -rf /" \\|`)).toEqual(['echo', '$HOME', '*; rm -rf /', '|']);
    expect(words('')).toEqual([]);
  });

  it('makes a program named by a path absolute; a bare name stays for PATH', () => {
    expect(words('./hooks/done.sh x')[0]).toBe(`${process.cwd()}/hooks/done.sh`);
    expect(words('done.sh')[0]).toBe('done.sh');
  });

  it.each([
    ['a | b', /\| means something to a shell only/],
    ['a > out', /> means something to a shell only/],
    ['a; b', /; means something to a shell only/],
    ['a && b', /& means something to a shell only/],
    ['echo $HOME', /\$ means something to a shell only/],
    ['echo `id`', /` means something to a shell only/],
    ['a (b)', /\( means something to a shell only/],
    ["a 'b", /unterminated ' quote/],
    ['a "b', /unterminated " quote/],
    ['a \\', /lone backslash/],
    ["'' x", /names no program/],
  ])('refuses %j', (raw, message) => {
    expect(() => words(raw)).toThrow(UsageError);
    expect(() => words(raw)).toThrow(message);
  });

  it('is shown as it could be typed again', () => {
    expect(showValue('onRunEnd', [])).toBe('none');
    expect(showValue('onRunEnd', ['/bin/hook', 'a b', "it's"])).toBe(`/bin/hook 'a b' 'it'\\''s'`);
  });
});

describe('--notify-url', () => {
  it('takes http and https URLs; empty is none', () => {
    expect(httpUrl('https://hooks.example.org/cogd', '--notify-url')).toBe('https://hooks.example.org/cogd');
    expect(httpUrl('', '--notify-url')).toBeNull();
    expect(() => httpUrl('ftp://x/y', '--notify-url')).toThrow(/only http and https/);
    expect(() => httpUrl('not a url', '--notify-url')).toThrow(/is not a URL/);
  });

  it('is never shown with its credentials or query', () => {
    const url = 'https://bot:s3cr%40t@hooks.example.org:8443/a/b?token=xyz123&x=1#frag';
    expect(safeUrl(url)).toBe('https://hooks.example.org:8443/a/b');
    expect(shownUrl(url)).toBe('https://hooks.example.org:8443/a/b (credentials and query hidden)');
    expect(shownUrl('https://hooks.example.org/a')).toBe('https://hooks.example.org/a');
    expect(showValue('notifyUrl', url)).not.toMatch(/s3cr|xyz123|bot/);
    expect(secretsOf(url)).toEqual(expect.arrayContaining(['s3cr%40t', 's3cr@t', 'bot', 'xyz123']));
    const error = new TypeError('fetch failed', { cause: new Error('bad header s3cr@t for xyz123') });
    expect(notifyReason(error, url)).toBe('fetch failed: bad header *** for ***');
  });
});

const run = (fields: Partial<RunRecord> = {}): RunRecord => ({
  id: 12,
  watchId: 3,
  inputBucket: 'raw',
  outputBucket: 'cogs',
  manifestKey: 'a/x-raw.csv',
  manifestEtag: '"e"',
  manifestMtime: '2026-11-21T00:00:00.000Z',
  base: 'a/x-',
  ts: '20261121-000000',
  processingKey: 'a/x-processing-20261121-000000.csv',
  runDir: '/home/logs/run-20261121-000000',
  batchName: 'COG-Pipeline-DAG-*raw.csv',
  state: 'done',
  claimStep: 'raw-deleted',
  claimToken: null,
  rowsTotal: 3,
  processed: 3,
  failed: 0,
  error: null,
  postError: null,
  createdAt: '2026-11-21T00:00:00.000Z',
  finishedAt: '2026-11-21T00:05:00.000Z',
  retryOf: null,
  ...fields,
});
const counts = (c: Partial<Record<JobState, number>>): Record<JobState, number> => ({
  idle: 0,
  running: 0,
  held: 0,
  converted: 0,
  failed: 0,
  removed: 0,
  ...c,
});

describe('the facts of a finished run', () => {
  it('ok: every row processed; only the processed CSV named', () => {
    const facts = runFacts(run(), counts({ converted: 3 }));
    expect(facts).toMatchObject({
      status: 'ok',
      rows: 3,
      processed: 3,
      failed: 0,
      processedKey: 'a/x-processed-20261121-000000.csv',
      failedKey: null,
      errorsKey: null,
      manifest: 's3://raw/a/x-raw.csv',
    });
  });

  it('failed when a row failed (whatever was removed); removed when the user removed the only rows not processed', () => {
    const failed = runFacts(run({ processed: 1, failed: 2 }), counts({ converted: 1, failed: 1, removed: 1 }));
    expect(failed).toMatchObject({
      status: 'failed',
      failed: 2,
      removed: 1,
      failedKey: 'a/x-failed-20261121-000000.csv',
    });
    expect(failed.errorsKey).toBe('a/x-errors-20261121-000000.csv');
    const removed = runFacts(run({ processed: 2, failed: 1 }), counts({ converted: 2, removed: 1 }));
    expect(removed.status).toBe('removed');
  });

  it('failed, with failed and errors CSVs, when the whole manifest was rejected', () => {
    const facts = runFacts(run({ processed: 0, failed: 0, error: 'not a CSV' }), counts({}));
    expect(facts).toMatchObject({ status: 'failed', rows: 0, processedKey: null, manifestError: 'not a CSV' });
    expect(facts.failedKey).not.toBeNull();
    expect(facts.errorsKey).not.toBeNull();
  });

  it('reach the hook with PATH, HOME and LANG only from cogd environment', () => {
    const base = baseEnvironment({
      PATH: '/usr/bin',
      HOME: '/home/u',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_ACCESS_KEY_ID: 'y',
      COGD_HOME: '/h',
      USER: 'u',
    });
    expect(base).toEqual({ PATH: '/usr/bin', HOME: '/home/u' });
    const env = hookEnvironment(runFacts(run(), counts({ converted: 3 })), base);
    expect(env).toMatchObject({
      PATH: '/usr/bin',
      COGD_RUN_ID: '12',
      COGD_STATUS: 'ok',
      COGD_FAILED_KEY: '',
      COGD_LOG_DIR: '/home/logs/run-20261121-000000',
    });
    expect(Object.keys(env).filter((name) => !name.startsWith('COGD_'))).toEqual(['PATH', 'HOME']);
  });
});
