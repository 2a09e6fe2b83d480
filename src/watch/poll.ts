/** One look at the input bucket: the manifests a watch should claim now. */
import { isResultName } from '../manifest/names.js';
import type { StateDB } from '../state/db.js';
import type { ObjectInfo, Storage } from '../storage/s3.js';
import type { Watch } from '../types.js';
import { CLAIM_PREFIX } from './claim.js';
import { keyMatcher, literalPrefix } from './glob.js';

/** Manifests are CSV files: whatever the pattern, nothing else is ever claimed (`-p "*"` included). */
const CSV = /\.csv$/i;

/**
 * Lists only under the pattern's literal prefix and returns the matching CSV objects not claimed
 * before (same key, ETag and modification time). cogd's own result files and objects found not to
 * be manifests are never returned.
 */
export async function findNewManifests(storage: Storage, db: StateDB, watch: Watch): Promise<ObjectInfo[]> {
  const matches = keyMatcher(watch.pattern);
  const found: ObjectInfo[] = [];
  for await (const object of storage.list(watch.inputBucket, literalPrefix(watch.pattern))) {
    if (
      object.key.startsWith(CLAIM_PREFIX) ||
      !CSV.test(object.key) ||
      !matches(object.key) ||
      isResultName(object.key)
    )
      continue;
    if (db.findRun(watch.inputBucket, object.key, object.etag, object.lastModified) !== undefined) continue;
    if (db.isSkipped(watch.inputBucket, object)) continue;
    found.push(object);
  }
  return found;
}
