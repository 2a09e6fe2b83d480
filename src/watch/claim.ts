/**
 * Claiming a manifest. The claim is recorded in SQLite first; then, each step recorded as it
 * completes: download into the run directory, copy to the processing name, delete the raw object.
 * Every step is idempotent, so a process killed between any two of them finishes the claim on
 * restart — the manifest is never lost and never claimed twice.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crashPoint } from '../util/crash.js';
import { CogdError } from '../errors.js';
import type { Log } from '../log/index.js';
import { MANIFEST_FILE, manifestBase, resultKey, runBatchName, timestamp } from '../manifest/names.js';
import type { RunRecord, StateDB } from '../state/db.js';
import type { ObjectInfo, Storage } from '../storage/s3.js';
import type { Watch } from '../types.js';

export interface ClaimDeps {
  db: StateDB;
  storage: Storage;
  log: Log;
  /** `<home>/logs` */
  logDir: string;
}

/** `logs/run-<TS>`, with `-2`, `-3`… when several manifests are claimed in the same second. */
export function uniqueRunDir(deps: Pick<ClaimDeps, 'db' | 'logDir'>, ts: string): string {
  for (let n = 1; ; n += 1) {
    const dir = path.join(deps.logDir, n === 1 ? `run-${ts}` : `run-${ts}-${n}`);
    if (!deps.db.runDirTaken(dir) && !existsSync(dir)) return dir;
  }
}

/** Where claim markers live in the input bucket; never listed as manifests. */
export const CLAIM_PREFIX = '.cogd/claims/';

/** One marker per uploaded object (key, ETag, modification time): a re-upload can be claimed again. */
export function claimMarkerKey(run: Pick<RunRecord, 'manifestKey' | 'manifestEtag' | 'manifestMtime'>): string {
  const id = createHash('sha256').update(`${run.manifestKey}\n${run.manifestEtag}\n${run.manifestMtime}`).digest('hex');
  return `${CLAIM_PREFIX}${id}.json`;
}

/** Another daemon claimed this manifest first. */
export class LostClaim extends CogdError {
  constructor(key: string, holder: string) {
    super('LostClaim', `the manifest ${key} was claimed elsewhere (${holder})`);
  }
}

/**
 * The object the pattern matched is no manifest (binary content: an image, an archive): it is left
 * exactly where it is, never copied or deleted, and reported once.
 */
export class NotAManifest extends LostClaim {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(key, 'not a manifest');
    this.message = `s3 object ${key} matches the pattern but is not a CSV manifest (${reason}); it is left untouched`;
  }
}

/**
 * Why the bytes cannot be a CSV manifest, or undefined when they look like text: no NUL bytes
 * (every TIFF, JPEG or archive has them early on) and few other control characters. Invalid UTF-8
 * is still text here; its rows fail one by one with the reason.
 */
export function notText(bytes: Buffer): string | undefined {
  const nul = bytes.indexOf(0);
  if (nul !== -1) return `binary content: a NUL byte at offset ${nul}`;
  let control = 0;
  for (const byte of bytes)
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c) control += 1;
  if (control > 8 && control > bytes.length / 100) return `binary content: ${control} control bytes`;
  return undefined;
}

/**
 * Claims a new manifest; resolves undefined when another cogd (another home, another access point)
 * won the claim marker first.
 */
export async function claim(
  deps: ClaimDeps,
  watch: Watch,
  object: ObjectInfo,
  now = new Date(),
): Promise<RunRecord | undefined> {
  const ts = timestamp(now);
  const base = manifestBase(object.key);
  const run = deps.db.insertRun({
    watchId: watch.id,
    inputBucket: watch.inputBucket,
    outputBucket: watch.outputBucket,
    manifestKey: object.key,
    manifestEtag: object.etag,
    manifestMtime: object.lastModified,
    base,
    ts,
    processingKey: resultKey(base, 'processing', ts),
    runDir: uniqueRunDir(deps, ts),
    batchName: runBatchName(watch.pattern),
  });
  deps.db.setRunConversion(run.id, watch.conversion);
  crashPoint('claim:recorded');
  try {
    const claimed = await continueClaim(deps, run);
    deps.log.info('Run:Claimed', { run: run.id, manifest: object.key, runDir: run.runDir });
    return claimed;
  } catch (error) {
    if (!(error instanceof LostClaim)) throw error;
    await forgetClaim(deps, run, error);
    return undefined;
  }
}

/**
 * Drops a claim another cogd won, or of an object that is no manifest: nothing was done for it but
 * the record, its directory and (for a non-manifest) our claim marker.
 */
export async function forgetClaim(
  deps: Pick<ClaimDeps, 'db' | 'log' | 'storage'>,
  run: RunRecord,
  reason: LostClaim,
): Promise<void> {
  deps.db.deleteRun(run.id);
  await rm(run.runDir, { recursive: true, force: true });
  if (reason instanceof NotAManifest) {
    deps.db.recordSkipped(
      run.inputBucket,
      { key: run.manifestKey, etag: run.manifestEtag, lastModified: run.manifestMtime },
      reason.reason,
    );
    await deps.storage.delete(run.inputBucket, claimMarkerKey(run));
    deps.log.warn('Watch:NotAManifest', {
      manifest: `s3://${run.inputBucket}/${run.manifestKey}`,
      reason: reason.message,
    });
    return;
  }
  deps.log.info('Run:LostClaim', { manifest: run.manifestKey, reason: reason.message });
}

/**
 * The claim marker: a conditional create (`If-None-Match: *`) that exactly one cogd wins, before
 * anything else happens to the manifest. Finding our own token there (a restart) counts as won.
 */
async function takeMarker(deps: ClaimDeps, run: RunRecord): Promise<void> {
  const key = claimMarkerKey(run);
  const body = JSON.stringify({
    manifest: run.manifestKey,
    etag: run.manifestEtag,
    lastModified: run.manifestMtime,
    token: run.claimToken,
    host: os.hostname(),
    home: path.dirname(path.dirname(run.runDir)),
    pid: process.pid,
    claimedAt: new Date().toISOString(),
  });
  if (await deps.storage.putIfAbsent(run.inputBucket, key, body, 'application/json')) return;
  const existing = await deps.storage.getText(run.inputBucket, key);
  let holder: { token?: string; host?: string; home?: string } = {};
  try {
    holder = JSON.parse(existing ?? '{}') as typeof holder;
  } catch {
    // an unreadable marker is someone else's
  }
  if (holder.token !== undefined && holder.token === run.claimToken) return;
  throw new LostClaim(run.manifestKey, `${holder.host ?? '?'}:${holder.home ?? '?'}`);
}

/** Takes a claim from whatever step it reached to complete. */
export async function continueClaim(deps: ClaimDeps, run: RunRecord): Promise<RunRecord> {
  const { db, storage } = deps;
  const bucket = run.inputBucket;
  const local = path.join(run.runDir, MANIFEST_FILE);
  await mkdir(run.runDir, { recursive: true });

  if (run.claimStep === 'claimed') {
    await takeMarker(deps, run);
    // Before the copy the raw object is the manifest; after a crash past the copy it may only be
    // found under the processing name.
    const source =
      (await storage.head(bucket, run.manifestKey)) !== undefined
        ? run.manifestKey
        : (await storage.head(bucket, run.processingKey)) !== undefined
          ? run.processingKey
          : undefined;
    if (source === undefined) {
      // Deleted (or claimed by a cogd that does not write markers) before we got to it: not ours.
      throw new LostClaim(run.manifestKey, 'the manifest disappeared before it was claimed');
    }
    await storage.download(bucket, source, local);
    db.setClaimStep(run.id, 'downloaded');
    crashPoint('claim:downloaded');
  }
  if (run.claimStep === 'claimed' || run.claimStep === 'downloaded') {
    // Before anything in the bucket changes: an object with binary content is no manifest.
    const binary = notText(await readFile(local));
    if (binary !== undefined) throw new NotAManifest(run.manifestKey, binary);
    if ((await storage.head(bucket, run.processingKey)) === undefined) {
      if ((await storage.head(bucket, run.manifestKey)) !== undefined) {
        await storage.copy(bucket, run.manifestKey, run.processingKey);
      } else {
        // The raw object is gone but our copy is safe on disk: restore the processing file from it.
        await storage.put(bucket, run.processingKey, await readFile(local), 'text/csv');
      }
    }
    db.setClaimStep(run.id, 'copied');
    crashPoint('claim:copied');
  }
  if (run.claimStep !== 'raw-deleted') {
    await storage.delete(bucket, run.manifestKey);
    db.setClaimStep(run.id, 'raw-deleted');
    crashPoint('claim:raw-deleted');
  }
  return db.run(run.id)!;
}

/** `run.json` in the run directory: which object this run came from, for people reading the logs. */
export async function writeRunInfo(run: RunRecord): Promise<void> {
  await writeFile(
    path.join(run.runDir, 'run.json'),
    `${JSON.stringify({ run: run.id, manifest: `s3://${run.inputBucket}/${run.manifestKey}`, etag: run.manifestEtag, processing: run.processingKey }, null, 2)}\n`,
  );
}
