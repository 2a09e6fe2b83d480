/**
 * Claims resume from every step: the functions the daemon uses, against the real S3 server and a
 * real SQLite file, with the process "killed" (state left as it was) between any two steps.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLog } from '../../src/log/index.js';
import { MANIFEST_FILE } from '../../src/manifest/names.js';
import { StateDB } from '../../src/state/db.js';
import { createStorage, type Storage } from '../../src/storage/s3.js';
import type { ClaimStep, Watch } from '../../src/types.js';
import { claim, continueClaim } from '../../src/watch/claim.js';
import { findNewManifests } from '../../src/watch/poll.js';
import { endpoint, freshBuckets, getText, keys, put, tempDir } from '../support/helpers.js';
import { DEFAULT_CONVERSION } from '../../src/convert/profiles.js';

let storage: Storage;
let db: StateDB;
let home: string;

beforeAll(async () => {
  home = await tempDir();
  db = new StateDB(path.join(home, 'cogd.db'));
  const { keyFiles } = await import('../support/helpers.js');
  const { access, secret } = await keyFiles(home);
  storage = await createStorage({
    endpoint: endpoint(),
    accessKeyFile: access,
    secretKeyFile: secret,
    region: 'us-east-1',
  });
});

afterAll(() => {
  storage.close();
  db.close();
});

async function setup(): Promise<{ watch: Watch; input: string }> {
  const buckets = await freshBuckets();
  const watch = db.saveWatch(
    { pattern: '*raw.csv', inputBucket: buckets.input, outputBucket: buckets.output, endpoint: endpoint() },
    {
      accessKeyFile: undefined,
      secretKeyFile: undefined,
      region: 'us-east-1',
      schedule: '* * * * *',
      maxRunning: 10,
      retries: 0,
      retryDelayMs: 0,
      executor: 'local',
      ...DEFAULT_CONVERSION,
      onRunEnd: [],
      notifyUrl: null,
    },
  );
  await put(buckets.input, 'q/m-raw.csv', 'a.tif,3\n');
  return { watch, input: buckets.input };
}

const deps = () => ({ db, storage, log: createLog({ consoleLevel: 'silent' }), logDir: path.join(home, 'logs') });

describe('claims', () => {
  it('claims once: the processing copy exists, the raw object is gone, a local copy is kept', async () => {
    const { watch, input } = await setup();
    const [object] = await findNewManifests(storage, db, watch);
    expect(object?.key).toBe('q/m-raw.csv');
    const run = (await claim(deps(), watch, object!))!;
    expect(run.claimStep).toBe('raw-deleted');
    expect(await keys(input, 'q/')).toEqual([run.processingKey]);
    expect(await getText(input, run.processingKey)).toBe('a.tif,3\n');
    expect(existsSync(path.join(run.runDir, MANIFEST_FILE))).toBe(true);
    expect(await findNewManifests(storage, db, watch)).toEqual([]);
  });

  it('claims a re-upload of the same content again', async () => {
    const { watch, input } = await setup();
    const [first] = await findNewManifests(storage, db, watch);
    await claim(deps(), watch, first!);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a later Last-Modified second
    await put(input, 'q/m-raw.csv', 'a.tif,3\n');
    const [again] = await findNewManifests(storage, db, watch);
    expect(again?.key).toBe('q/m-raw.csv');
    expect(again?.lastModified).not.toBe(first?.lastModified);
  });

  // Each case: the step recorded when the process died, and what S3 held at that moment.
  it.each<[ClaimStep, { raw: boolean; processing: boolean }]>([
    ['claimed', { raw: true, processing: false }],
    ['claimed', { raw: false, processing: true }],
    ['downloaded', { raw: true, processing: false }],
    ['downloaded', { raw: true, processing: true }],
    ['copied', { raw: true, processing: true }],
    ['copied', { raw: false, processing: true }],
  ])('finishes a claim killed at step %s with %j in S3', async (step, held) => {
    const { watch, input } = await setup();
    const [object] = await findNewManifests(storage, db, watch);
    const run = db.insertRun({
      watchId: watch.id,
      inputBucket: input,
      outputBucket: watch.outputBucket,
      manifestKey: object!.key,
      manifestEtag: object!.etag,
      manifestMtime: object!.lastModified,
      base: 'q/m-',
      ts: '20260101-000000',
      processingKey: 'q/m-processing-20260101-000000.csv',
      runDir: path.join(home, 'logs', `run-${input}`),
      batchName: 'b',
    });
    if (held.processing) await put(input, run.processingKey, 'a.tif,3\n');
    if (!held.raw) await storage.delete(input, run.manifestKey);
    if (step !== 'claimed') {
      // Past the download the local copy exists.
      await continueClaim(deps(), { ...run, claimStep: 'claimed' }).catch(() => undefined);
      db.setClaimStep(run.id, step);
      if (held.raw) await put(input, run.manifestKey, 'a.tif,3\n');
      if (!held.processing) await storage.delete(input, run.processingKey);
    }
    const done = await continueClaim(deps(), db.run(run.id)!);
    expect(done.claimStep).toBe('raw-deleted');
    expect(await keys(input, 'q/')).toEqual([run.processingKey]);
    expect(await getText(input, run.processingKey)).toBe('a.tif,3\n');
    // The object was claimed once: a new poll does not find it again.
    expect(await findNewManifests(storage, db, watch)).toEqual([]);
  });
});
