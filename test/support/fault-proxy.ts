/**
 * A fault-injecting HTTP proxy on loopback, between cogd and the S3 test server. At a set rate
 * (seeded, so a run is repeatable) it answers 500, 503 or SlowDown, resets the connection before or
 * after the server handled the request, or delays the answer. A rule can also target requests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  'error500' | 'error503' | 'slowdown' | 'reset-before' | 'reset-after' | 'delay' | 'access-denied' | 'fake-ok';

export interface FaultProxyOptions {
  target: string;
  /** Share of requests that get a random fault (0..1). */
  rate: number;
  seed?: number;
  /** Faults picked at random. @defaultValue all but access-denied */
  kinds?: Fault[];
  /** Decides a fault for a request before the random draw (return undefined to fall through). */
  rule?: (method: string, url: string) => Fault | undefined;
}

export interface FaultProxy {
  endpoint: string;
  /** Faults injected so far, by kind. */
  injected: Record<string, number>;
  requests: number;
  setRate(rate: number): void;
  setRule(rule: FaultProxyOptions['rule']): void;
  close(): Promise<void>;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const xmlError = (code: string, message: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = prng(options.seed ?? 42);
  const kinds: Fault[] = options.kinds ?? ['error500', 'error503', 'slowdown', 'reset-before', 'reset-after', 'delay'];
  let rate = options.rate;
  let rule = options.rule;
  const injected: Record<string, number> = {};
  let requests = 0;

  const forward = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    after?: (upstream: http.IncomingMessage) => void,
  ): void => {
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (after !== undefined) {
          answer.resume();
          answer.on('end', () => after(answer));
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };

  const server = http.createServer((req, res) => {
    requests += 1;
    const fault =
      rule?.(req.method ?? 'GET', req.url ?? '/') ??
      (random() < rate ? kinds[Math.floor(random() * kinds.length)] : undefined);
    if (fault === undefined) return forward(req, res);
    injected[fault] = (injected[fault] ?? 0) + 1;
    const reply = (status: number, code: string, message: string): void => {
      req.resume();
      const body = xmlError(code, message);
      res.writeHead(status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      res.end(body);
    };
    switch (fault) {
      case 'error500':
        return reply(500, 'InternalError', 'injected fault');
      case 'error503':
        return reply(503, 'ServiceUnavailable', 'injected fault');
      case 'slowdown':
        return reply(503, 'SlowDown', 'Please reduce your request rate.');
      case 'access-denied':
        return reply(403, 'AccessDenied', 'injected fault');
      case 'fake-ok':
        // Claims success without asking the server: an endpoint that ignores what it should enforce.
        req.resume();
        res.writeHead(200, { etag: '"00000000000000000000000000000000"', 'content-length': 0 });
        return res.end();
      case 'reset-before':
        return req.socket.destroy();
      case 'reset-after':
        // The server does the work; the client never hears back.
        return forward(req, res, () => req.socket.destroy());
      case 'delay':
        setTimeout(() => forward(req, res), 300);
        return undefined;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    injected,
    get requests() {
      return requests;
    },
    setRate: (value) => (rate = value),
    setRule: (value) => (rule = value),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
