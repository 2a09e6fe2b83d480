/**
 * Every name cogd derives from a manifest key or an image key, in one place.
 *
 *   X-raw.csv → X-processing-<TS>.csv → X-processed-<TS>.csv / X-failed-<TS>.csv / X-errors-<TS>.csv
 *
 * A manifest that does not end in `raw.csv` (a pattern such as `*.csv`) keeps its name and gains a
 * hyphen: `orders.csv` → `orders-processing-<TS>.csv`.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

/** The claimed manifest's local copy, in its run directory. */
export const MANIFEST_FILE = 'manifest.csv';

export type ResultKind = 'processing' | 'processed' | 'failed' | 'errors';

/** Names cogd itself writes; never claimed as manifests, whatever the pattern. */
const RESULT_NAME = /-(processing|processed|failed|errors)-\d{8}-\d{6}(-\d+)?\.csv$/;

export function isResultName(key: string): boolean {
  return RESULT_NAME.test(key);
}

/** The part of a manifest key that result names are built on: `a/X-raw.csv` → `a/X-`. */
export function manifestBase(key: string): string {
  if (key.endsWith('raw.csv')) return key.slice(0, -'raw.csv'.length);
  if (/\.csv$/i.test(key)) return `${key.slice(0, -'.csv'.length)}-`;
  return `${key}-`;
}

export function resultKey(base: string, kind: ResultKind, ts: string): string {
  return `${base}${kind}-${ts}.csv`;
}

/** `YYYYMMDD-HHMMSS` in UTC. */
export function timestamp(date: Date): string {
  const iso = date.toISOString(); // 2026-11-21T14:45:03.123Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

/** The JPEG preview sits under the image's key with its extension replaced by `.jpg`. */
export function previewKey(imageKey: string): string {
  return imageKey.replace(/\.tiff?$/i, '.jpg');
}

/** A COG's STAC item sits under its key with the extension replaced by the watch's suffix. */
export function itemKey(imageKey: string, suffix: string): string {
  return imageKey.replace(/\.tiff?$/i, suffix);
}

/**
 * Per-image log names (`<name>.log/.out/.err`) inside one run directory: the base name without its
 * extension, as the reference tool did, and unique within the run — a second key with the same base
 * name gets its manifest line number appended.
 */
export function logNames(rows: ReadonlyArray<{ key: string; line: number }>): Map<number, string> {
  const names = new Map<number, string>();
  const taken = new Set<string>(['post', 'run', 'manifest', 'errors']);
  for (const row of rows) {
    const stem = logStem(row.key);
    let name = taken.has(stem) ? `${stem}-line${row.line}` : stem;
    for (let n = 2; taken.has(name); n += 1) name = `${stem}-line${row.line}-${n}`;
    taken.add(name);
    names.set(row.line, name);
  }
  return names;
}

/**
 * Longest stem of a per-image log name. File names end at 255 bytes on common file systems; the
 * stem leaves room for `-line<N>-<n>` and `.log`. Stems are ASCII, so characters are bytes.
 */
export const MAX_LOG_STEM = 200;

/** The stem of an image's log name: its base name, made safe, and cut with a short hash when long. */
export function logStem(key: string): string {
  const stem =
    path.posix
      .basename(key)
      .replace(/\.tiff?$/i, '')
      .replace(/[^A-Za-z0-9._-]/g, '_') || 'image';
  if (stem.length <= MAX_LOG_STEM) return stem;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10);
  return `${stem.slice(0, MAX_LOG_STEM - hash.length - 1)}-${hash}`;
}

/** Batch names, as HTCondor users know them from the reference tool. */
export function watchBatchName(pattern: string): string {
  return `COG-Pipeline-Crondor-${pattern}`;
}

export function runBatchName(pattern: string): string {
  return `COG-Pipeline-DAG-${pattern}`;
}
