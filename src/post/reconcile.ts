/**
 * Which expected outputs exist in the output bucket — with as few requests as the shape allows:
 * one HEAD per key for small runs, otherwise one listing per distinct folder (never a full-bucket
 * listing per row, as the reference tool did).
 */
import path from 'node:path';
import pLimit from 'p-limit';
import type { Storage } from '../storage/s3.js';

/** At most this many keys are checked with HEAD requests; more go through folder listings. */
export const HEAD_LIMIT = 100;

export async function existingKeys(storage: Storage, bucket: string, keys: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  if (keys.length <= HEAD_LIMIT) {
    const limit = pLimit(16);
    await Promise.all(
      keys.map((key) =>
        limit(async () => {
          if ((await storage.head(bucket, key)) !== undefined) found.add(key);
        }),
      ),
    );
    return found;
  }
  const wanted = new Set(keys);
  const folders = new Set(
    keys.map((key) => {
      const dir = path.posix.dirname(key);
      return dir === '.' ? '' : `${dir}/`;
    }),
  );
  // A folder whose ancestor is listed anyway needs no listing of its own.
  const roots = [...folders].filter(
    (folder) => ![...folders].some((other) => other !== folder && folder.startsWith(other)),
  );
  for (const prefix of roots) {
    for await (const object of storage.list(bucket, prefix)) {
      if (wanted.has(object.key)) found.add(object.key);
    }
  }
  return found;
}
