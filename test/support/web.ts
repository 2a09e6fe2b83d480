/**
 * A real detached daemon serving its status page on loopback, with one run in progress: three
 * images held at the gdal_translate gate (released by the test), one row naming a missing image and
 * one whose key is an HTML tag (both fail at once with a reason).
 */
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { baseArgs, cogd, freshBuckets, makeTiff, put, putFile, ROOT, status, tempDir, until } from './helpers.js';

const GATED = path.join(ROOT, 'test/fixtures/gated-gdal');

export const HOSTILE_KEY = '<img src=x onerror=alert(1)>.tif';

export interface WebDaemon {
  home: string;
  /** `http://127.0.0.1:PORT/` */
  url: string;
  buckets: { input: string; output: string };
  /** Lets the held conversions go on. */
  release(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the daemon with `--http 127.0.0.1:0` and a manifest of five rows; resolves once it is planned. */
export async function startWebDaemon(extra: string[] = []): Promise<WebDaemon> {
  const home = await tempDir('cogd-web-');
  const gate = path.join(home, 'gate');
  const buckets = await freshBuckets();
  for (const name of ['a', 'b', 'c']) {
    await putFile(buckets.input, `img/${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
  }
  await put(
    buckets.input,
    'web-raw.csv',
    `img/a.tif,1\nimg/b.tif,1\nimg/missing.tif,1\n${HOSTILE_KEY},1\nimg/c.tif,1\n`,
  );
  const args = await baseArgs(buckets, home);
  // Private key files, as cogd asks (else every page warns about them).
  await Promise.all(['access.key', 'secret.key'].map((name) => chmod(path.join(home, name), 0o600)));
  const env = { PATH: `${GATED}:${process.env['PATH'] ?? ''}`, COGD_TEST_GDAL_GATE: gate };
  const started = await cogd(
    ['start', ...args, '--schedule', '0 0 1 1 *', '--retries', '0', '--http', '127.0.0.1:0', ...extra],
    { env },
  );
  expect(started.exitCode, started.stderr).toBe(0);
  const url = /^status page: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(started.stdout)?.[1];
  expect(url, started.stdout).toBeDefined();
  // The two bad rows fail at once; the three images wait at the gate.
  await until(
    'the bad rows to fail',
    async () => {
      const run = (await status(home)).runs[0];
      return run !== undefined && run.counts['failed'] === 2 ? run : undefined;
    },
    90,
  );
  return {
    home,
    url: url!,
    buckets,
    release: () => writeFile(gate, ''),
    stop: async () => {
      await writeFile(gate, '');
      await cogd(['stop', '--home', home]);
    },
  };
}

/** One sample of Prometheus text: its name, labels and value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (\\S+)(?: -?\\d+)?$`);

/**
 * Parses Prometheus text exposition format 0.0.4 strictly: every line is a HELP, a TYPE or a
 * sample of a family declared by a TYPE line before it; values are numbers. Throws on anything else.
 */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]!))
          throw new Error(`line ${index + 1}: unknown type ${meta[3]}`);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`line ${index + 1} is not a Prometheus sample: ${line}`);
    const name = match[1]!;
    const family = [name, name.replace(/_(bucket|sum|count|total|created)$/, '')].find((n) => types.has(n));
    if (family === undefined) throw new Error(`line ${index + 1}: ${name} has no TYPE line before it`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const raw = match[3]!;
    // As Prometheus reads values (Go's ParseFloat): Inf and NaN in any case (prom-client writes "Nan").
    const special = { '+inf': Infinity, inf: Infinity, '-inf': -Infinity, nan: NaN } as Record<string, number>;
    const value =
      special[raw.toLowerCase()] ?? (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw) ? Number(raw) : undefined);
    if (value === undefined) throw new Error(`line ${index + 1}: "${raw}" is not a number`);
    samples.push({ name, labels, value });
  }
  return { samples, types };
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
