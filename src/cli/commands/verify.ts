/**
 * `cogd verify RUN`: re-reads the STAC items a run wrote and checks every asset they list against
 * the bucket — present, the size recorded (`file:size`), the SHA-256 recorded (`file:checksum`).
 * It reads each object once, streamed; nothing is changed. Exit 0: all as recorded; 1: a difference.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readOptions, resolveHome } from '../../config/index.js';
import { homePaths } from '../../daemon/home.js';
import { CogdError } from '../../errors.js';
import type { ItemSummary } from '../../executors/types.js';
import { parseRun } from '../../manifest/targets.js';
/** An asset as read back: what cogd wrote, or anything someone put there since. */
interface ReadAsset {
  href: string;
  'file:size'?: number;
  'file:checksum'?: string;
}
import { StateDB } from '../../state/db.js';
import { createStorage, type Storage } from '../../storage/s3.js';

/** What one asset of an item is found to be. */
async function checkAsset(
  storage: Storage,
  bucket: string,
  itemKey: string,
  name: string,
  asset: ReadAsset,
): Promise<string | undefined> {
  const key = path.posix.join(path.posix.dirname(itemKey), decodeURIComponent(asset.href));
  const found = await storage.digest(bucket, key);
  if (found === undefined) return `${name} s3://${bucket}/${key} is missing`;
  const size = asset['file:size'];
  const checksum = asset['file:checksum'];
  if (size !== undefined && found.size !== size)
    return `${name} s3://${bucket}/${key} is ${found.size} bytes, the item says ${size}`;
  if (checksum !== undefined && `1220${found.sha256}` !== checksum)
    return `${name} s3://${bucket}/${key} has SHA-256 ${found.sha256}, the item says ${checksum.slice(4)}`;
  return undefined;
}

export async function verifyCommand(runArg: string, flags: Record<string, unknown>): Promise<number> {
  const options = readOptions('verify', flags).command;
  const home = resolveHome(options.home);
  const runId = parseRun(runArg);
  const { db: file } = homePaths(home);
  if (!existsSync(file)) throw new CogdError('NoState', `nothing has run on ${home}`);
  const db = new StateDB(file);
  let storage: Storage | undefined;
  try {
    const run = db.run(runId);
    if (run === undefined)
      throw new CogdError('UnknownRun', `there is no run ${runArg} on ${home}`, { hint: 'see `cogd status`' });
    const watch = db.watch(run.watchId)!;
    storage = await createStorage(watch.s3);
    const items = db
      .jobs(run.id)
      .filter((job) => job.state === 'converted' && job.item !== null)
      .map((job) => ({ line: job.line, item: JSON.parse(job.item!) as ItemSummary }));
    if (items.length === 0) {
      process.stdout.write(`run ${run.id}: no STAC items to verify (none converted with --stac)\n`);
      return 0;
    }
    let bad = 0;
    for (const { line, item } of items) {
      const text = await storage.getText(run.outputBucket, item.key);
      const problems: string[] = [];
      if (text === undefined) problems.push(`the item s3://${run.outputBucket}/${item.key} is missing`);
      else {
        const doc = JSON.parse(text) as { assets: Record<string, ReadAsset> };
        for (const [name, asset] of Object.entries(doc.assets)) {
          const problem = await checkAsset(storage, run.outputBucket, item.key, name, asset);
          if (problem !== undefined) problems.push(problem);
        }
      }
      if (problems.length > 0) bad += 1;
      process.stdout.write(
        `${run.id}.${line} s3://${run.outputBucket}/${item.key}: ${problems.length === 0 ? 'ok' : problems.join('; ')}\n`,
      );
    }
    process.stdout.write(
      `run ${run.id}: ${items.length - bad} of ${items.length} items as recorded${bad === 0 ? '' : `, ${bad} not`}\n`,
    );
    return bad === 0 ? 0 : 1;
  } finally {
    storage?.close();
    db.close();
  }
}
