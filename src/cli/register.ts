/**
 * Registering a watch from `cogd start` / `cogd poll` flags: a new watch takes the defaults for
 * what the flags leave out; an existing one keeps its stored settings and changes only those given
 * — each change said in one line (`watch 1: -m 2000 → 500`).
 */
import { checkWatchSettings, DEFAULT_WATCH_SETTINGS, describeChange, type WatchRequest } from '../config/index.js';
import { keyFileWarning } from '../daemon/home.js';
import type { StateDB } from '../state/db.js';
import type { Watch, WatchSettings } from '../types.js';

export interface WatchPlan {
  /** The watch as stored now; undefined when it is new. */
  previous: Watch | undefined;
  /** Its settings once the request is applied: given over stored (or defaults). Checked. */
  settings: WatchSettings;
  /** One line per stored setting the request changes. */
  changes: string[];
}

export interface Registered {
  watch: Watch;
  created: boolean;
  changes: string[];
  /** What the user should know (a key file readable by others). */
  warnings: string[];
}

export function settingsOf(watch: Watch): WatchSettings {
  return {
    accessKeyFile: watch.s3.accessKeyFile,
    secretKeyFile: watch.s3.secretKeyFile,
    region: watch.s3.region,
    schedule: watch.schedule,
    maxRunning: watch.maxRunning,
    retries: watch.retries,
    retryDelayMs: watch.retryDelayMs,
    executor: watch.executor,
    ...watch.conversion,
    ...watch.runEnd,
  };
}

/**
 * What registering would do, without doing it (`cogd start` probes the buckets in between; a dry
 * run reads the home's state read-only, or has none: then the watch is new).
 */
export function planWatch(db: Pick<StateDB, 'findWatch'>, request: WatchRequest): WatchPlan {
  const previous = db.findWatch(request.identity);
  const before = previous === undefined ? DEFAULT_WATCH_SETTINGS : settingsOf(previous);
  const settings: WatchSettings = { ...before };
  for (const [key, value] of Object.entries(request.given) as Array<[keyof WatchSettings, unknown]>) {
    if (value !== undefined) (settings as unknown as Record<string, unknown>)[key] = value;
  }
  checkWatchSettings(settings);
  const changes: string[] = [];
  if (previous !== undefined) {
    for (const key of Object.keys(settings) as Array<keyof WatchSettings>) {
      if (JSON.stringify(before[key]) === JSON.stringify(settings[key])) continue;
      changes.push(`watch ${previous.id}: ${describeChange(key, before[key], settings[key])}`);
    }
  }
  return { previous, settings, changes };
}

/** Creates or updates the watch the request names; a setting not given keeps its stored value. */
export function registerWatch(db: StateDB, request: WatchRequest): Registered {
  const { watch, plan } = db.writeTransaction(() => {
    const planned = planWatch(db, request);
    const saved = db.saveWatch(request.identity, planned.settings);
    db.markWatchGiven(
      saved.id,
      Object.keys(request.given).filter((key) => request.given[key as keyof WatchSettings] !== undefined),
    );
    return { watch: saved, plan: planned };
  });
  const warnings = [watch.s3.accessKeyFile, watch.s3.secretKeyFile]
    .filter((file): file is string => file !== undefined)
    .map(keyFileWarning)
    .filter((warning): warning is string => warning !== undefined);
  const warning = warnings.length === 0 ? null : warnings.join('; ');
  if (warning !== watch.warning) db.setWatchWarning(watch.id, warning);
  return { watch: { ...watch, warning }, created: plan.previous === undefined, changes: plan.changes, warnings };
}
