/** A state DB with a watch and a planned run, for tests of what reads and writes the state. */
import path from 'node:path';
import { DEFAULT_CONVERSION } from '../../src/convert/profiles.js';
import { planRows } from '../../src/dag/plan.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { StateDB, type RunRecord } from '../../src/state/db.js';
import type { Watch, WatchSettings } from '../../src/types.js';
import { tempDir } from './helpers.js';

export const TEST_WATCH_SETTINGS: WatchSettings = {
  accessKeyFile: undefined,
  secretKeyFile: undefined,
  region: 'us-east-1',
  schedule: '*/15 * * * *',
  maxRunning: 10,
  retries: 3,
  retryDelayMs: 1000,
  executor: 'local',
  ...DEFAULT_CONVERSION,
  onRunEnd: [],
  notifyUrl: null,
};

/** A watch of `*raw.csv` on raw → cogs with these settings. */
export function testWatch(db: StateDB, settings: Partial<WatchSettings> = {}): Watch {
  return db.saveWatch(
    { pattern: '*raw.csv', inputBucket: 'raw', outputBucket: 'cogs', endpoint: undefined },
    { ...TEST_WATCH_SETTINGS, ...settings },
  );
}

/** A run of `watch` claimed from `n`-raw.csv (n = 1, 2…) with `manifest` planned. */
export function plannedRun(db: StateDB, watch: Watch, manifest: string, n = 1): RunRecord {
  const run = db.insertRun({
    watchId: watch.id,
    inputBucket: 'raw',
    outputBucket: 'cogs',
    manifestKey: n === 1 ? 'x-raw.csv' : `m${n}-raw.csv`,
    manifestEtag: `"e${n}"`,
    manifestMtime: '2026-11-21T00:00:00.000Z',
    base: n === 1 ? 'x-' : `m${n}-`,
    ts: '20261121-000000',
    processingKey: n === 1 ? 'x-processing-20261121-000000.csv' : `m${n}-processing-20261121-000000.csv`,
    runDir: n === 1 ? '/tmp/run' : `/tmp/run-${n}`,
    batchName: 'COG-Pipeline-DAG-*raw.csv',
  });
  db.insertJobs(run.id, planRows(parseManifest(manifest)));
  return db.run(run.id)!;
}

/** A fresh state DB in a temp home. */
export async function testState(): Promise<StateDB> {
  return new StateDB(path.join(await tempDir(), 'cogd.db'));
}
