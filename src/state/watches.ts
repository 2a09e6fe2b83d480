/** Watches: a pattern on an input bucket, polled on a schedule, with its settings. */
import type Database from 'better-sqlite3';
import { DEFAULT_CONVERSION } from '../convert/profiles.js';
import type { ConversionSettings, RunEndSettings, Watch, WatchIdentity, WatchSettings } from '../types.js';
import { now, prepareAll } from './statements.js';

interface WatchRow {
  id: number;
  pattern: string;
  input_bucket: string;
  output_bucket: string;
  endpoint: string | null;
  access_key_file: string | null;
  secret_key_file: string | null;
  region: string;
  schedule: string;
  executor: string;
  created_at: string;
  removed_at: string | null;
  conditional_writes: number | null;
  warning: string | null;
  max_running: number;
  retries: number;
  retry_delay_ms: number;
  conversion: string;
  hold: string | null;
  on_run_end: string | null;
  notify_url: string | null;
}

/** A watch's conversion settings; defaults where it stored nothing (watches made before profiles). */
function conversionOf(json: string): ConversionSettings {
  const stored = JSON.parse(json) as Partial<ConversionSettings>;
  return { ...DEFAULT_CONVERSION, ...stored };
}

/** The conversion settings as stored: JSON, undefined values left out. */
function conversionJson(settings: ConversionSettings): string {
  const conversion: ConversionSettings = {
    profile: settings.profile,
    creationOptions: settings.creationOptions,
    overviewResampling: settings.overviewResampling,
    maxZError: settings.maxZError,
    previewBackground: settings.previewBackground,
    previewMaxSize: settings.previewMaxSize,
    stac: settings.stac,
    stacItemSuffix: settings.stacItemSuffix,
    stacCollection: settings.stacCollection,
    rowsPerJob: settings.rowsPerJob,
  };
  return JSON.stringify(conversion);
}

/** A watch's run-end settings: the command as a JSON list of words (NULL: none), the URL as given. */
function runEndOf(row: WatchRow): RunEndSettings {
  return {
    onRunEnd: row.on_run_end === null ? [] : (JSON.parse(row.on_run_end) as string[]),
    notifyUrl: row.notify_url,
  };
}

function toWatch(row: WatchRow): Watch {
  return {
    id: row.id,
    pattern: row.pattern,
    inputBucket: row.input_bucket,
    outputBucket: row.output_bucket,
    schedule: row.schedule,
    s3: {
      endpoint: row.endpoint ?? undefined,
      accessKeyFile: row.access_key_file ?? undefined,
      secretKeyFile: row.secret_key_file ?? undefined,
      region: row.region,
    },
    executor: row.executor === 'condor' || row.executor === 'slurm' ? row.executor : 'local',
    createdAt: row.created_at,
    removedAt: row.removed_at,
    conditionalWrites: row.conditional_writes === null ? null : row.conditional_writes === 1,
    warning: row.warning,
    maxRunning: row.max_running,
    retries: row.retries,
    retryDelayMs: row.retry_delay_ms,
    conversion: conversionOf(row.conversion),
    hold: row.hold === null ? null : (JSON.parse(row.hold) as Watch['hold']),
    runEnd: runEndOf(row),
  };
}

const SQL = {
  find: `SELECT id FROM watches WHERE removed_at IS NULL AND pattern = ? AND input_bucket = ? AND output_bucket = ? AND IFNULL(endpoint, '') = ?`,
  update: `UPDATE watches SET access_key_file = ?, secret_key_file = ?, region = ?, schedule = ?, max_running = ?,
      retries = ?, retry_delay_ms = ?, executor = ?, conversion = ?, on_run_end = ?, notify_url = ? WHERE id = ?`,
  insert: `INSERT INTO watches (pattern, input_bucket, output_bucket, endpoint, access_key_file, secret_key_file, region,
      schedule, max_running, retries, retry_delay_ms, executor, conversion, on_run_end, notify_url, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  get: 'SELECT * FROM watches WHERE id = ?',
  live: 'SELECT * FROM watches WHERE removed_at IS NULL ORDER BY id',
  remove: 'UPDATE watches SET removed_at = ? WHERE id = ? AND removed_at IS NULL',
  setConditionalWrites: 'UPDATE watches SET conditional_writes = ? WHERE id = ?',
  setWarning: 'UPDATE watches SET warning = ? WHERE id = ?',
  setPolled: 'UPDATE watches SET last_polled_at = ?, last_poll_error = ? WHERE id = ?',
  lastPoll: 'SELECT last_polled_at AS at, last_poll_error AS error FROM watches WHERE id = ?',
};

export class Watches {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = prepareAll(db, SQL, ['find']);
  }

  /** The live watch with this pattern, buckets and endpoint, if there is one. */
  find(identity: WatchIdentity): Watch | undefined {
    const id = this.sql.find.get(
      identity.pattern,
      identity.inputBucket,
      identity.outputBucket,
      identity.endpoint ?? '',
    ) as number | undefined;
    return id === undefined ? undefined : this.get(id);
  }

  /** Stores a watch's settings: the live watch with this identity is updated, or a new one created. */
  save(identity: WatchIdentity, settings: WatchSettings): Watch {
    const values = [
      settings.accessKeyFile ?? null,
      settings.secretKeyFile ?? null,
      settings.region,
      settings.schedule,
      settings.maxRunning,
      settings.retries,
      settings.retryDelayMs,
      settings.executor,
      conversionJson(settings),
      settings.onRunEnd.length === 0 ? null : JSON.stringify(settings.onRunEnd),
      settings.notifyUrl,
    ];
    const existing = this.find(identity);
    if (existing !== undefined) {
      this.sql.update.run(...values, existing.id);
      return this.get(existing.id)!;
    }
    const id = this.sql.insert.run(
      identity.pattern,
      identity.inputBucket,
      identity.outputBucket,
      identity.endpoint ?? null,
      ...values,
      now(),
    ).lastInsertRowid;
    return this.get(Number(id))!;
  }

  get(id: number): Watch | undefined {
    const row = this.sql.get.get(id) as WatchRow | undefined;
    return row === undefined ? undefined : toWatch(row);
  }

  /** Watches not removed, for the daemon and `cogd rm`. */
  live(): Watch[] {
    return (this.sql.live.all() as WatchRow[]).map(toWatch);
  }

  /** Stops a watch: no more polls. Its runs already claimed go on. */
  remove(watchId: number): boolean {
    return this.sql.remove.run(now(), watchId).changes > 0;
  }

  /** Whether the watch's endpoint enforces conditional writes (If-None-Match), once probed. */
  setConditionalWrites(watchId: number, enforced: boolean): void {
    this.sql.setConditionalWrites.run(enforced ? 1 : 0, watchId);
  }

  /** What a user should know about a watch (shown by `cogd status`); null clears it. */
  /** Records a poll of the watch's input bucket: now, and why it failed (null: it worked). */
  setPolled(watchId: number, error: string | null): void {
    this.sql.setPolled.run(now(), error, watchId);
  }

  /** When the watch's input bucket was last listed, and why that failed if it did. */
  lastPoll(watchId: number): { at: string | null; error: string | null } {
    return (
      (this.sql.lastPoll.get(watchId) as { at: string | null; error: string | null } | undefined) ?? {
        at: null,
        error: null,
      }
    );
  }

  setWarning(watchId: number, warning: string | null): void {
    this.sql.setWarning.run(warning, watchId);
  }
}
