/**
 * A home's files and the lock that keeps one daemon per home.
 *
 * The lock is an exclusive SQLite lock on `<home>/cogd.lock`, held by the daemon for its whole life:
 * the kernel drops it when the process ends, however it ends (kill -9 included), so a stale lock
 * cannot outlive its daemon. `<home>/cogd.pid` says which process holds it.
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const homePaths = (home: string) => ({
  db: path.join(home, 'cogd.db'),
  lock: path.join(home, 'cogd.lock'),
  pid: path.join(home, 'cogd.pid'),
  logs: path.join(home, 'logs'),
  daemonLog: path.join(home, 'logs', 'cogd.log'),
  scratch: path.join(home, 'scratch'),
});

export interface HomeLock {
  release(): Promise<void>;
}

/** Takes the home's daemon lock, or returns undefined when another process holds it. */
export async function acquireHomeLock(home: string): Promise<HomeLock | undefined> {
  const paths = homePaths(home);
  await mkdir(home, { recursive: true });
  const db = new Database(paths.lock, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if (error instanceof Error && 'code' in error && String((error as { code: unknown }).code).startsWith('SQLITE_BUSY')) return undefined;
    throw error;
  }
  await writeFile(paths.pid, `${process.pid}\n`);
  return {
    async release() {
      await rm(paths.pid, { force: true });
      db.close();
    },
  };
}

/** The pid of the daemon running on this home, or undefined when none is. */
export function runningDaemon(home: string): number | undefined {
  const paths = homePaths(home);
  if (!existsSync(paths.lock)) return undefined;
  const db = new Database(paths.lock, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('ROLLBACK');
    return undefined; // we could take the lock: nobody holds it
  } catch {
    const pid = Number.parseInt(existsSync(paths.pid) ? readFileSync(paths.pid, 'utf8') : '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : -1;
  } finally {
    db.close();
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
