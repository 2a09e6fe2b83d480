/**
 * Settings stored in the home: the home's own (given by flags to `poll` or `start`, read by the
 * daemon), as JSON values by name. Only what was given is stored.
 */
import type Database from 'better-sqlite3';

export interface StoredSetting {
  value: unknown;
  /** ISO 8601, when it was last given. */
  updatedAt: string;
}

export class HomeSettingsTable {
  private readonly select: Database.Statement;
  private readonly upsert: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.select = db.prepare('SELECT name, value, updated_at AS updatedAt FROM home_settings ORDER BY name');
    this.upsert = db.prepare(
      'INSERT INTO home_settings (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
  }

  all(): Record<string, StoredSetting> {
    const rows = this.select.all() as Array<{ name: string; value: string; updatedAt: string }>;
    return Object.fromEntries(
      rows.map((row) => [row.name, { value: JSON.parse(row.value) as unknown, updatedAt: row.updatedAt }]),
    );
  }

  /** Stores the given values (undefined ones are skipped) in one transaction. */
  store(values: Readonly<Record<string, unknown>>, at = new Date().toISOString()): void {
    this.db.transaction(() => {
      for (const [name, value] of Object.entries(values))
        if (value !== undefined) this.upsert.run(name, JSON.stringify(value), at);
    })();
  }
}

/** When each of a watch's settings was last given by a flag (the rest hold their defaults). */
export class WatchGivenTable {
  private readonly select: Database.Statement;
  private readonly update: Database.Statement;

  constructor(db: Database.Database) {
    this.select = db.prepare('SELECT given FROM watches WHERE id = ?').pluck();
    this.update = db.prepare('UPDATE watches SET given = ? WHERE id = ?');
  }

  of(watchId: number): Record<string, string> {
    const json = this.select.get(watchId) as string | undefined;
    return json === undefined ? {} : (JSON.parse(json) as Record<string, string>);
  }

  mark(watchId: number, names: readonly string[], at = new Date().toISOString()): void {
    if (names.length === 0) return;
    const given = this.of(watchId);
    for (const name of names) given[name] = at;
    this.update.run(JSON.stringify(given), watchId);
  }
}
