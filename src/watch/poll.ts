/** One look at the input bucket: the manifests a watch should claim now. */
import { isResultName } from '../manifest/names.js';
import type { ListedObject } from '../state/skipped.js';
import type { ObjectInfo, Storage } from '../storage/s3.js';
import type { Watch } from '../types.js';
import { CLAIM_PREFIX } from './claim.js';
import { keyMatcher, literalPrefix } from './glob.js';

/** Manifests are CSV files: whatever the pattern, nothing else is ever claimed (`-p "*"` included). */
const CSV = /\.csv$/i;

/** What the state DB remembers of listed objects (the StateDB; a read-only one for a dry run). */
export interface ClaimHistory {
  findRun(inputBucket: string, key: string, etag: string, mtime: string): { id: number } | undefined;
  isSkipped(bucket: string, object: ListedObject): boolean;
}

/** Why an object the pattern matched is, or is not, claimed. */
export type Listed =
  | { object: ObjectInfo; verdict: 'new' }
  | { object: ObjectInfo; verdict: 'not-csv' | 'result' | 'skipped' }
  | { object: ObjectInfo; verdict: 'claimed'; run: number };

/**
 * Every object under the pattern's literal prefix that the pattern matches (claim markers and keys
 * it does not match are left out), with its verdict. Without a history (a dry run in a home that
 * has no state DB) nothing counts as claimed or skipped before.
 */
export async function* listMatching(
  storage: Storage,
  history: ClaimHistory | undefined,
  watch: Pick<Watch, 'pattern' | 'inputBucket'>,
): AsyncGenerator<Listed> {
  const matches = keyMatcher(watch.pattern);
  for await (const object of storage.list(watch.inputBucket, literalPrefix(watch.pattern))) {
    if (object.key.startsWith(CLAIM_PREFIX) || !matches(object.key)) continue;
    if (!CSV.test(object.key)) yield { object, verdict: 'not-csv' };
    else if (isResultName(object.key)) yield { object, verdict: 'result' };
    else {
      const run = history?.findRun(watch.inputBucket, object.key, object.etag, object.lastModified);
      if (run !== undefined) yield { object, verdict: 'claimed', run: run.id };
      else if (history?.isSkipped(watch.inputBucket, object) === true) yield { object, verdict: 'skipped' };
      else yield { object, verdict: 'new' };
    }
  }
}

/**
 * Lists only under the pattern's literal prefix and returns the matching CSV objects not claimed
 * before (same key, ETag and modification time). cogd's own result files and objects found not to
 * be manifests are never returned.
 */
export async function findNewManifests(storage: Storage, db: ClaimHistory, watch: Watch): Promise<ObjectInfo[]> {
  const found: ObjectInfo[] = [];
  for await (const listed of listMatching(storage, db, watch)) if (listed.verdict === 'new') found.push(listed.object);
  return found;
}
