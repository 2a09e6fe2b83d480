/**
 * Opening the state file: refusing one that cannot be the home's state, WAL, pragmas, migrations,
 * and the integrity check the processes that change the state run at start.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { CogdError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { now } from './statements.js';

/** What to do about a state DB cogd cannot use; cogd never changes such a file itself. */
const DAMAGED_HINT =
  'cogd has not changed it. Restore it from a backup, or move it aside (mv cogd.db cogd.db.damaged) to start a fresh state: ' +
  'each run directory (logs/run-*/) keeps its manifest.csv and run.json, and the processing files (X-processing-<TS>.csv) of ' +
  'unfinished runs stay in the input bucket — rename those to X-raw.csv to run them again';

function damaged(file: string, why: string, cause?: unknown): CogdError {
  return new CogdError('StateDamaged', `the state DB ${file} ${why}`, {
    hint: DAMAGED_HINT,
    ...(cause === undefined ? {} : { cause }),
  });
}

const isDamage = (error: unknown): boolean =>
  error instanceof Error &&
  'code' in error &&
  /^SQLITE_(CORRUPT|NOTADB)/.test(String((error as { code: unknown }).code));

/** `error` as cogd reports it: SQLite's word that the file is damaged becomes a StateDamaged error. */
export function asDamaged(file: string, error: unknown): unknown {
  return isDamage(error) ? damaged(file, `is damaged (${(error as Error).message})`, error) : error;
}

/** Run directories under a home's logs/ (`run-<TS>`). */
function runDirCount(logs: string): number {
  try {
    return readdirSync(logs).filter((name) => name.startsWith('run-')).length;
  } catch {
    return 0;
  }
}

/**
 * Refuses, before SQLite touches it, a state file that cannot be the home's state: not SQLite, cut
 * short, or empty where the home's logs show it once held runs (a fresh state would forget them).
 * A missing file is a new home.
 */
function checkStateFile(file: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return;
  }
  if (size === 0) {
    const runs = runDirCount(path.join(path.dirname(file), 'logs'));
    if (runs > 0) {
      throw new CogdError(
        'StateLost',
        `the state DB ${file} is empty, but ${path.join(path.dirname(file), 'logs')} holds ${runs} run(s): their state is lost`,
        {
          hint: DAMAGED_HINT,
        },
      );
    }
    return;
  }
  const header = Buffer.alloc(100);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 100 || header.toString('latin1', 0, 16) !== 'SQLite format 3\u0000')
    throw damaged(file, 'is not an SQLite database');
  const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
  const pages = header.readUInt32BE(28);
  // The page count in the header is valid when its version stamp matches the change counter; with
  // a write-ahead log present, pages may still be on their way into the file.
  const sizeValid = header.readUInt32BE(24) === header.readUInt32BE(92);
  let wal = 0;
  try {
    wal = statSync(`${file}-wal`).size;
  } catch {
    // no write-ahead log
  }
  if (sizeValid && wal === 0 && pages * pageSize > size) {
    throw damaged(file, `is cut short: ${size} bytes where its header says ${pages * pageSize}`);
  }
}

/**
 * WAL, so readers never block the daemon. Switching a new file to WAL can fail at once with
 * SQLITE_BUSY (no busy handler) when another process opens the same new home at that moment (two
 * `cogd start`s): try again briefly.
 */
function enableWal(db: Database.Database): void {
  for (let attempt = 1; ; attempt += 1) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const busy =
        error instanceof Error &&
        'code' in error &&
        String((error as { code: unknown }).code).startsWith('SQLITE_BUSY');
      if (!busy || attempt >= 100) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // a short synchronous pause
    }
  }
}

/**
 * Applies pending migrations. Everything happens in one IMMEDIATE transaction: two processes
 * opening a new home at once (two `cogd start`s) take turns instead of both creating tables.
 */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(
      'CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const applied = new Set(db.prepare('SELECT version FROM migrations').pluck().all() as number[]);
    const record = db.prepare('INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, now());
    }
  }).immediate();
}

/** Opens the state file (WAL, foreign keys, migrations applied); refuses one cogd cannot use. */
export function openState(file: string): Database.Database {
  checkStateFile(file);
  const db = new Database(file, { timeout: 10_000 });
  try {
    db.pragma('busy_timeout = 10000');
    enableWal(db);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw asDamaged(file, error);
  }
}

/**
 * Checks every page of the file (SQLite's quick_check): the processes that change the state call
 * it once at start, so a damaged file is refused with a clear message instead of failing later.
 */
export function quickCheck(db: Database.Database, file: string): void {
  let result: unknown;
  try {
    result = db.pragma('quick_check(1)', { simple: true });
  } catch (error) {
    throw asDamaged(file, error);
  }
  if (result !== 'ok') throw damaged(file, `is damaged (${String(result)})`);
}

/**
 * Opens the state file for reading only, changing nothing in the home (`cogd poll --dry-run`);
 * undefined where there is none (or it is empty: a home that never ran anything). With a
 * write-ahead log beside it (a daemon or poll has it open, or one was killed), SQLite reads it in
 * place, read-only. Otherwise it reads a copy in memory: a read-only connection in place would
 * leave -wal and -shm files behind. A file older than this cogd (migrations pending) is refused.
 */
export function openStateReadOnly(file: string): Database.Database | undefined {
  if (!existsSync(file) || statSync(file).size === 0) return undefined;
  checkStateFile(file);
  let db: Database.Database;
  if (existsSync(`${file}-wal`)) {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 10_000 });
  } else {
    const bytes = readFileSync(file);
    // File format versions 2/2 say WAL, which a database in memory cannot keep: read it as 1/1.
    bytes[18] = 1;
    bytes[19] = 1;
    db = new Database(bytes, { readonly: true });
  }
  try {
    const latest = Math.max(...MIGRATIONS.map((m) => m.version));
    const applied = db.prepare('SELECT max(version) FROM migrations').pluck().get() as number | null;
    if (applied === null || applied < latest) {
      throw new CogdError(
        'StateOutdated',
        `the state DB ${file} is from an older cogd (schema ${applied ?? 0}, this cogd's is ${latest})`,
        { hint: 'a cogd start or poll brings it up to date' },
      );
    }
    return db;
  } catch (error) {
    db.close();
    throw asDamaged(file, error);
  }
}
