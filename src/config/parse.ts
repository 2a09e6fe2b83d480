/**
 * Parsers of option values: each takes the text a user typed and the flag it came with, and
 * returns the value or throws a UsageError (exit code 2) that names the flag, what it got and what
 * is allowed.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { validate as validateCron } from 'node-cron';
import { UsageError } from '../errors.js';

export type Parser<T> = (raw: string, flag: string) => T;

/** A whole number of at least `min` (and at most `max`). */
export const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
  (raw, flag) => {
    if (!/^\d+$/.test(raw.trim())) throw new UsageError(`${flag} must be a whole number, got "${raw}"`);
    const n = Number(raw.trim());
    if (n < min) throw new UsageError(`${flag} must be at least ${min}, got ${n}`);
    if (n > max) throw new UsageError(`${flag} must be at most ${max}, got ${n}`);
    return n;
  };

/** Seconds (a decimal number, at least `min`), returned in milliseconds. */
export const seconds =
  (min = 0): Parser<number> =>
  (raw, flag) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n))
      throw new UsageError(`${flag} must be a number of seconds, got "${raw}"`);
    if (n < min) throw new UsageError(`${flag} must be at least ${min} seconds, got ${n}`);
    return Math.round(n * 1000);
  };

/** One of a fixed set of words. */
export const choice =
  <T extends string>(choices: readonly T[]): Parser<T> =>
  (raw, flag) => {
    if (!(choices as readonly string[]).includes(raw))
      throw new UsageError(`${flag} "${raw}" is unknown`, `use ${choices.join(', ')}`);
    return raw as T;
  };

/** Manifest line numbers: `3,7` or `3-9,12` (each at least 1), sorted, without repeats. */
export const lineList: Parser<number[]> = (raw, flag) => {
  const lines = new Set<number>();
  for (const part of raw.split(',')) {
    const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (match === null) throw new UsageError(`${flag} must list line numbers like 3,7 or 3-9, got "${raw}"`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (from < 1 || to < from)
      throw new UsageError(`${flag}: "${part.trim()}" is not a line or a rising range of lines`);
    if (to - from > 10_000_000) throw new UsageError(`${flag}: the range "${part.trim()}" is too long`);
    for (let line = from; line <= to; line += 1) lines.add(line);
  }
  return [...lines].sort((a, b) => a - b);
};

/** A flag without a value: present means true (its `--no-` form means false). */
export const flag: Parser<boolean> = () => true;

/** Any text, taken as given. */
export const text: Parser<string> = (raw) => raw;

/** A path, made absolute against the current directory. */
export const file: Parser<string> = (raw, flagName) => {
  if (raw.trim() === '') throw new UsageError(`${flagName} is empty`, 'give a path');
  return path.resolve(raw);
};

/** A path to a file that exists now. */
export const existingFile =
  (hint: string): Parser<string> =>
  (raw, flagName) => {
    const resolved = file(raw, flagName);
    if (!existsSync(resolved)) throw new UsageError(`${flagName} ${raw}: no such file`, hint);
    return resolved;
  };

/** Text that can go into an HTCondor submit description: not empty, no quote, no newline. */
export const submitValue: Parser<string> = (raw, flagName) => {
  if (raw.trim() === '' || /[\n\r"]/.test(raw))
    throw new UsageError(`${flagName} "${raw}" is empty or contains a quote or newline`);
  return raw.trim();
};

/** An HTCondor quantity such as 1GB, 512MB or 2048 (MB for memory, KB for disk, as condor_submit reads bare numbers). */
export const quantity: Parser<string> = (raw, flagName) => {
  if (!/^\d+(\.\d+)?\s*([KMGT]i?B?)?$/i.test(raw.trim()))
    throw new UsageError(`${flagName} "${raw}" is not a size`, 'for example 1GB, 512MB or 2048');
  return raw.trim();
};

/** A cron expression: 5 fields, or 6 with seconds. */
export const cron: Parser<string> = (raw, flagName) => {
  if (!validateCron(raw))
    throw new UsageError(`${flagName} "${raw}" is not a cron expression`, 'for example "*/15 * * * *"');
  return raw;
};

/** S3 bucket naming rules (the strict subset every implementation accepts). */
export const bucket: Parser<string> = (raw, flagName) => {
  if (raw === '') throw new UsageError(`${flagName} is required`, `pass ${flagName} NAME`);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw) || raw.includes('..')) {
    throw new UsageError(
      `${flagName} "${raw}" is not a valid bucket name`,
      'bucket names are 3-63 characters of lower-case letters, digits, dots and hyphens',
    );
  }
  return raw;
};

/** `-e host` means https; a URL is taken as given. */
export const endpoint: Parser<string> = (raw, flagName) => {
  const trimmed = raw.trim();
  if (trimmed === '')
    throw new UsageError(`${flagName} is empty`, 'give a host name or a URL such as http://127.0.0.1:9000');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(
      `${flagName} "${raw}" is not a host name or URL`,
      'for example: s3.example.org or http://127.0.0.1:9000',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${flagName} "${raw}" uses ${url.protocol}; only http and https are supported`);
  }
  return withScheme.replace(/\/+$/, '');
};

/** A glob of manifest keys. */
export const pattern: Parser<string> = (raw, flagName) => {
  if (raw.trim() === '') throw new UsageError(`${flagName} is required`, 'for example: -p "*raw.csv"');
  return raw;
};

/** A decimal number of at least `min`. */
export const number =
  (min: number): Parser<number> =>
  (raw, flagName) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flagName} must be a number, got "${raw}"`);
    if (n < min) throw new UsageError(`${flagName} must be at least ${min}, got ${n}`);
    return n;
  };

/** A colour: a name (white, black, gray), #rrggbb, or r,g,b with each 0-255. */
export const colour: Parser<string> = (raw, flagName) => {
  const value = raw.trim().toLowerCase();
  if (['white', 'black', 'gray', 'grey'].includes(value) || /^#[0-9a-f]{6}$/.test(value)) return value;
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 3 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return parts.join(',');
  throw new UsageError(`${flagName} "${raw}" is not a colour`, 'use white, black, gray, #rrggbb or r,g,b (0-255 each)');
};

/** One or more values given by repeating the flag: each is read by `each`. */
export const repeated =
  <T>(each: Parser<T>): Parser<T[]> =>
  (raw, flagName) =>
    (JSON.parse(raw) as string[]).map((value) => each(value, flagName));

/** A Slurm partition or account name. */
export const slurmName: Parser<string> = (raw, flagName) => {
  if (!/^[A-Za-z0-9_.+-]+$/.test(raw.trim()))
    throw new UsageError(
      `${flagName} "${raw}" is not a Slurm partition or account name`,
      'letters, digits and _ . + - only; see sinfo -s (partitions) or sacctmgr show assoc (accounts)',
    );
  return raw.trim();
};

/** A Slurm memory size for --mem: megabytes, or a number with K, M, G or T (2G, 512M, 4096). */
export const slurmMemory: Parser<string> = (raw, flagName) => {
  const value = raw.trim().toUpperCase();
  if (!/^\d+[KMGT]?$/.test(value))
    throw new UsageError(`${flagName} "${raw}" is not a Slurm memory size`, 'for example 2G, 512M or 4096 (megabytes)');
  return value;
};

/** sbatch options cogd sets itself: a user value would break how cogd finds and follows its jobs. */
const SBATCH_OWN = [
  ['--array', '-a'],
  ['--parsable'],
  ['--job-name', '-J'],
  ['--comment'],
  ['--output', '-o'],
  ['--error', '-e'],
  ['--chdir', '-D'],
  ['--export'],
  ['--wrap'],
  ['--wait', '-W'],
  ['--test-only'],
  ['--ntasks', '-n'],
];

/** One extra sbatch option (`--qos=high`, `--constraint=ssd`): a single argv word, never through a shell. */
export const sbatchArg: Parser<string> = (raw, flagName) => {
  if (!raw.startsWith('-') || /[\n\r\0]/.test(raw))
    throw new UsageError(
      `${flagName} "${raw}" is not an sbatch option`,
      `give one option per ${flagName}, with its value after "=": ${flagName}=--qos=high`,
    );
  const name = raw.split('=')[0]!;
  const own = SBATCH_OWN.find((names) =>
    names.some((n) => name === n || (n.length === 2 && name.startsWith(n) && !name.startsWith('--'))),
  );
  if (own !== undefined)
    throw new UsageError(
      `${flagName} "${raw}": cogd sets ${own[0]} itself (it names, follows and logs its jobs by it)`,
    );
  return raw;
};

/** A file-name suffix of a JSON document: `.json`, `.stac.json`. */
export const suffix: Parser<string> = (raw, flagName) => {
  if (!/^[\w.-]*\.json$/.test(raw) || raw.includes('/')) {
    throw new UsageError(`${flagName} "${raw}" is not a suffix ending in .json`, 'for example .json or .stac.json');
  }
  return raw;
};

/** An object key: relative, no empty, "." or ".." segments. */
export const objectKey: Parser<string> = (raw, flagName) => {
  const segments = raw.split('/');
  if (raw === '' || raw.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new UsageError(
      `${flagName} "${raw}" is not an object key`,
      'for example collection.json or stac/collection.json',
    );
  }
  return raw;
};

/** Unquoted, these mean something to a shell only; cogd runs hooks without one. */
const SHELL_ONLY = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`']);

/**
 * A command line read into a program and its arguments, without a shell: words are split on white
 * space; '…' keeps everything inside as it is, "…" too but for \" and \\, and a backslash outside
 * quotes keeps the next character. Unquoted | & ; < > ( ) $ ` are refused (no pipes, redirections,
 * variables or substitutions: put those in a script). A program named by a path is made absolute;
 * a bare name is looked up on PATH when the command is run. Empty: no command.
 */
export const command: Parser<string[]> = (raw, flagName) => {
  const words: string[] = [];
  let word = '';
  /** Whether a word is open (a quoted empty word is a word). */
  let open = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < raw.length; i += 1) {
    const c = raw[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && (raw[i + 1] === '"' || raw[i + 1] === '\\')) word += raw[(i += 1)]!;
      else word += c;
    } else if (/\s/.test(c)) {
      if (open) words.push(word);
      [word, open] = ['', false];
    } else if (c === "'" || c === '"') {
      [quote, open] = [c, true];
    } else if (c === '\\') {
      if (i + 1 >= raw.length) throw new UsageError(`${flagName} "${raw}" ends in a lone backslash`);
      [word, open] = [word + raw[(i += 1)]!, true];
    } else if (SHELL_ONLY.has(c)) {
      throw new UsageError(
        `${flagName} "${raw}": ${c} means something to a shell only, and the command runs without one`,
        `quote it to pass it as an argument, or put the command in a script and give the script`,
      );
    } else {
      [word, open] = [word + c, true];
    }
  }
  if (quote !== undefined) throw new UsageError(`${flagName} "${raw}" has an unterminated ${quote} quote`);
  if (open) words.push(word);
  if (words[0] === '') throw new UsageError(`${flagName} "${raw}" names no program`);
  if (words[0]?.includes('/') === true) words[0] = path.resolve(words[0]);
  return words;
};

/** An http or https URL; empty: none. */
export const httpUrl: Parser<string | null> = (raw, flagName) => {
  if (raw.trim() === '') return null;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(`${flagName} is not a URL`, 'for example https://hooks.example.org/cogd');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`${flagName} uses ${url.protocol}; only http and https are supported`);
  return url.href;
};

/**
 * Where to listen: `host:port` (a name, an IPv4 address, or an IPv6 one in brackets: `[::1]:9464`);
 * port 0 lets the system pick one. Returned as given, checked.
 */
export const listenAddress: Parser<string | false> = (raw, flagName) => {
  const value = raw.trim();
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) {
    throw new UsageError(
      `${flagName} "${raw}" is not an address and port`,
      'for example 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 (with --http-token-file)',
    );
  }
  return value;
};

/** The host and port of a listen address made by `listenAddress`. */
export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

/** Whether a host is this machine's loopback (only this machine can reach it). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
