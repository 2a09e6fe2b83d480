/**
 * Read-modify-write of one object several cogd daemons may update at once (the STAC collection of
 * an output bucket, which runs of different homes and access points extend). S3 has no
 * compare-and-swap every implementation enforces, but Ceph RGW, MinIO and AWS enforce
 * `If-None-Match: *` (the claims rely on it too): so a lock object is created that way, held for
 * the update, and deleted. A lock left by a daemon that died is taken over once it is older than
 * `staleMs`. Where the endpoint does not enforce conditional writes (s3rver), cogd already warns
 * that only one daemon may use the bucket, and the lock is still taken (harmless there).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CogdError } from '../errors.js';
import type { Storage } from '../storage/s3.js';

export interface SharedUpdateOptions {
  /** How long to wait for another daemon's update before failing (the post step then retries). @defaultValue 60 s */
  waitMs?: number;
  /** A lock older than this was left by a daemon that died. @defaultValue 10 minutes */
  staleMs?: number;
}

interface LockBody {
  token: string;
  host: string;
  pid: number;
  at: number;
}

/**
 * Updates the JSON object at `key`: `update` gets what is there (undefined if nothing) and returns
 * what to write. Returns what was written.
 */
export async function updateSharedJson<T>(
  storage: Storage,
  bucket: string,
  key: string,
  update: (current: T | undefined) => T,
  options: SharedUpdateOptions = {},
): Promise<T> {
  const lockKey = `${key}.lock`;
  const mine: LockBody = { token: randomUUID(), host: os.hostname(), pid: process.pid, at: Date.now() };
  const deadline = Date.now() + (options.waitMs ?? 60_000);
  const staleMs = options.staleMs ?? 10 * 60_000;
  for (let wait = 50; ; wait = Math.min(1000, wait * 2)) {
    if (await storage.putIfAbsent(bucket, lockKey, JSON.stringify(mine), 'application/json')) break;
    const holder = await readJson<LockBody>(storage, bucket, lockKey);
    if (holder === undefined) continue; // released meanwhile
    if (Date.now() - holder.at > staleMs) {
      await storage.delete(bucket, lockKey); // its holder died mid-update
      continue;
    }
    if (Date.now() > deadline) {
      throw new CogdError(
        'SharedObjectBusy',
        `s3://${bucket}/${key} stayed locked by ${holder.host} (pid ${holder.pid})`,
        {
          hint: `another cogd is updating it; a lock older than ${Math.round(staleMs / 60_000)} minutes is taken over`,
        },
      );
    }
    await sleep(wait);
  }
  try {
    const next = update(await readJson<T>(storage, bucket, key));
    await storage.put(bucket, key, `${JSON.stringify(next, null, 2)}\n`, 'application/json');
    return next;
  } finally {
    // Only our own lock: a holder that took over a stale one keeps its own.
    const holder = await readJson<LockBody>(storage, bucket, lockKey).catch(() => undefined);
    if (holder?.token === mine.token) await storage.delete(bucket, lockKey);
  }
}

async function readJson<T>(storage: Storage, bucket: string, key: string): Promise<T | undefined> {
  const text = await storage.getText(bucket, key);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new CogdError('NotJson', `s3://${bucket}/${key} is not JSON`, {
      cause,
      hint: 'move it aside; cogd writes it again',
    });
  }
}
