/**
 * The home's process lock, made of SQLite's file locking on a file of its own (`cogd.lock`, never
 * written): an exclusive lock held for a process's life, dropped by the kernel however the process
 * ends; and a probe that takes a shared lock for an instant.
 */
import Database from 'better-sqlite3';

const isBusy = (error: unknown): boolean =>
  error instanceof Error && 'code' in error && String((error as { code: unknown }).code).startsWith('SQLITE_BUSY');

/** A held lock; `release()` drops it. */
export interface FileLock {
  release(): void;
}

/**
 * Takes the exclusive lock on `file`, waiting up to `patienceMs` for holders of an instant (probes);
 * undefined when another process holds it.
 */
export function takeExclusive(file: string, patienceMs: number): FileLock | undefined {
  const db = new Database(file, { timeout: patienceMs });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if (isBusy(error)) return undefined;
    throw error;
  }
  return { release: () => db.close() };
}

/** Whether a process holds the exclusive lock on `file` (a shared lock, taken and dropped at once). */
export function isHeld(file: string): boolean {
  try {
    const probe = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
    try {
      probe.prepare('SELECT count(*) FROM sqlite_master').get();
      return false;
    } finally {
      probe.close();
    }
  } catch (error) {
    if (isBusy(error)) return true;
    throw error;
  }
}
