/**
 * Prepared statements. Every statement of the state is prepared once per connection, when the
 * connection opens, and kept for its life: a daemon runs the same few statements for months, and
 * no method prepares anything when it is called.
 */
import type Database from 'better-sqlite3';

/** A concern's statements by name. */
export type Statements<K extends string> = Record<K, Database.Statement>;

/**
 * Prepares each statement of `sql` once. Those named in `pluck` return their first column only
 * (better-sqlite3's `pluck()`, set here once rather than at each call).
 */
export function prepareAll<K extends string>(
  db: Database.Database,
  sql: Record<K, string>,
  pluck: ReadonlyArray<NoInfer<K>> = [],
): Statements<K> {
  const prepared = {} as Statements<K>;
  for (const name of Object.keys(sql) as K[]) {
    const statement = db.prepare(sql[name]);
    prepared[name] = pluck.includes(name) ? statement.pluck() : statement;
  }
  return prepared;
}

/** The time stamp stored with a change (ISO 8601). */
export const now = (): string => new Date().toISOString();
