/**
 * A dry run: what a poll would claim and, for every row of each manifest, the keys it would write
 * or why it would fail. Made from the parts the pipeline itself uses — the listing and its
 * verdicts (poll.ts), the binary-content check (claim.ts), parsing and planning (parse.ts,
 * plan.ts), the names (names.ts), the TIFF header reader and the limits (convert/) — with reads
 * only: LIST, HEAD and ranged GETs. Nothing is written to S3, the state DB or the home.
 *
 * Shared by `cogd poll --dry-run` (the watch's bucket) and `cogd plan FILE.csv` (a local manifest).
 */
import pLimit from 'p-limit';
import { checkLimits, type Limits } from '../convert/rules.js';
import { hasTiffSignature, readTiffHeaderWith, type ReadAt } from '../convert/tiff-header.js';
import { planManifestBytes } from '../dag/plan.js';
import { describeError, PermanentError } from '../errors.js';
import { condorUnsafeKey } from '../executors/condor/render.js';
import { itemKey, manifestBase, previewKey, resultKey } from '../manifest/names.js';
import type { Storage } from '../storage/s3.js';
import type { Watch } from '../types.js';
import { claimMarkerKey, notText } from './claim.js';
import { listMatching, type ClaimHistory } from './poll.js';

/** How a row's outputs are named, and which keys a watch can carry. */
export interface Naming {
  /** The output bucket, when known (`cogd plan` without one lists the keys alone). */
  outputBucket: string | undefined;
  /** The STAC item's suffix where items are written (STAC on, local executor); undefined: none. */
  itemSuffix: string | undefined;
  /** Rows travel through HTCondor item data, which some keys cannot. */
  condor: boolean;
}

export interface RowVerdict {
  line: number;
  /** The row as written (bytes that are not UTF-8 shown as U+FFFD). */
  row: string;
  /** The image key; null for a row rejected before it names one. */
  key: string | null;
  declaredBands: number | null;
  verdict: 'convert' | 'fail';
  /** What would be written to the output bucket: the COG, the JPEG preview, the STAC item. */
  outputs: string[];
  /** Why the row would fail. */
  reason: string | null;
  /** What the run would log without failing the row, or what the dry run could not check. */
  warning: string | null;
}

export interface ManifestVerdict {
  /** `s3://bucket/key`, or the local file. */
  source: string;
  /** The object's key, or the local file's name. */
  key: string;
  /**
   * claim: it would be claimed (and, with `reason`, rejected whole); skip: it is no manifest (binary
   * content) and would be left untouched; not-claimed: cogd would not touch it (`reason` says why).
   */
  verdict: 'claim' | 'skip' | 'not-claimed';
  reason: string | null;
  /** The result files the run would write next to it (`<TS>` is the claim's time). */
  results: string[];
  rows: RowVerdict[];
}

export interface Totals {
  /** Manifests that would be claimed. */
  manifests: number;
  rows: number;
  convert: number;
  fail: number;
  /** Rows that would convert with a warning. */
  warnings: number;
  /** Claimed manifests rejected whole (empty, not CSV). */
  rejected: number;
  /** Matching objects that would not be claimed (skipped ones included). */
  notClaimed: number;
}

export interface DryRunReport {
  /** What was checked and how: one line each, said before the verdicts. */
  notes: string[];
  manifests: ManifestVerdict[];
  totals: Totals;
}

/** The keys a row's image would be written under in the output bucket. */
export function outputKeys(key: string, naming: Naming): string[] {
  const keys = [key, previewKey(key)];
  if (naming.itemSuffix !== undefined) keys.push(itemKey(key, naming.itemSuffix));
  return keys;
}

/** The result files of a claimed manifest, `<TS>` standing for the claim's time. */
export function resultKeys(manifestKey: string): string[] {
  const base = manifestBase(manifestKey);
  return (['processing', 'processed', 'failed', 'errors'] as const).map((kind) => resultKey(base, kind, '<TS>'));
}

/**
 * The verdict of every row from the manifest's bytes alone — validation, duplicates, preview
 * clashes, keys HTCondor cannot carry — or the reason the whole manifest would be rejected.
 */
export function rowVerdicts(bytes: Buffer, naming: Naming): { rows: RowVerdict[] } | { error: string } {
  const plan = planManifestBytes(bytes);
  if (plan.error !== null) return { error: plan.error };
  return {
    rows: plan.jobs.map((job): RowVerdict => {
      const row = typeof job.raw === 'string' ? job.raw : job.raw.toString('utf8');
      const base = { line: job.line, row, key: job.imageKey, declaredBands: job.bands, warning: null };
      if (job.imageKey === null) return { ...base, verdict: 'fail', outputs: [], reason: job.error ?? 'rejected' };
      if (naming.condor) {
        for (const key of [job.imageKey, previewKey(job.imageKey)]) {
          const unsafe = condorUnsafeKey(key);
          if (unsafe !== undefined) return { ...base, verdict: 'fail', outputs: [], reason: `${key}: ${unsafe}` };
        }
      }
      return { ...base, verdict: 'convert', outputs: outputKeys(job.imageKey, naming), reason: null };
    }),
  };
}

/** Bytes read per ranged GET of an image's header; a plain GeoTIFF's first IFD lies in the first. */
const HEADER_BLOCK = 64 * 1024;
/** Ranged GETs per image at most: a header spread wider is left to GDAL. */
const HEADER_READS = 8;

/** readTiffHeaderWith's reader over an S3 object: ranged GETs of 64 KiB blocks, each read once. */
export function rangedReader(storage: Storage, bucket: string, key: string, size: number): ReadAt {
  const blocks = new Map<number, Promise<Buffer>>();
  let whole: Buffer | undefined;
  const block = (index: number): Promise<Buffer> => {
    let found = blocks.get(index);
    if (found === undefined) {
      if (blocks.size >= HEADER_READS)
        throw new Error(`the header of ${key} is spread over more than ${HEADER_READS} blocks`);
      const start = index * HEADER_BLOCK;
      found = storage.getRange(bucket, key, start, start + HEADER_BLOCK - 1).then((bytes) => {
        const got = bytes ?? Buffer.alloc(0);
        // An endpoint that ignores Range sends the whole object: keep it and read from it.
        if (got.length > HEADER_BLOCK) whole = got;
        return got;
      });
      blocks.set(index, found);
    }
    return found;
  };
  // A function, not the variable: TypeScript cannot see `block` set it across an await.
  const wholeObject = (): Buffer | undefined => whole;
  return async (offset, length) => {
    const end = Math.min(offset + length, size);
    if (offset >= end) return Buffer.alloc(0);
    const first = Math.floor(offset / HEADER_BLOCK);
    const parts: Buffer[] = [];
    for (let i = first; i <= Math.floor((end - 1) / HEADER_BLOCK); i += 1) {
      const all = wholeObject();
      if (all !== undefined) return all.subarray(offset, end);
      parts.push(await block(i));
    }
    const all = wholeObject();
    if (all !== undefined) return all.subarray(offset, end);
    const from = offset - first * HEADER_BLOCK;
    return Buffer.concat(parts).subarray(from, from + (end - offset));
  };
}

/**
 * What the input bucket says of one row's image: missing (HEAD), not a TIFF, over the home's limits
 * (the header the pipeline reads before GDAL runs), or a band count other than the manifest's
 * (the file decides, as in a real run: a warning).
 */
export async function checkImage(
  storage: Storage,
  bucket: string,
  row: RowVerdict & { key: string },
  limits: Limits,
): Promise<RowVerdict> {
  const where = `s3://${bucket}/${row.key}`;
  const fail = (reason: string): RowVerdict => ({ ...row, verdict: 'fail', outputs: [], reason });
  // What a run would fail the row for (no such key, access denied) is a verdict; anything else —
  // S3 unreachable after the retries — ends the dry run: it could not say.
  const failOn = (error: unknown): RowVerdict => {
    if (error instanceof PermanentError) return fail(describeError(error));
    throw error;
  };
  let head;
  try {
    head = await storage.head(bucket, row.key);
  } catch (error) {
    return failOn(error);
  }
  if (head === undefined)
    return fail(
      describeError(
        new PermanentError('NoSuchKey', `the image ${where} does not exist`, { hint: 'check the key in the manifest' }),
      ),
    );
  const read = rangedReader(storage, bucket, row.key, head.size);
  let start: Buffer;
  try {
    start = await read(0, 16);
  } catch (error) {
    return failOn(error);
  }
  if (!hasTiffSignature(start))
    return fail(`not a readable TIFF: ${where} (${head.size} bytes) does not begin with a TIFF header`);
  const header = await readTiffHeaderWith(read).catch(() => undefined);
  if (header === undefined) {
    return {
      ...row,
      warning:
        'the dry run could not read this TIFF header (GDAL inspects it when converting): band count and limits not checked',
    };
  }
  try {
    checkLimits(header, limits);
  } catch (error) {
    return fail(describeError(error));
  }
  const bands = header.bands.length;
  if (row.declaredBands !== null && bands !== row.declaredBands) {
    return {
      ...row,
      warning: `the manifest declares ${row.declaredBands} band${row.declaredBands === 1 ? '' : 's'}, the file has ${bands}; the file's ${bands} would be used`,
    };
  }
  return row;
}

/** checkImage for every row that would convert, `concurrency` at a time; the others as they are. */
export async function checkImages(
  storage: Storage,
  bucket: string,
  rows: RowVerdict[],
  limits: Limits,
  concurrency: number,
): Promise<RowVerdict[]> {
  const limit = pLimit(concurrency);
  return Promise.all(
    rows.map((row) =>
      row.verdict === 'convert' && row.key !== null
        ? limit(() => checkImage(storage, bucket, { ...row, key: row.key! }, limits))
        : Promise.resolve(row),
    ),
  );
}

export interface BucketDryRun {
  storage: Storage;
  /** What the home's state DB knows; undefined where there is none. */
  history: ClaimHistory | undefined;
  watch: Pick<Watch, 'pattern' | 'inputBucket'>;
  naming: Naming;
  limits: Limits;
  /** S3 requests at once. */
  concurrency: number;
}

const NOT_CLAIMED: Record<'not-csv' | 'result', string> = {
  'not-csv': 'not a .csv object (cogd claims nothing else, whatever the pattern)',
  result: "one of cogd's own result files",
};

/** The verdict of every object the watch's pattern matches in its input bucket, in listing order. */
export async function dryRunBucket(options: BucketDryRun): Promise<ManifestVerdict[]> {
  const { storage, watch } = options;
  const bucket = watch.inputBucket;
  const verdicts: ManifestVerdict[] = [];
  for await (const listed of listMatching(storage, options.history, watch)) {
    const { object } = listed;
    const source = `s3://${bucket}/${object.key}`;
    const none = { source, key: object.key, results: [], rows: [] };
    if (listed.verdict === 'not-csv' || listed.verdict === 'result') {
      verdicts.push({ ...none, verdict: 'not-claimed', reason: NOT_CLAIMED[listed.verdict] });
      continue;
    }
    if (listed.verdict === 'claimed') {
      verdicts.push({ ...none, verdict: 'not-claimed', reason: `already claimed (run ${listed.run})` });
      continue;
    }
    if (listed.verdict === 'skipped') {
      verdicts.push({
        ...none,
        verdict: 'skip',
        reason: 'not a manifest (found so before, as the state DB records; left untouched)',
      });
      continue;
    }
    const marker = claimMarkerKey({
      manifestKey: object.key,
      manifestEtag: object.etag,
      manifestMtime: object.lastModified,
    });
    if ((await storage.head(bucket, marker)) !== undefined) {
      verdicts.push({
        ...none,
        verdict: 'not-claimed',
        reason: `claimed by another cogd (its claim marker ${marker} exists)`,
      });
      continue;
    }
    const bytes = await storage.getRange(bucket, object.key, 0);
    if (bytes === undefined) {
      verdicts.push({ ...none, verdict: 'not-claimed', reason: 'it disappeared while the dry run looked' });
      continue;
    }
    const binary = notText(bytes);
    if (binary !== undefined) {
      verdicts.push({ ...none, verdict: 'skip', reason: `not a manifest (${binary}); left untouched` });
      continue;
    }
    verdicts.push(await manifestVerdict(source, object.key, bytes, options));
  }
  return verdicts;
}

/**
 * The verdict of one manifest that would be claimed: its rows validated and, where `watch` says
 * where they live, each image checked there.
 */
export async function manifestVerdict(
  source: string,
  key: string,
  bytes: Buffer,
  options: {
    naming: Naming;
    limits: Limits;
    concurrency: number;
    storage?: Storage | undefined;
    watch?: Pick<Watch, 'inputBucket'> | undefined;
  },
): Promise<ManifestVerdict> {
  const results = resultKeys(key);
  const planned = rowVerdicts(bytes, options.naming);
  if ('error' in planned) return { source, key, verdict: 'claim', reason: planned.error, results, rows: [] };
  const rows =
    options.storage === undefined || options.watch === undefined
      ? planned.rows
      : await checkImages(
          options.storage,
          options.watch.inputBucket,
          planned.rows,
          options.limits,
          options.concurrency,
        );
  return { source, key, verdict: 'claim', reason: null, results, rows };
}

export function totalsOf(manifests: readonly ManifestVerdict[]): Totals {
  const totals: Totals = { manifests: 0, rows: 0, convert: 0, fail: 0, warnings: 0, rejected: 0, notClaimed: 0 };
  for (const manifest of manifests) {
    if (manifest.verdict !== 'claim') {
      totals.notClaimed += 1;
      continue;
    }
    totals.manifests += 1;
    if (manifest.reason !== null) totals.rejected += 1;
    for (const row of manifest.rows) {
      totals.rows += 1;
      if (row.verdict === 'fail') totals.fail += 1;
      else {
        totals.convert += 1;
        if (row.warning !== null) totals.warnings += 1;
      }
    }
  }
  return totals;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `a/x-{processed,failed,errors}-<TS>.csv`: the result files in one name. */
function resultsText(results: readonly string[]): string {
  const [, ...kinds] = results.map((key) => /-(\w+)-<TS>\.csv$/.exec(key)?.[1] ?? key);
  const base = results[0]?.replace(/processing-<TS>\.csv$/, '') ?? '';
  return `${base}{${kinds.join(',')}}-<TS>.csv`;
}

/** The outputs as a line shows them: the first with its bucket (when known), the rest beside it. */
function outputsText(outputs: readonly string[], naming: Naming): string {
  const [first = '', ...rest] = outputs;
  const where = naming.outputBucket === undefined ? first : `s3://${naming.outputBucket}/${first}`;
  return [where, ...rest].join(', ');
}

/** The report as people read it: notes, then per manifest a header and a line per row, then the total. */
export function formatReport(report: DryRunReport, naming: Naming): string[] {
  const lines = [...report.notes];
  for (const manifest of report.manifests) {
    if (manifest.verdict === 'skip') {
      lines.push(`${manifest.source}: would be skipped: ${manifest.reason ?? 'not a manifest'}`);
      continue;
    }
    if (manifest.verdict === 'not-claimed') {
      lines.push(`${manifest.source}: would not be claimed: ${manifest.reason ?? ''}`);
      continue;
    }
    // A manifest in the bucket is claimed; a local one (`cogd plan`) is only read.
    const claimed = manifest.source.startsWith('s3://') ? 'would be claimed' : '';
    const results = `(results ${resultsText(manifest.results)})`;
    if (manifest.reason !== null) {
      const rejected = claimed === '' ? 'would be rejected whole' : `${claimed} and rejected whole`;
      lines.push(`${manifest.source}: ${rejected}: ${manifest.reason} ${results}`);
      continue;
    }
    const rows = plural(manifest.rows.length, 'row');
    lines.push(`${manifest.source}: ${claimed === '' ? rows : `${claimed}, ${rows}`} ${results}`);
    for (const row of manifest.rows) {
      const what = row.key ?? row.row;
      if (row.verdict === 'fail') lines.push(`  line ${row.line}: ${what} → would fail: ${row.reason ?? 'rejected'}`);
      else
        lines.push(
          `  line ${row.line}: ${what} → ${outputsText(row.outputs, naming)}${row.warning === null ? '' : ` (warning: ${row.warning})`}`,
        );
    }
  }
  const t = report.totals;
  const extras = [
    t.rejected > 0 ? `${plural(t.rejected, 'manifest')} would be rejected whole` : '',
    t.notClaimed > 0 ? `${plural(t.notClaimed, 'object')} would not be claimed` : '',
  ].filter((text) => text !== '');
  lines.push(
    `${plural(t.manifests, 'manifest')}, ${plural(t.rows, 'row')}: ${t.convert} would convert${t.warnings > 0 ? ` (${t.warnings} with a warning)` : ''}, ${t.fail} would fail${extras.length > 0 ? `; ${extras.join('; ')}` : ''}`,
  );
  return lines;
}
