/**
 * A home's files and the lock that keeps one process working on a home at a time.
 *
 * The lock is an exclusive SQLite lock on `<home>/cogd.lock`, held by the daemon (or a `cogd poll`)
 * for its whole life: the kernel drops it when the process ends, however it ends (kill -9
 * included), so a stale lock cannot outlive its holder. `<home>/cogd.pid` says which process holds
 * it and in which role. Probes (`cogd status`, `start`, `rm`) take only a shared lock for an
 * instant, and the holder waits out such an instant when it starts: a probe can never keep a
 * daemon from starting.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isHeld, takeExclusive } from '../state/lock.js';
import { retry } from '../util/retry.js';

export const homePaths = (home: string) => ({
  db: path.join(home, 'cogd.db'),
  lock: path.join(home, 'cogd.lock'),
  pid: path.join(home, 'cogd.pid'),
  /** Where the daemon serves its status page (`--http`): its URL, then its pid. */
  http: path.join(home, 'cogd.http'),
  logs: path.join(home, 'logs'),
  daemonLog: path.join(home, 'logs', 'cogd.log'),
  scratch: path.join(home, 'scratch'),
});

/** What holds a home: the long-running daemon, or a `cogd poll` working in the foreground. */
export type HolderRole = 'daemon' | 'poll';

export interface HomeLock {
  release(): Promise<void>;
}

/** How long the holder waits for probes that hold the lock file for an instant. */
const PROBE_PATIENCE_MS = 3000;

/**
 * When a process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22), with the boot
 * id: together with the pid they name one process, never a later one that reuses the pid.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined; // exited, waiting to be reaped
    return `${bootId()}:${fields[19]}`;
  } catch {
    return undefined;
  }
}

let boot: string | undefined;
function bootId(): string {
  boot ??= (() => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return 'unknown-boot';
    }
  })();
  return boot;
}

/** Takes the home's lock for `role`, or returns undefined when another process holds it. */
export async function acquireHomeLock(home: string, role: HolderRole): Promise<HomeLock | undefined> {
  const paths = homePaths(home);
  await mkdir(home, { recursive: true });
  const lock = takeExclusive(paths.lock, PROBE_PATIENCE_MS);
  if (lock === undefined) return undefined;
  // Written whole or not at all: a reader never sees half a pid file.
  const tmp = `${paths.pid}.${process.pid}.tmp`;
  await writeFile(tmp, `${process.pid}\n${role}\n${processStart(process.pid) ?? ''}\n`, { mode: 0o600 });
  await rename(tmp, paths.pid);
  return {
    async release() {
      await rm(paths.pid, { force: true });
      lock.release();
    },
  };
}

/**
 * Takes the home's lock unless a live process holds it: a holder that is only starting (its pid
 * file not written yet) is given a few chances to show itself. Undefined: someone else holds it.
 */
export async function lockHome(home: string, role: HolderRole): Promise<HomeLock | undefined> {
  return retry(
    async () => {
      const holder = homeHolder(home);
      if (holder?.pid !== undefined && holder.pid !== process.pid) return undefined;
      const lock = await acquireHomeLock(home, role);
      // Not taken, but held all along by a holder still starting: that holder wins.
      if (lock !== undefined || homeHolder(home) !== undefined) return lock;
      throw new Error('the lock was released while this process waited for it'); // another try
    },
    { attempts: 3, backoff: { kind: 'fixed', delayMs: 50, jitter: 0.5 } },
  ).catch(() => undefined);
}

/**
 * What holds the home now: undefined when nothing does; `pid` undefined while the holder has not
 * written its pid file yet (it has just started, or the file names a process that is gone).
 */
export function homeHolder(home: string): { pid: number | undefined; role: HolderRole } | undefined {
  const paths = homePaths(home);
  if (!existsSync(paths.lock)) return undefined;
  if (!isHeld(paths.lock)) return undefined;
  const [pidText = '', roleText = '', start = ''] = readIfThere(paths.pid).split('\n');
  const pid = Number.parseInt(pidText, 10);
  const role: HolderRole = roleText === 'poll' ? 'poll' : 'daemon';
  // A pid file left by a holder that died (kill -9) names a process that is gone or a newer one.
  const current = Number.isInteger(pid) && pid > 0 && start !== '' && processStart(pid) === start;
  return { pid: current ? pid : undefined, role };
}

/** A file's text, or '' when it is not there (a holder removes its pid file as it stops: no check-then-read). */
function readIfThere(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/** The pid of the daemon running on this home; -1 while one is starting; undefined when none is. */
export function runningDaemon(home: string): number | undefined {
  const holder = homeHolder(home);
  if (holder === undefined || holder.role !== 'daemon') return undefined;
  return holder.pid ?? -1;
}

/** "a cogd daemon (pid 12)" or "a cogd poll (pid 12)": what holds a home, for messages. */
export function describeHolder(holder: { pid: number | undefined; role: HolderRole }): string {
  return `a cogd ${holder.role}${holder.pid === undefined ? '' : ` (pid ${holder.pid})`}`;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A short stable id of a home, for names shared with other homes (its scratch subdirectory). */
export function homeId(home: string): string {
  return createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 12);
}

/**
 * Makes cogd's own files in a home private to the user (0600, directories 0700): state, lock, pid
 * and logs hold bucket names, keys of images and paths of key files. The home directory itself is
 * left as it is (it is often a directory of the user's); new homes are created 0700 (umask).
 */
export function securePaths(home: string): void {
  const paths = homePaths(home);
  const files = [paths.db, `${paths.db}-wal`, `${paths.db}-shm`, paths.lock, paths.pid, paths.daemonLog];
  for (const [file, mode] of [...files.map((f) => [f, 0o600] as const), [paths.logs, 0o700] as const]) {
    try {
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, mode);
    } catch {
      // not there (yet), or not ours to change
    }
  }
}

/** Why a key file is a risk (readable by group or others), as ssh warns; undefined when it is private. */
export function keyFileWarning(file: string): string | undefined {
  try {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) === 0) return undefined;
    return `the key file ${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${file}`;
  } catch {
    return undefined; // a missing file is reported where it is read
  }
}
