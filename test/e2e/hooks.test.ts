/**
 * Runs' ends: the --on-run-end command (real processes, no shell, its environment, its output, its
 * deadline, a restart) and the --notify-url POST (a real HTTP server on loopback, a server that
 * fails, one that is down) — neither ever changes a run's results, and a URL's credentials and
 * query never reach a log, `cogd status` or `cogd config`.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  alive,
  baseArgs,
  cogd,
  freshBuckets,
  getText,
  keys,
  makeTiff,
  put,
  putFile,
  status,
  tempDir,
  until,
} from '../support/helpers.js';

/** What status --json says of a run's end. */
interface RunEndStatus {
  id: number;
  state: string;
  counts: Record<string, number>;
  hook: { state: string; exitCode: number | null; signal: string | null; result: string; starts: number } | null;
  notify: { state: string; result: string } | null;
}

const runsOf = async (home: string): Promise<RunEndStatus[]> => (await status(home)).runs as unknown as RunEndStatus[];

const homes: string[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const home of homes.splice(0)) await cogd(['stop', '--home', home]);
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A hook that records its environment, arguments and directory, says something on both streams, and exits with argv[3]. */
const RECORDING_HOOK = `
import { writeFileSync } from 'node:fs';
const [out, code, ...rest] = process.argv.slice(2);
process.stdout.write('hook says hello\\n');
process.stderr.write('hook says boom\\n');
writeFileSync(out, JSON.stringify({ env: process.env, argv: rest, cwd: process.cwd() }));
process.exit(Number(code));
`;

/** A hook that ignores SIGTERM, starts a child in its group that ignores it too, and hangs. */
const HANGING_HOOK = `
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
process.on('SIGTERM', () => undefined);
const child = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => undefined); setInterval(() => undefined, 1000)'], { stdio: 'ignore' });
writeFileSync(process.argv[2], JSON.stringify({ hook: process.pid, child: child.pid }));
setInterval(() => undefined, 1000);
`;

async function script(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

/** Buckets with one good image listed in m-raw.csv (and `extra` rows after it). */
async function manifest(home: string, extra = ''): Promise<{ input: string; output: string }> {
  const buckets = await freshBuckets();
  await putFile(buckets.input, 'img/a.tif', await makeTiff(path.join(home, 'a.tif'), { bands: 1 }));
  await put(buckets.input, 'm-raw.csv', `img/a.tif,1\n${extra}`);
  return buckets;
}

/** Every file under `dir`, as text, with its path. */
async function allFiles(dir: string): Promise<Array<{ file: string; text: string }>> {
  const found: Array<{ file: string; text: string }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    found.push({ file, text: await readFile(file, 'utf8') });
  }
  return found;
}

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook server on loopback answering every request with `answer`; what it received. */
async function webhookServer(answer: number): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      response.statusCode = answer;
      response.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, received };
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The daemon log's events (JSON lines). */
async function events(home: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path.join(home, 'logs', 'cogd.log'), 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('--on-run-end', () => {
  it('runs the command without a shell, with the documented environment and nothing else, its output in the run directory', async () => {
    const home = await tempDir();
    const buckets = await manifest(home, 'img/missing.tif,1\n');
    const hook = await script(home, 'hook.mjs', RECORDING_HOOK);
    const out = path.join(home, 'seen.json');
    const result = await cogd(
      [
        'poll',
        '--wait',
        ...(await baseArgs(buckets, home)),
        '--on-run-end',
        `node ${hook} ${out} 0 'two words' "$HOME;x"`,
      ],
      // Secrets and noise in cogd's own environment: none of it may reach the hook.
      { env: { AWS_ACCESS_KEY_ID: 'AKIAHOOKLEAK', AWS_SECRET_ACCESS_KEY: 'hook-leak-secret', COGD_NOISE: 'x' } },
    );
    expect(result.exitCode, result.stderr).toBe(1); // a row failed: the run's exit code, whatever the hook did
    expect(result.stdout).toMatch(
      /^run 1 .*m-raw\.csv: 2 rows, 1 processed, 1 failed; logs in logs\/run-\d{8}-\d{6}$/m,
    );
    expect(result.stdout).toMatch(/^run 1: --on-run-end ok: exit code 0$/m);

    const seen = JSON.parse(await readFile(out, 'utf8')) as {
      env: Record<string, string>;
      argv: string[];
      cwd: string;
    };
    // Quoted words arrive as one argument each; $ and ; inside quotes are plain characters (no shell).
    expect(seen.argv).toEqual(['two words', '$HOME;x']);
    const inherited = ['PATH', 'HOME', 'LANG'].filter((name) => process.env[name] !== undefined);
    const facts = [
      'COGD_RUN_ID',
      'COGD_WATCH_ID',
      'COGD_BATCH_NAME',
      'COGD_MANIFEST',
      'COGD_INPUT_BUCKET',
      'COGD_OUTPUT_BUCKET',
      'COGD_STATUS',
      'COGD_MANIFEST_ERROR',
      'COGD_ROWS',
      'COGD_PROCESSED',
      'COGD_FAILED',
      'COGD_REMOVED',
      'COGD_PROCESSED_KEY',
      'COGD_FAILED_KEY',
      'COGD_ERRORS_KEY',
      'COGD_LOG_DIR',
      'COGD_CLAIMED_AT',
      'COGD_FINISHED_AT',
    ];
    expect(Object.keys(seen.env).sort()).toEqual([...inherited, ...facts].sort());
    for (const name of inherited) expect(seen.env[name]).toBe(process.env[name]);
    expect(JSON.stringify(seen.env)).not.toMatch(/AKIAHOOKLEAK|hook-leak-secret|access\.key|secret\.key/);

    const listed = await keys(buckets.input);
    const env = seen.env;
    expect(env).toMatchObject({
      COGD_RUN_ID: '1',
      COGD_WATCH_ID: 'w1',
      COGD_BATCH_NAME: 'COG-Pipeline-DAG-*raw.csv',
      COGD_MANIFEST: `s3://${buckets.input}/m-raw.csv`,
      COGD_INPUT_BUCKET: buckets.input,
      COGD_OUTPUT_BUCKET: buckets.output,
      COGD_STATUS: 'failed',
      COGD_MANIFEST_ERROR: '',
      COGD_ROWS: '2',
      COGD_PROCESSED: '1',
      COGD_FAILED: '1',
      COGD_REMOVED: '0',
    });
    // The result CSVs it names are the ones in the bucket.
    expect(env['COGD_PROCESSED_KEY']).toMatch(/^m-processed-\d{8}-\d{6}\.csv$/);
    expect(env['COGD_FAILED_KEY']).toMatch(/^m-failed-\d{8}-\d{6}\.csv$/);
    expect(env['COGD_ERRORS_KEY']).toMatch(/^m-errors-\d{8}-\d{6}\.csv$/);
    for (const key of ['COGD_PROCESSED_KEY', 'COGD_FAILED_KEY', 'COGD_ERRORS_KEY']) expect(listed).toContain(env[key]);
    expect(await getText(buckets.input, env['COGD_FAILED_KEY']!)).toBe('img/missing.tif,1\n');
    expect(new Date(env['COGD_FINISHED_AT']!).getTime()).toBeGreaterThanOrEqual(
      new Date(env['COGD_CLAIMED_AT']!).getTime(),
    );

    // It ran in the run's log directory; its output is there too.
    const logDir = env['COGD_LOG_DIR']!;
    expect(path.dirname(logDir)).toBe(path.join(home, 'logs'));
    expect(seen.cwd).toBe(logDir);
    expect(existsSync(path.join(logDir, 'post.out'))).toBe(true);
    expect(await readFile(path.join(logDir, 'hook.out'), 'utf8')).toBe('hook says hello\n');
    expect(await readFile(path.join(logDir, 'hook.err'), 'utf8')).toBe('hook says boom\n');

    const [run] = await runsOf(home);
    expect(run?.hook).toMatchObject({ state: 'ok', exitCode: 0, signal: null, result: 'exit code 0', starts: 1 });
    const text = await cogd(['status', '--home', home]);
    expect(text.stdout).toMatch(/^run 1 s3:\/\/in-\S+\/m-raw\.csv: --on-run-end ok: exit code 0$/m);
    const logs = await cogd(['logs', '1', '--home', home]);
    expect(logs.stdout).toMatch(/==> logs\/run-\S+\/hook\.err <==\nhook says boom/);
  });

  it('a failing hook leaves the run exactly as a run without one: the same result CSVs, outputs, state and exit code', async () => {
    const home = await tempDir();
    const hook = await script(home, 'hook.mjs', RECORDING_HOOK);
    const withHook = await manifest(home, 'img/missing.tif,1\n');
    const failing = await cogd([
      'poll',
      '--wait',
      ...(await baseArgs(withHook, home)),
      '--on-run-end',
      `node ${hook} ${path.join(home, 'seen.json')} 3`,
    ]);
    const plainHome = await tempDir();
    const plain = await manifest(plainHome, 'img/missing.tif,1\n');
    const without = await cogd(['poll', '--wait', ...(await baseArgs(plain, plainHome))]);

    expect(failing.exitCode).toBe(without.exitCode);
    expect(failing.stdout).toMatch(/^run 1: --on-run-end failed: exit code 3$/m);
    // Time stamps and claim markers (a hash of the manifest's ETag and time) differ; nothing else may.
    const stamped = (list: string[]): string[] =>
      list.map((key) => key.replace(/\d{8}-\d{6}/, 'TS').replace(/^\.cogd\/claims\/[0-9a-f]{64}/, 'CLAIM'));
    expect(stamped(await keys(withHook.input))).toEqual(stamped(await keys(plain.input)));
    expect(await keys(withHook.output)).toEqual(await keys(plain.output));
    for (const kind of ['processed', 'failed', 'errors']) {
      const a = (await keys(withHook.input)).find((key) => key.startsWith(`m-${kind}-`))!;
      const b = (await keys(plain.input)).find((key) => key.startsWith(`m-${kind}-`))!;
      const text = async (bucket: string, key: string): Promise<string> =>
        (await getText(bucket, key)).split(bucket).join('BUCKET');
      expect(await text(withHook.input, a)).toBe(await text(plain.input, b));
    }
    const [run] = await runsOf(home);
    const [plainRun] = await runsOf(plainHome);
    const outcome = (r: RunEndStatus | undefined): unknown => ({
      state: r?.state,
      counts: r?.counts,
      notify: r?.notify,
    });
    expect(outcome(run)).toEqual(outcome(plainRun));
    expect(run?.hook).toMatchObject({ state: 'failed', exitCode: 3, result: 'exit code 3' });
    expect(plainRun?.hook).toBeNull();
    const text = await cogd(['status', '--home', home]);
    expect(text.stdout).toMatch(/: --on-run-end failed: exit code 3; its output: hook\.out, hook\.err$/m);
    expect(text.stdout).toMatch(/: 1 failed, 0 removed \(why: cogd status --jobs 1\)$/m);
  });

  it('a hanging hook is killed with its whole process group at its deadline, and the timeout is recorded', async () => {
    const home = await tempDir();
    const buckets = await manifest(home);
    const hook = await script(home, 'hang.mjs', HANGING_HOOK);
    const pids = path.join(home, 'pids.json');
    const started = Date.now();
    const result = await cogd([
      'poll',
      '--wait',
      ...(await baseArgs(buckets, home)),
      '--on-run-end',
      `node ${hook} ${pids}`,
      '--hook-timeout',
      '2',
    ]);
    const took = Date.now() - started;
    expect(result.exitCode, result.stderr).toBe(0); // the run processed every row: the hook changes nothing
    expect(result.stdout).toMatch(
      /^run 1: --on-run-end timeout: timed out after 2 s; its process group was killed \(SIGTERM, then SIGKILL\)$/m,
    );
    // SIGTERM at 2 s, ignored; SIGKILL 5 s later.
    expect(took).toBeGreaterThan(7000);
    const { hook: hookPid, child } = JSON.parse(await readFile(pids, 'utf8')) as { hook: number; child: number };
    expect(alive(hookPid)).toBe(false);
    expect(alive(child)).toBe(false);

    const [run] = await runsOf(home);
    expect(run).toMatchObject({ state: 'done', counts: { done: 1, failed: 0, total: 1 } });
    expect(run?.hook).toMatchObject({ state: 'timeout', exitCode: null, signal: 'SIGKILL' });
    expect((await cogd(['status', '--home', home])).stdout).toMatch(
      /: --on-run-end timeout: timed out after 2 s; its process group was killed/,
    );
    expect(await keys(buckets.output)).toEqual(['collection.json', 'img/a.jpg', 'img/a.json', 'img/a.tif']);
  });

  it('under the daemon: a running hook blocks no poll; after a kill -9 the restart kills the hook it left and runs it again', async () => {
    const home = await tempDir();
    homes.push(home);
    const buckets = await manifest(home);
    const hook = await script(
      home,
      'once.mjs',
      `
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
const dir = process.argv[2];
const run = process.env.COGD_RUN_ID;
appendFileSync(dir + '/calls', run + ' ' + process.pid + '\\n');
if (run === '1' && !existsSync(dir + '/hung')) {
  writeFileSync(dir + '/hung', String(process.pid));
  setInterval(() => undefined, 1000);
}
`,
    );
    const args = [
      ...(await baseArgs(buckets, home)),
      '--schedule',
      '* * * * * *',
      '--on-run-end',
      `node ${hook} ${home}`,
      '--hook-timeout',
      '120',
    ];
    const start = await cogd(['start', ...args]);
    expect(start.exitCode, start.stderr).toBe(0);
    const hungPid = Number(
      await until('the hook of run 1 running', async () => {
        const file = path.join(home, 'hung');
        return existsSync(file) ? await readFile(file, 'utf8') : undefined;
      }),
    );
    expect((await runsOf(home))[0]?.hook).toMatchObject({ state: 'pending' });

    // The next manifest is claimed, converted and reported while the first run's hook still runs.
    await put(buckets.input, 'n-raw.csv', 'img/a.tif,1\n');
    await until('run 2 and its hook done', async () => {
      const runs = await runsOf(home);
      return runs[1]?.hook?.state === 'ok' ? runs : undefined;
    });
    expect(alive(hungPid)).toBe(true);
    expect((await runsOf(home))[0]?.hook).toMatchObject({ state: 'pending' });

    const daemon = (await status(home)).daemon.pid!;
    process.kill(daemon, 'SIGKILL');
    await until('the daemon gone', async () => (alive(daemon) ? undefined : true));
    expect(alive(hungPid)).toBe(true); // its own process group: it outlives cogd

    const again = await cogd(['start', ...args]);
    expect(again.exitCode, again.stderr).toBe(0);
    const runs = await until('run 1 hook done after the restart', async () => {
      const found = await runsOf(home);
      return found[0]?.hook?.state === 'ok' ? found : undefined;
    });
    expect(alive(hungPid)).toBe(false);
    expect(runs[0]?.hook).toMatchObject({ state: 'ok', exitCode: 0, starts: 2 });
    expect(runs[1]?.hook).toMatchObject({ state: 'ok', starts: 1 });
    const calls = (await readFile(path.join(home, 'calls'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0]);
    expect(calls.sort()).toEqual(['1', '1', '2']);
    const log = await events(home);
    expect(log.find((e) => e['message'] === 'Run:HookOrphanKilled')).toMatchObject({ run: 1, pid: hungPid });
    expect((await cogd(['status', '--home', home])).stdout).toMatch(
      /^run 1 \S+: --on-run-end ok: exit code 0 \(started 2 times: a restart ran it again\)$/m,
    );
  });

  it('refuses, with exit 2, a command a shell would be needed for, or a program that is not there', async () => {
    const home = await tempDir();
    const buckets = { input: 'in-never', output: 'out-never' };
    const args = await baseArgs(buckets, home);
    const pipe = await cogd(['poll', ...args, '--on-run-end', 'echo done | mail me']);
    expect(pipe.exitCode).toBe(2);
    expect(pipe.stderr).toMatch(/--on-run-end "echo done \| mail me": \| means something to a shell only/);
    const missing = await cogd(['poll', ...args, '--on-run-end', '/nowhere/hook.sh']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/--on-run-end: \/nowhere\/hook\.sh is not an executable file/);
    const quote = await cogd(['poll', ...args, '--on-run-end', "node 'x"]);
    expect(quote.exitCode).toBe(2);
    expect(quote.stderr).toMatch(/unterminated ' quote/);
  });
});

describe('--notify-url', () => {
  const SECRETS = /pa55w0rd|t0ps3cret/;

  it('POSTs the run facts as JSON to a loopback server; the URL credentials and query are never shown', async () => {
    const home = await tempDir();
    const buckets = await manifest(home);
    const { port, received } = await webhookServer(204);
    const url = `http://cogd:pa55w0rd@127.0.0.1:${port}/hooks/cogd?token=t0ps3cret`;
    const result = await cogd(['poll', '--wait', '-v', ...(await baseArgs(buckets, home)), '--notify-url', url]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^run 1: --notify-url sent: HTTP 204 after 1 attempt$/m);

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request).toMatchObject({ method: 'POST', url: '/hooks/cogd?token=t0ps3cret' });
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['authorization']).toBe(`Basic ${Buffer.from('cogd:pa55w0rd').toString('base64')}`);
    const body = JSON.parse(request!.body) as Record<string, unknown>;
    const processedKey = (await keys(buckets.input)).find((key) => key.startsWith('m-processed-'));
    expect(body).toEqual({
      event: 'run-end',
      runId: 1,
      watchId: 1,
      batchName: 'COG-Pipeline-DAG-*raw.csv',
      manifest: `s3://${buckets.input}/m-raw.csv`,
      inputBucket: buckets.input,
      outputBucket: buckets.output,
      status: 'ok',
      manifestError: null,
      rows: 1,
      processed: 1,
      failed: 0,
      removed: 0,
      processedKey,
      failedKey: null,
      errorsKey: null,
      logDir: expect.stringMatching(new RegExp(`^${home}/logs/run-\\d{8}-\\d{6}$`)),
      claimedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      finishedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    const [run] = await runsOf(home);
    expect(run?.notify).toMatchObject({ state: 'sent', result: 'HTTP 204 after 1 attempt' });
    const shown = [
      result.stdout,
      result.stderr,
      (await cogd(['status', '--home', home])).stdout,
      (await cogd(['status', '--json', '--home', home])).stdout,
      (await cogd(['config', '--home', home])).stdout,
      (await cogd(['config', '--json', '--home', home])).stdout,
      (await cogd(['logs', '1', '--home', home])).stdout,
    ].join('\n');
    expect(shown).toMatch(new RegExp(`http://127\\.0\\.0\\.1:${port}/hooks/cogd \\(credentials and query hidden\\)`));
    expect(shown).not.toMatch(SECRETS);
    for (const { file, text } of await allFiles(path.join(home, 'logs'))) expect(text, file).not.toMatch(SECRETS);
  });

  it('retries a failing server with back-off, then gives up with a log line; a server that is down likewise; neither shows its secrets', async () => {
    const home = await tempDir();
    const buckets = await manifest(home);
    const { port, received } = await webhookServer(503);
    const failing = `http://cogd:pa55w0rd@127.0.0.1:${port}/hook?token=t0ps3cret`;
    const options = ['--notify-attempts', '3', '--notify-retry-delay', '0.3'];
    const first = await cogd([
      'poll',
      '--wait',
      ...(await baseArgs(buckets, home)),
      '--notify-url',
      failing,
      ...options,
    ]);
    expect(first.exitCode, first.stderr).toBe(0); // the run is fine; its notification is not
    expect(first.stdout).toMatch(/^run 1: --notify-url failed: gave up after 3 attempts: HTTP 503$/m);
    expect(received).toHaveLength(3);
    expect(received.map((r) => (JSON.parse(r.body) as { runId: number }).runId)).toEqual([1, 1, 1]);

    // The same watch, its URL changed to a port nothing listens on.
    const down = `http://cogd:pa55w0rd@127.0.0.1:${await deadPort()}/hook?token=t0ps3cret`;
    await put(buckets.input, 'n-raw.csv', 'img/a.tif,1\n');
    const second = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), '--notify-url', down, ...options]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).toMatch(
      /^watch 1: --notify-url http:\/\/127\.0\.0\.1:\d+\/hook \(credentials and query hidden\) → http:\/\/127\.0\.0\.1:\d+\/hook \(credentials and query hidden\)$/m,
    );
    expect(second.stdout).toMatch(
      /^run 2: --notify-url failed: gave up after 3 attempts: fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/m,
    );

    const log = await events(home);
    const gaveUp = log.filter((e) => e['message'] === 'Run:NotifyGaveUp');
    expect(gaveUp).toEqual([
      expect.objectContaining({ level: 'error', run: 1, attempts: 3, url: `http://127.0.0.1:${port}/hook` }),
      expect.objectContaining({ level: 'error', run: 2, attempts: 3 }),
    ]);
    const retries = log.filter((e) => e['message'] === 'Run:NotifyRetry');
    expect(retries.map((e) => [e['run'], e['attempt']])).toEqual([
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ]);
    // Back-off: about 0.3 s, then 0.6 s (±20%).
    const [firstDelay, secondDelay] = retries.map((e) => e['delayMs'] as number);
    expect(firstDelay).toBeGreaterThanOrEqual(240);
    expect(firstDelay).toBeLessThanOrEqual(360);
    expect(secondDelay).toBeGreaterThanOrEqual(480);
    expect(secondDelay).toBeLessThanOrEqual(720);
    const runs = await runsOf(home);
    expect(runs.map((r) => [r.state, r.counts['done'], r.notify?.state])).toEqual([
      ['done', 1, 'failed'],
      ['done', 1, 'failed'],
    ]);
    const shown = [
      first.stdout,
      first.stderr,
      second.stdout,
      second.stderr,
      (await cogd(['status', '--home', home])).stdout,
    ];
    expect(shown.join('\n')).not.toMatch(SECRETS);
    for (const { file, text } of await allFiles(path.join(home, 'logs'))) expect(text, file).not.toMatch(SECRETS);
    // The state DB keeps the URL as given (it has to send it), readable by its owner only.
    const { stdout: mode } = await execa('stat', ['-c', '%a', path.join(home, 'cogd.db')]);
    expect(mode).toBe('600');
  });
});
