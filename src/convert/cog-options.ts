/**
 * The COG creation options GDAL itself lists (`gdalinfo --format COG`), so a `--co KEY=VALUE` with
 * a typo is a usage error at start, not an option GDAL silently ignores on every image.
 */
import { execFileSync } from 'node:child_process';
import { UsageError } from '../errors.js';

export interface CogOption {
  name: string;
  type: string;
  /** Allowed values (and their aliases) of a `string-select` option. */
  values?: string[];
}

/** Options cogd sets itself from the profile: given with `--co`, they would contradict it. */
const OWNED = new Map([['COMPRESS', 'choose the codec with --profile (lzw, deflate, zstd, webp, jpeg, lerc, auto)']]);

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours): how far a typo is. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** Reads the `<CreationOptionList>` XML GDAL prints for a driver. */
export function parseCreationOptions(text: string): CogOption[] {
  const options: CogOption[] = [];
  for (const match of text.matchAll(/<Option\s([^>]*?)(\/>|>([\s\S]*?)<\/Option>)/g)) {
    const attrs = match[1] ?? '';
    const name = /name="([^"]+)"/.exec(attrs)?.[1];
    if (name === undefined) continue;
    const option: CogOption = { name: name.toUpperCase(), type: /type="([^"]+)"/.exec(attrs)?.[1] ?? 'string' };
    const body = match[3];
    if (body !== undefined) {
      const values: string[] = [];
      for (const value of body.matchAll(/<Value(?:\s+alias="([^"]+)")?\s*>([^<]*)<\/Value>/g)) {
        values.push((value[2] ?? '').toUpperCase());
        if (value[1] !== undefined) values.push(value[1].toUpperCase());
      }
      if (values.length > 0) option.values = values;
    }
    options.push(option);
  }
  return options;
}

let listed: CogOption[] | null | undefined;

/** GDAL's COG options on this machine; null where GDAL is not installed (an HTCondor access point). */
export function gdalCogOptions(): CogOption[] | null {
  if (listed !== undefined) return listed;
  try {
    listed = parseCreationOptions(
      execFileSync('gdalinfo', ['--format', 'COG'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 30_000,
      }),
    );
  } catch {
    listed = null;
  }
  return listed;
}

/**
 * Checks one `KEY=VALUE` against GDAL's list and returns it as `KEY=VALUE` with the key upper-case.
 * Without GDAL here, only the form is checked (the execute nodes' GDAL reports the rest).
 */
export function checkCreationOption(text: string, flag: string, options = gdalCogOptions()): string {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(text.trim());
  if (match === null)
    throw new UsageError(`${flag} "${text}" is not KEY=VALUE`, 'for example --co LEVEL=9 or --co BLOCKSIZE=256');
  const key = match[1]!.toUpperCase();
  const value = match[2]!;
  const owned = OWNED.get(key);
  if (owned !== undefined) throw new UsageError(`${flag} ${key} is set by the profile`, owned);
  if (options === null) return `${key}=${value}`;
  const option = options.find((o) => o.name === key);
  if (option === undefined) {
    const near = options.filter((o) => distance(o.name, key) <= 2).map((o) => o.name);
    throw new UsageError(
      `${flag} ${key} is not a creation option of GDAL's COG driver`,
      near.length > 0 ? `did you mean ${near.slice(0, 3).join(' or ')}?` : `see \`gdalinfo --format COG\``,
    );
  }
  if (option.values !== undefined && !option.values.includes(value.toUpperCase())) {
    throw new UsageError(`${flag} ${key}=${value}: GDAL's COG driver takes ${option.values.join(', ')}`);
  }
  if (option.type === 'int' && !/^-?\d+$/.test(value))
    throw new UsageError(`${flag} ${key}=${value}: a whole number is expected`);
  if (option.type === 'float' && !Number.isFinite(Number(value)))
    throw new UsageError(`${flag} ${key}=${value}: a number is expected`);
  return `${key}=${value}`;
}
