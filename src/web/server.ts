/**
 * The daemon's HTTP server (`cogd start --http`): the status page, its JSON API, `/metrics` and
 * `/healthz` — read-only, on node's own http module (a few routes need no framework).
 *
 *   /                            the batch view of `cogd status`, refreshed by polling /api/status
 *   /runs/ID                     a run and its jobs, filterable by state, paged on the server
 *   /runs/ID/jobs/LINE           one job with the tails of its .log and .err
 *   /api/status                  = `cogd status --json`
 *   /api/runs/ID                 = `cogd status --json ID`, plus `run`: the run's keys, timings, results
 *   /api/runs/ID/jobs?state=&page=   a page of its jobs (the fields of `status --jobs --json`, plus timings)
 *   /api/runs/ID/jobs/LINE       one job and its log tails
 *   /metrics                     Prometheus text format
 *   /healthz                     200 while the daemon's loop runs and its DB answers, else 503
 *
 * Safe by default: anything but GET and HEAD gets 405; a bearer token (`--http-token-file`) is
 * checked in constant time; on a loopback address, a Host header naming another machine is refused
 * (a web page elsewhere cannot read this one through DNS rebinding); every page carries a
 * Content-Security-Policy without inline scripts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildStatus, JOB_STATES, jobOfPage, jobsPage, runDetail, type HomeHolder } from '../state/report.js';
import { isLoopback, splitAddress } from '../config/parse.js';
import { CogdError, describeError } from '../errors.js';
import type { Log } from '../log/index.js';
import type { StateDB } from '../state/db.js';
import type { JobState } from '../types.js';
import { tailOf } from './log-tail.js';
import type { Metrics } from './metrics.js';
import { jobPage, messagePage, runPage, statusPage } from './pages.js';

export interface WebOptions {
  /** `host:port` as `--http` takes it; port 0 lets the system pick. */
  address: string;
  db: StateDB;
  home: string;
  /** The home's `logs/`: job log tails are read from there only. */
  logsDir: string;
  /** Who holds the home: this daemon. */
  holder: HomeHolder;
  metrics: Metrics;
  /** Whether the daemon's loop is alive (its last tick is recent). */
  alive: () => boolean;
  log: Log;
  /** The bearer token every request must carry; undefined: none (loopback only). */
  token?: string | undefined;
  /** Leave /metrics and /healthz open without the token. @defaultValue false */
  openMetrics?: boolean;
}

export interface WebServer {
  /** `http://127.0.0.1:9464/`: where it listens (the port the system picked, for port 0). */
  url: string;
  close(): Promise<void>;
}

const ASSETS = new URL('../../web/', import.meta.url);

/** The page's script and style: read once, at start. */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of [
    ['app.js', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
  ] as const) {
    assets.set(`/static/${name}`, { type, body: readFileSync(new URL(name, ASSETS)) });
  }
  return assets;
}

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

/** A request the server answers with an error status and a message. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Compares in constant time (hashes first, so lengths leak nothing either). */
function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

const positiveInt = (text: string | undefined, what: string): number => {
  if (text === undefined || !/^\d{1,9}$/.test(text) || Number(text) < 1) {
    throw new HttpError(400, `${what} must be a whole number of at least 1, got "${text ?? ''}"`);
  }
  return Number(text);
};

/** Host names that mean this machine, accepted in the Host header of a loopback server. */
function isLocalHost(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false;
  const host = hostHeader.startsWith('[')
    ? hostHeader.slice(0, hostHeader.indexOf(']') + 1)
    : hostHeader.split(':')[0]!;
  return isLoopback(host.replace(/^\[|\]$/g, ''));
}

export async function startWebServer(options: WebOptions): Promise<WebServer> {
  const { db, home, holder, metrics, log } = options;
  const assets = loadAssets();
  const { host, port } = splitAddress(options.address);
  const loopback = isLoopback(host);
  const open = new Set(options.openMetrics === true ? ['/metrics', '/healthz'] : []);

  const json = (body: unknown): { status: number; type: string; body: string } => ({
    status: 200,
    type: 'application/json; charset=utf-8',
    body: `${JSON.stringify(body)}\n`,
  });
  const html = (body: string, status = 200) => ({ status, type: 'text/html; charset=utf-8', body });

  const runOf = (id: string) => {
    const run = db.run(positiveInt(id, 'the run id'));
    if (run === undefined) throw new HttpError(404, `no run ${id} in ${home}`);
    return run;
  };

  const jobOf = (runId: string, line: string) => {
    const run = runOf(runId);
    const row = db.jobRow(run.id, positiveInt(line, 'the manifest line'));
    if (row === undefined) throw new HttpError(404, `run ${run.id} has no job on manifest line ${line}`);
    return { run, row, job: jobOfPage(row, run.createdAt) };
  };

  const tailsOf = async (run: { runDir: string }, logName: string | null) => {
    if (logName === null) return {};
    const [logTail, errTail] = await Promise.all([
      tailOf(options.logsDir, run.runDir, logName, 'log'),
      tailOf(options.logsDir, run.runDir, logName, 'err'),
    ]);
    return { ...(logTail === undefined ? {} : { log: logTail }), ...(errTail === undefined ? {} : { err: errTail }) };
  };

  const stateOf = (value: string | null): JobState | undefined => {
    if (value === null || value === '' || value === 'all') return undefined;
    if (!(JOB_STATES as readonly string[]).includes(value)) {
      throw new HttpError(400, `state "${value}" is unknown: use one of ${JOB_STATES.join(', ')} (or leave it out)`);
    }
    return value as JobState;
  };

  /** The answer to one GET. */
  async function route(url: URL): Promise<{ status: number; type: string; body: string | Buffer }> {
    const parts = url.pathname.split('/').slice(1);
    const p = url.pathname;
    if (p === '/') return html(statusPage());
    if (p === '/healthz') {
      let dbOk: boolean;
      try {
        dbOk = db.ping();
      } catch {
        dbOk = false;
      }
      const ok = dbOk && options.alive();
      return { status: ok ? 200 : 503, type: 'text/plain; charset=utf-8', body: ok ? 'ok\n' : 'unhealthy\n' };
    }
    // Browsers ask for one on every page: nothing to show, and no 404 in their console.
    if (p === '/favicon.ico') return { status: 204, type: 'image/x-icon', body: '' };
    if (p === '/metrics') return { status: 200, type: metrics.contentType, body: await metrics.text() };
    const asset = assets.get(p);
    if (asset !== undefined) return { status: 200, type: asset.type, body: asset.body };
    if (p === '/api/status') return json(buildStatus(db, home, holder));
    // /runs/ID, /runs/ID/jobs/LINE, /api/runs/ID, /api/runs/ID/jobs, /api/runs/ID/jobs/LINE
    const api = parts[0] === 'api';
    const rest = api ? parts.slice(1) : parts;
    if (rest[0] === 'runs' && rest[1] !== undefined) {
      if (rest.length === 2) {
        const run = runOf(rest[1]);
        if (!api) return html(runPage(run.id));
        return json({ ...buildStatus(db, home, holder, { filter: String(run.id) }), run: runDetail(run) });
      }
      if (rest[2] === 'jobs' && rest.length === 3 && api) {
        const run = runOf(rest[1]);
        const pageText = url.searchParams.get('page');
        const page = pageText === null || pageText === '' ? 1 : positiveInt(pageText, 'page');
        return json(jobsPage(db, run.id, { state: stateOf(url.searchParams.get('state')), page }));
      }
      if (rest[2] === 'jobs' && rest.length === 4 && rest[3] !== undefined) {
        const { run, row, job } = jobOf(rest[1], rest[3]);
        const tails = await tailsOf(run, row.logName);
        if (api) return json({ job, logs: tails });
        return html(jobPage(job, `s3://${run.inputBucket}/${run.manifestKey}`, tails));
      }
    }
    throw new HttpError(404, `nothing at ${p}`);
  }

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://cogd.invalid');
    const wantsJson = url.pathname.startsWith('/api/') || url.pathname === '/metrics';
    let answer: { status: number; type: string; body: string | Buffer };
    let extra: Record<string, string> = {};
    try {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        throw new HttpError(405, `${request.method ?? '?'} is not allowed: this server is read-only`, {
          Allow: 'GET, HEAD',
        });
      }
      if (loopback && !isLocalHost(request.headers.host)) {
        throw new HttpError(421, 'this server answers requests for this machine only (Host must be a loopback name)');
      }
      if (options.token !== undefined && !open.has(url.pathname)) {
        const given = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1]?.trim() ?? '';
        if (!tokenMatches(given, options.token)) {
          throw new HttpError(401, 'a bearer token is required (Authorization: Bearer …)', {
            'WWW-Authenticate': 'Bearer realm="cogd"',
          });
        }
      }
      answer = await route(url);
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      if (error instanceof HttpError) extra = error.headers;
      else log.error('Http:Failed', { path: url.pathname, reason: describeError(error) });
      // A 500 says nothing of the failure to the client: the daemon's log has it.
      const message = error instanceof HttpError ? error.message : 'internal error (see the daemon log)';
      answer = wantsJson
        ? { status, type: 'application/json; charset=utf-8', body: `${JSON.stringify({ error: message })}\n` }
        : html(messagePage(status, message), status);
    }
    const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
    response.writeHead(answer.status, {
      ...SECURITY_HEADERS,
      ...extra,
      'Content-Type': answer.type,
      'Content-Length': String(body.length),
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  const server = http.createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log.error('Http:Failed', { path: request.url, reason: describeError(error) });
      response.destroy();
    });
  });
  // Slow or idle clients are not kept for long: a status page needs nothing long-lived.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const why =
        error.code === 'EADDRINUSE'
          ? 'the address is in use (another cogd, or another program, listens there)'
          : error.code === 'EADDRNOTAVAIL'
            ? 'no interface of this machine has that address'
            : error.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : error.message;
      reject(
        new CogdError('HttpListen', `cannot serve the status page on ${options.address}: ${why}`, {
          hint: 'pick another address with --http ADDR:PORT, or --no-http',
          cause: error,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `http://${shownHost}:${bound.port}/`;
  log.info('Http:Listening', { url });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
