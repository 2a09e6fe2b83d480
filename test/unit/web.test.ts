/**
 * The status page's parts without a daemon: the --http options, job pages of a 100,000-row run read
 * off indexes, job timings kept by the DB, log tails confined to logs/, the escaping of the job page,
 * and the metrics' reason classes and text format.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobsPage, runDetail } from '../../src/cli/status-view.js';
import { checkHttp, readOptions, resolveHomeSettings } from '../../src/config/index.js';
import { isLoopback } from '../../src/config/parse.js';
import { CogdError, PermanentError } from '../../src/errors.js';
import { StateDB } from '../../src/state/db.js';
import type { NewJob } from '../../src/state/db.js';
import { tailOf } from '../../src/web/log-tail.js';
import { Metrics, reasonClass } from '../../src/web/metrics.js';
import { escapeHtml, jobPage } from '../../src/web/pages.js';
import { tempDir } from '../support/helpers.js';
import { plannedRun, testState, testWatch } from '../support/state.js';
import { parsePrometheus, valueOf } from '../support/web.js';

describe('--http and its companions', () => {
  it('is off by default, 127.0.0.1:9464 when given bare, an address when given one', () => {
    expect(resolveHomeSettings('/tmp/h', {}, {}).settings.http).toBe(false);
    expect(readOptions('start', { http: true }).home.http).toBe('127.0.0.1:9464');
    expect(readOptions('start', { http: '[::1]:0' }).home.http).toBe('[::1]:0');
    expect(readOptions('start', { http: false }).home.http).toBe(false); // --no-http
    expect(() => readOptions('start', { http: 'localhost' })).toThrow(/--http "localhost" is not an address and port/);
    expect(() => readOptions('start', { http: '127.0.0.1:70000' })).toThrow(/is not an address and port/);
  });

  it('serves beyond loopback only with a token file', () => {
    expect(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost')).toBe(true);
    expect(isLoopback('0.0.0.0') || isLoopback('10.1.2.3') || isLoopback('::')).toBe(false);
    expect(() => checkHttp({ http: '127.0.0.1:9464', httpTokenFile: undefined })).not.toThrow();
    expect(() => checkHttp({ http: false, httpTokenFile: undefined })).not.toThrow();
    expect(() => checkHttp({ http: '0.0.0.0:9464', httpTokenFile: undefined })).toThrow(
      /--http 0\.0\.0\.0:9464 would serve the status page beyond this machine without a token/,
    );
    expect(() => checkHttp({ http: '[::]:9464', httpTokenFile: '/etc/token' })).not.toThrow();
  });
});

/** `n` planned rows of one run, written straight into the DB (planning 100,000 rows by CSV is not the point here). */
function bigRun(db: StateDB, n: number): number {
  const watch = testWatch(db);
  const run = plannedRun(db, watch, 'a.tif,1\n');
  const jobs: NewJob[] = [];
  for (let line = 1; line <= n; line += 1) {
    const failed = line % 10 === 0;
    jobs.push({
      line,
      raw: `img/${line}.tif,1`,
      imageKey: `img/${line}.tif`,
      bands: 1,
      logName: String(line),
      state: failed ? 'failed' : 'idle',
      error: failed ? `reason ${line}` : null,
    });
  }
  // The big run sits beside a small one: its pages never mix the two.
  return insertPlan(db, run.id, jobs);
}

function insertPlan(db: StateDB, runId: number, jobs: NewJob[]): number {
  const fresh = db.insertRun({
    watchId: db.run(runId)!.watchId,
    inputBucket: 'raw',
    outputBucket: 'cogs',
    manifestKey: 'big-raw.csv',
    manifestEtag: '"big"',
    manifestMtime: '2026-11-21T00:00:00.000Z',
    base: 'big-',
    ts: '20261121-000000',
    processingKey: 'big-processing-20261121-000000.csv',
    runDir: '/tmp/run-big',
    batchName: 'COG-Pipeline-DAG-*raw.csv',
  });
  db.insertJobs(fresh.id, jobs);
  return fresh.id;
}

describe('job pages', () => {
  it('pages a 100,000-row run by state in manifest order, read off indexes', async () => {
    const db = await testState();
    const runId = bigRun(db, 100_000);
    const first = jobsPage(db, runId, { state: 'failed' })!;
    expect(first).toMatchObject({ run: runId, state: 'failed', page: 1, pageSize: 100, total: 10_000, pages: 100 });
    expect(first.jobs.map((j) => j.line).slice(0, 3)).toEqual([10, 20, 30]);
    expect(first.jobs[0]).toMatchObject({ id: `${runId}.10`, key: 'img/10.tif', error: 'reason 10', durationMs: null });
    const last = jobsPage(db, runId, { state: 'failed', page: 100 })!;
    expect(last.jobs.map((j) => j.line).at(-1)).toBe(100_000);
    const all = jobsPage(db, runId, { page: 1000 })!;
    expect(all.total).toBe(100_000);
    expect(all.jobs.map((j) => j.line)).toEqual(Array.from({ length: 100 }, (_, i) => 99_901 + i));
    expect(jobsPage(db, runId, { state: 'held' })).toMatchObject({ total: 0, pages: 1, jobs: [] });
    expect(jobsPage(db, 424_242)).toBeUndefined();

    // The plans SQLite makes: each page is an index range, never a scan of the table nor a sort.
    const sqlite = (
      db as unknown as { db: { prepare(sql: string): { all(...a: unknown[]): Array<{ detail: string }> } } }
    ).db;
    for (const [sql, args] of [
      ['SELECT * FROM jobs WHERE run_id = ? AND state = ? ORDER BY line LIMIT 100 OFFSET 9900', [runId, 'failed']],
      ['SELECT * FROM jobs WHERE run_id = ? ORDER BY line LIMIT 100 OFFSET 9900', [runId]],
      ['SELECT COUNT(*) FROM jobs WHERE run_id = ? AND state = ?', [runId, 'failed']],
    ] as const) {
      const plan = sqlite
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...args)
        .map((row) => row.detail)
        .join('; ');
      expect(plan, sql).toMatch(/USING (COVERING )?INDEX/);
      expect(plan, sql).not.toMatch(/TEMP B-TREE|^SCAN jobs$/);
    }
    db.close();
  });

  it('keeps when a job started and finished, whoever changes its state', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db), 'a.tif,1\nb.tif,1\n');
    const [a, b] = db.jobs(run.id);
    db.setJobState(a!.id, 'idle', { attempts: 1 });
    expect(db.jobRow(run.id, 1)).toMatchObject({ startedAt: null, finishedAt: null });
    db.setJobState(a!.id, 'running');
    const started = db.jobRow(run.id, 1)!.startedAt;
    expect(started).toMatch(/^\d{4}-\d\d-\d\dT/);
    db.setJobState(a!.id, 'converted', { endAttempt: true });
    expect(db.jobRow(run.id, 1)).toMatchObject({ startedAt: started, finishedAt: expect.stringMatching(/^\d{4}-/) });
    db.setCondorProgress(b!.id, 'running'); // the HTCondor follower writes its own UPDATE
    expect(db.jobRow(run.id, 2)!.startedAt).not.toBeNull();
    db.markRemoved([b!.id]);
    expect(db.jobRow(run.id, 2)!.finishedAt).not.toBeNull();
    const page = jobsPage(db, run.id)!;
    expect(page.jobs[0]!.durationMs).toBeGreaterThanOrEqual(0);
    db.close();
  });

  it('names the result CSVs of a done run', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db), 'a.tif,1\n');
    expect(runDetail(run).results).toEqual({ processed: null, failed: null, errors: null });
    db.finishRun(run.id, 1, 0);
    expect(runDetail(db.run(run.id)!).results).toEqual({
      processed: 's3://raw/x-processed-20261121-000000.csv',
      failed: null,
      errors: null,
    });
    db.close();
  });
});

describe('log tails', () => {
  it('reads the end of a job log inside logs/, and nothing outside it', async () => {
    const home = await tempDir();
    const logs = path.join(home, 'logs');
    const runDir = path.join(logs, 'run-20261121-000000');
    await mkdir(runDir, { recursive: true });
    await writeFile(path.join(runDir, 'img.log'), `${'x'.repeat(100)}\nline two\nlast line\n`);
    await writeFile(path.join(home, 'outside.log'), 'secret');
    await symlink(path.join(home, 'outside.log'), path.join(runDir, 'link.log'));

    expect(await tailOf(logs, runDir, 'img', 'log')).toMatchObject({ name: 'img.log', truncated: false });
    const cut = await tailOf(logs, runDir, 'img', 'log', 15);
    expect(cut).toMatchObject({ text: 'last line\n', truncated: true });
    expect(await tailOf(logs, runDir, 'img', 'err')).toEqual({ name: 'img.err', text: '', truncated: false, size: 0 });
    expect(await tailOf(logs, runDir, 'link', 'log')).toBeUndefined(); // a symlink out of logs/
    expect(await tailOf(logs, runDir, '../../outside', 'log')).toBeUndefined();
    expect(await tailOf(logs, home, 'outside', 'log')).toBeUndefined(); // a run dir that is not in logs/
  });

  it('escapes everything the job page shows', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const html = jobPage(
      {
        id: '1.4',
        run: 1,
        line: 4,
        key: '<img src=x onerror=alert(1)>.tif',
        state: 'failed',
        hold: null,
        attempts: 1,
        error: '<script>alert(2)</script>',
        createdAt: '',
        startedAt: null,
        finishedAt: null,
        durationMs: null,
      },
      's3://raw/<b>-raw.csv',
      { log: { name: 'x.log', text: '</pre><script>alert(3)</script>', truncated: false, size: 30 } },
    );
    expect(html).not.toMatch(/<img|<script>|<b>/);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;.tif');
    expect(html).toContain('&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;');
  });
});

describe('metrics', () => {
  it('classes failures by their error code, never by their message', () => {
    expect(reasonClass(new CogdError('GdalFailed', 'gdal_translate of img/a.tif failed'))).toBe('GdalFailed');
    expect(reasonClass(new PermanentError('NoSuchKey', 'the image … does not exist'))).toBe('NoSuchKey');
    expect(reasonClass(new Error('timed out after 30 s'))).toBe('timeout');
    expect(reasonClass(new CogdError('weird code with spaces', 'x'))).toBe('other');
    expect(reasonClass('a string')).toBe('other');
  });

  it('counts what it is told and reads the jobs gauge from the DB, in Prometheus text', async () => {
    const db = await testState();
    const run = plannedRun(db, testWatch(db), 'a.tif,1\nb.tif,1\nbad\n');
    db.setJobState(db.jobs(run.id)[0]!.id, 'running');
    const metrics = new Metrics(db);
    metrics.attemptStarted(1, 'local', 1500);
    metrics.attemptEnded(1, 'local', 'retry', 2000, new CogdError('GdalFailed', 'x'));
    metrics.attemptEnded(1, 'local', 'converted', 3000);
    metrics.request('GetObjectCommand');
    metrics.transferred('out', 1234);
    metrics.polled(1, true);
    metrics.runFinished('failures');
    const { samples, types } = parsePrometheus(await metrics.text());
    expect(types.get('cogd_job_queue_wait_seconds')).toBe('histogram');
    expect(valueOf(samples, 'cogd_jobs', { state: 'running', watch: 'w1', executor: 'local' })).toBe(1);
    expect(valueOf(samples, 'cogd_jobs', { state: 'idle' })).toBe(1);
    expect(valueOf(samples, 'cogd_jobs', { state: 'failed' })).toBe(1); // the rejected row
    expect(valueOf(samples, 'cogd_job_attempt_failures_total', { reason: 'GdalFailed', executor: 'local' })).toBe(1);
    expect(valueOf(samples, 'cogd_jobs_finished_total', { outcome: 'converted', watch: 'w1' })).toBe(1);
    expect(valueOf(samples, 'cogd_job_duration_seconds_sum')).toBe(5);
    expect(valueOf(samples, 'cogd_job_queue_wait_seconds_bucket', { le: '5' })).toBe(1);
    expect(valueOf(samples, 'cogd_job_queue_wait_seconds_bucket', { le: '1' })).toBe(0);
    expect(valueOf(samples, 'cogd_s3_bytes_total', { direction: 'out' })).toBe(1234);
    expect(valueOf(samples, 'cogd_poll_errors_total', { watch: 'w1' })).toBe(1);
    expect(valueOf(samples, 'cogd_runs_finished_total', { outcome: 'failures' })).toBe(1);
    db.finishRun(run.id, 1, 2);
    expect(valueOf(parsePrometheus(await metrics.text()).samples, 'cogd_jobs')).toBe(0);
    db.close();
  });
});
