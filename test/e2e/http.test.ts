/**
 * `cogd start --http`: a real detached daemon on loopback, a real S3 server, a real SQLite file.
 * The JSON API against `cogd status --json`, paging and filters, job log tails, /metrics parsed and
 * followed while jobs finish, /healthz, the read-only and Host rules, a port in use, the token.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseArgs, cogd, freshBuckets, status, tempDir, until } from '../support/helpers.js';
import { HOSTILE_KEY, parsePrometheus, startWebDaemon, valueOf, type WebDaemon } from '../support/web.js';

const get = (url: string, init: RequestInit = {}) => fetch(url, { ...init, redirect: 'manual' });
const getJson = async <T>(url: string): Promise<T> => {
  const response = await get(url);
  expect(response.status, await response.clone().text()).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  return (await response.json()) as T;
};

/** A raw request, to send what fetch will not (another Host header). */
function rawRequest(url: string, lines: string[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(`${lines.join('\r\n')}\r\n\r\n`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

interface JobsPage {
  run: number;
  state: string | null;
  page: number;
  pageSize: number;
  total: number;
  pages: number;
  jobs: Array<{
    id: string;
    line: number;
    attempts: number;
    key: string | null;
    state: string;
    error: string | null;
    durationMs: number | null;
  }>;
}

describe('the status page and its API', () => {
  let web: WebDaemon;
  const cleanup: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    web = await startWebDaemon();
    cleanup.push(() => web.stop());
  });
  afterAll(async () => {
    for (const step of cleanup.splice(0)) await step();
  });

  it('/api/status and /api/runs/ID answer what cogd status --json does', async () => {
    // The held jobs do not move, so both readings see the same state.
    const api = await getJson<Record<string, unknown>>(`${web.url}api/status`);
    const cli = await status(web.home);
    expect(api).toEqual(cli);
    expect((api['watches'] as Array<{ lastPolledAt: string | null }>)[0]!.lastPolledAt).toMatch(/^\d{4}-/);

    const run = await getJson<Record<string, unknown>>(`${web.url}api/runs/1`);
    const cliRun = await status(web.home, '1');
    const { run: detail, ...rest } = run;
    expect(rest).toEqual(cliRun);
    expect(detail).toMatchObject({
      id: 1,
      watch: 'w1',
      manifestKey: 'web-raw.csv',
      inputBucket: web.buckets.input,
      state: 'running',
      rowsTotal: 5,
      results: { processed: null, failed: null, errors: null },
    });
  });

  it('pages and filters jobs on the server', async () => {
    const all = await getJson<JobsPage>(`${web.url}api/runs/1/jobs`);
    expect(all).toMatchObject({ run: 1, state: null, page: 1, pageSize: 100, total: 5, pages: 1 });
    expect(all.jobs.map((j) => j.line)).toEqual([1, 2, 3, 4, 5]);

    const failed = await getJson<JobsPage>(`${web.url}api/runs/1/jobs?state=failed`);
    expect(failed.total).toBe(2);
    expect(failed.jobs.map((j) => [j.id, j.key])).toEqual([
      ['1.3', 'img/missing.tif'],
      ['1.4', HOSTILE_KEY],
    ]);
    expect(failed.jobs[0]!.error).toMatch(/img\/missing\.tif does not exist/);
    // The same fields as `cogd status --jobs --json`, for the same jobs.
    const cliJobs = (await status(web.home, '--jobs')).jobs!.filter((j) => j.state === 'failed');
    expect(failed.jobs.map(({ id, state, error, attempts }) => ({ id, state, error, attempts }))).toEqual(
      cliJobs.map(({ id, state, error, attempts }) => ({ id, state, error, attempts })),
    );

    const beyond = await getJson<JobsPage>(`${web.url}api/runs/1/jobs?state=failed&page=2`);
    expect(beyond).toMatchObject({ page: 2, total: 2, jobs: [] });

    const bad = await get(`${web.url}api/runs/1/jobs?state=bogus`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(
      /state "bogus" is unknown: use one of idle, running/,
    );
    expect((await get(`${web.url}api/runs/1/jobs?page=0`)).status).toBe(400);
    expect((await get(`${web.url}api/runs/99`)).status).toBe(404);
    expect((await get(`${web.url}runs/99`)).status).toBe(404);
    expect((await get(`${web.url}api/runs/1/jobs/77`)).status).toBe(404);
  });

  it("a job's page shows its log tails, escaped, looked up from the DB", async () => {
    const page = await get(`${web.url}runs/1/jobs/4`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;.tif');
    expect(html).not.toContain('<img src=x');
    expect(html).toMatch(/attempt 1 of 1/); // the tail of its .log
    const api = await getJson<{ job: { id: string }; logs: { log?: { name: string; text: string } } }>(
      `${web.url}api/runs/1/jobs/3`,
    );
    expect(api.job.id).toBe('1.3');
    expect(api.logs.log?.name).toBe('missing.log');
    expect(api.logs.log?.text).toMatch(/failed: .*does not exist/);
    // A path in the URL is never a file name: these are just unknown routes or bad lines.
    expect((await get(`${web.url}runs/1/jobs/..%2F..%2Fcogd.db`)).status).toBe(400);
    expect((await get(`${web.url}static/..%2F..%2Fpackage.json`)).status).toBe(404);
  });

  it('is read-only, loopback-only by Host, and says so', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const response = await get(`${web.url}api/status`, { method });
      expect(response.status, method).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
    }
    const head = await get(`${web.url}api/status`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const root = await get(web.url);
    expect(root.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(root.headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
    const html = await root.text();
    expect(html).toMatch(/<script src="\/static\/app\.js" defer><\/script>/);
    expect(html).not.toMatch(/<script>/); // no inline script
    expect((await get(`${web.url}static/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await get(`${web.url}nothing-here`)).status).toBe(404);
    const rebound = await rawRequest(web.url, [
      'GET /api/status HTTP/1.1',
      'Host: evil.example:9464',
      'Connection: close',
    ]);
    expect(rebound).toMatch(/^HTTP\/1\.1 421 /);
    // No secret in any answer: the key files' content never appears.
    const everything = [
      await (await get(web.url)).text(),
      await (await get(`${web.url}api/status`)).text(),
      await (await get(`${web.url}api/runs/1`)).text(),
      await (await get(`${web.url}runs/1/jobs/1`)).text(),
      await (await get(`${web.url}metrics`)).text(),
    ].join('\n');
    expect(everything).not.toMatch(/S3RVER/);
  });

  it('/metrics parses as Prometheus text and its counters follow the run to its end', async () => {
    const before = parsePrometheus(await (await get(`${web.url}metrics`)).text());
    expect(before.types.get('cogd_jobs')).toBe('gauge');
    expect(before.types.get('cogd_job_duration_seconds')).toBe('histogram');
    expect(before.types.get('process_cpu_user_seconds_total')).toBe('counter'); // the default metrics
    expect(valueOf(before.samples, 'cogd_jobs', { state: 'failed', watch: 'w1', executor: 'local' })).toBe(2);
    expect(valueOf(before.samples, 'cogd_jobs_finished_total', { outcome: 'failed' })).toBe(2);
    expect(valueOf(before.samples, 'cogd_jobs_finished_total', { outcome: 'converted' })).toBe(0);
    expect(valueOf(before.samples, 'cogd_job_attempt_failures_total', { reason: 'NoSuchKey' })).toBe(2);
    expect(valueOf(before.samples, 'cogd_polls_total', { watch: 'w1' })).toBe(1);
    expect(valueOf(before.samples, 'cogd_s3_requests_total', { operation: 'ListObjectsV2Command' })).toBeGreaterThan(0);
    // No job, run or key in a label.
    for (const sample of before.samples) {
      for (const value of Object.values(sample.labels)) expect(value).not.toMatch(/\.tif|raw\.csv|^1\.\d/);
    }

    await web.release();
    await until(
      'the run to finish',
      async () => ((await status(web.home)).runs[0]?.state === 'done' ? true : undefined),
      120,
    );
    const after = parsePrometheus(await (await get(`${web.url}metrics`)).text()).samples;
    expect(valueOf(after, 'cogd_jobs_finished_total', { outcome: 'converted', watch: 'w1', executor: 'local' })).toBe(
      3,
    );
    expect(valueOf(after, 'cogd_jobs_finished_total', { outcome: 'failed' })).toBe(2);
    expect(valueOf(after, 'cogd_runs_finished_total', { outcome: 'failures' })).toBe(1);
    expect(valueOf(after, 'cogd_images_out_total')).toBe(3);
    expect(valueOf(after, 'cogd_job_duration_seconds_count', { outcome: 'converted' })).toBe(3);
    expect(valueOf(after, 'cogd_job_queue_wait_seconds_count')).toBe(5);
    expect(valueOf(after, 'cogd_s3_bytes_total', { direction: 'out' })).toBeGreaterThan(
      valueOf(before.samples, 'cogd_s3_bytes_total', { direction: 'out' }),
    );
    // The run is done: no job of an unfinished run is left in the gauge.
    expect(valueOf(after, 'cogd_jobs')).toBe(0);

    const run = await getJson<{ run: { results: Record<string, string | null>; durationMs: number } }>(
      `${web.url}api/runs/1`,
    );
    expect(run.run.results['processed']).toMatch(
      new RegExp(`^s3://${web.buckets.input}/web-processed-\\d{8}-\\d{6}\\.csv$`),
    );
    expect(run.run.results['errors']).toMatch(/web-errors-/);
    const converted = await getJson<JobsPage>(`${web.url}api/runs/1/jobs?state=converted`);
    expect(converted.jobs.map((j) => j.line)).toEqual([1, 2, 5]);
    for (const job of converted.jobs) expect(job.durationMs).toBeGreaterThan(0);
  });

  it('/healthz answers 200 while the daemon runs', async () => {
    const health = await get(`${web.url}healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
  });
});

describe('starting with --http', () => {
  it('a port in use stops the start with a clear error naming the address', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const home = await tempDir();
      const buckets = await freshBuckets();
      const started = await cogd(['start', ...(await baseArgs(buckets, home)), '--http', `127.0.0.1:${port}`]);
      expect(started.exitCode).toBe(1);
      expect(started.stderr).toContain(`cannot serve the status page on 127.0.0.1:${port}: the address is in use`);
      expect((await status(home)).daemon.running).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('refuses a bad address and a non-loopback address without a token (exit 2)', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const args = await baseArgs(buckets, home);
    const bad = await cogd(['start', ...args, '--http', 'nowhere']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--http "nowhere" is not an address and port/);
    const open = await cogd(['start', ...args, '--http', '0.0.0.0:0']);
    expect(open.exitCode).toBe(2);
    expect(open.stderr).toMatch(/--http 0\.0\.0\.0:0 would serve the status page beyond this machine without a token/);
    expect(existsSync(path.join(home, 'cogd.pid'))).toBe(false);
  });

  it('with --http-token-file every request needs the bearer token; --http-open-metrics leaves /metrics open', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const tokenFile = path.join(home, 'token');
    await writeFile(tokenFile, 's3cr3t-token\n', { mode: 0o600 });
    const started = await cogd([
      'start',
      ...(await baseArgs(buckets, home)),
      '--schedule',
      '0 0 1 1 *',
      '--http',
      '0.0.0.0:0',
      '--http-token-file',
      tokenFile,
      '--http-open-metrics',
    ]);
    try {
      expect(started.exitCode, started.stderr).toBe(0);
      const port = /^status page: http:\/\/0\.0\.0\.0:(\d+)\//m.exec(started.stdout)?.[1];
      expect(port, started.stdout).toBeDefined();
      const base = `http://127.0.0.1:${port}/`;
      const denied = await get(`${base}api/status`);
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await get(`${base}api/status`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      const allowed = await get(`${base}api/status`, { headers: { Authorization: 'Bearer s3cr3t-token' } });
      expect(allowed.status).toBe(200);
      expect(await allowed.text()).not.toContain('s3cr3t');
      expect((await get(`${base}metrics`)).status).toBe(200);
      expect((await get(`${base}healthz`)).status).toBe(200);
      expect((await get(base)).status).toBe(401);
    } finally {
      await cogd(['stop', '--home', home]);
    }
  });
});
