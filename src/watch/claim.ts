/**
 * Claiming a manifest. The claim is recorded in SQLite first; then, each step recorded as it
 * completes: download into the run directory, copy to the processing name, delete the raw object.
 * Every step is idempotent, so a process killed between any two of them finishes the claim on
 * restart — the manifest is never lost and never claimed twice.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../daemon/crash.js';
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
function uniqueRunDir(deps: ClaimDeps, ts: string): string {
  for (let n = 1; ; n += 1) {
    const dir = path.join(deps.logDir, n === 1 ? `run-${ts}` : `run-${ts}-${n}`);
    if (!deps.db.runDirTaken(dir) && !existsSync(dir)) return dir;
  }
}

export async function claim(deps: ClaimDeps, watch: Watch, object: ObjectInfo, now = new Date()): Promise<RunRecord> {
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
  deps.log.info('Run:Claimed', { run: run.id, manifest: object.key, runDir: run.runDir });
  crashPoint('claim:recorded');
  return continueClaim(deps, run);
}

/** Takes a claim from whatever step it reached to complete. */
export async function continueClaim(deps: ClaimDeps, run: RunRecord): Promise<RunRecord> {
  const { db, storage } = deps;
  const bucket = run.inputBucket;
  const local = path.join(run.runDir, MANIFEST_FILE);
  await mkdir(run.runDir, { recursive: true });

  if (run.claimStep === 'claimed') {
    // Before the copy the raw object is the manifest; after a crash past the copy it may only be
    // found under the processing name.
    const source = (await storage.head(bucket, run.manifestKey)) !== undefined ? run.manifestKey : run.processingKey;
    if ((await storage.head(bucket, source)) === undefined) {
      throw new CogdError('ManifestGone', `the manifest s3://${bucket}/${run.manifestKey} disappeared before it was claimed`);
    }
    await storage.download(bucket, source, local);
    db.setClaimStep(run.id, 'downloaded');
    crashPoint('claim:downloaded');
  }
  if (run.claimStep === 'claimed' || run.claimStep === 'downloaded') {
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
