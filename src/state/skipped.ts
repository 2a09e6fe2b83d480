/**
 * Skipped objects: objects a watch's pattern matched that are not manifests. Never claimed,
 * reported once, and not looked at again unless they change (new ETag).
 */
import type Database from 'better-sqlite3';
import { now, prepareAll } from './statements.js';

/** An object as listed: its key, ETag and modification time. */
export interface ListedObject {
  key: string;
  etag: string;
  lastModified: string;
}

const SQL = {
  has: 'SELECT 1 FROM skipped_objects WHERE bucket = ? AND key = ? AND etag = ? AND mtime = ?',
  record:
    'INSERT OR IGNORE INTO skipped_objects (bucket, key, etag, mtime, reason, skipped_at) VALUES (?, ?, ?, ?, ?, ?)',
};

export class SkippedObjects {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL);
  }

  has(bucket: string, object: ListedObject): boolean {
    return this.sql.has.get(bucket, object.key, object.etag, object.lastModified) !== undefined;
  }

  record(bucket: string, object: ListedObject, reason: string): void {
    this.sql.record.run(bucket, object.key, object.etag, object.lastModified, reason, now());
  }
}
