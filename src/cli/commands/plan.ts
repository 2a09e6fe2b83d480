/**
 * `cogd poll --dry-run` and `cogd plan FILE.csv`: what a poll would claim and, for every row, the
 * keys it would write or why it would fail — without writing anything anywhere. No S3 write, no
 * state DB created or changed (the home's, where there is one, is read read-only), no lock, no log
 * directory, no scratch directory. Exit 0 once the plan is made, whatever the verdicts; 1 when S3
 * (or the state DB) could not be read; 2 bad usage.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_WATCH_SETTINGS,
  engineOf,
  readOptions,
  readRunRequest,
  resolveHome,
  type Given,
} from '../../config/index.js';
import { shortFlag, type OptionName } from '../../config/options.js';
import { homePaths } from '../../daemon/home.js';
import { UsageError } from '../../errors.js';
import { StateDB } from '../../state/db.js';
import { createStorage, type Storage } from '../../storage/s3.js';
import type { WatchSettings } from '../../types.js';
import {
  dryRunBucket,
  formatReport,
  manifestVerdict,
  totalsOf,
  type DryRunReport,
  type ManifestVerdict,
  type Naming,
} from '../../watch/dry-run.js';
import { notText } from '../../watch/claim.js';
import { planWatch } from '../register.js';

/** How the outputs of a watch with these settings are named. */
function namingOf(
  outputBucket: string | undefined,
  settings: Pick<WatchSettings, 'executor' | 'stac' | 'stacItemSuffix'>,
): Naming {
  return {
    outputBucket,
    // Items are written beside the COGs by the local executor (on Slurm's nodes too), with STAC on.
    itemSuffix:
      settings.stac && (settings.executor === 'local' || settings.executor === 'slurm')
        ? settings.stacItemSuffix
        : undefined,
    condor: settings.executor === 'condor',
  };
}

/** The report as the user asked for it: JSON, or lines for people. */
function print(report: DryRunReport, naming: Naming, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatReport(report, naming).join('\n')}\n`);
}

/** The settings given on the command line that a dry run uses for itself but never stores. */
function unstored(given: Given): string[] {
  // Only what was given is there (readOptions leaves the rest out).
  return [...Object.keys(given.watch), ...Object.keys(given.home)].map((name) => shortFlag(name as OptionName));
}

/** `cogd poll --dry-run`: the watch's input bucket as a poll would see it now. */
export async function dryRunCommand(flags: Record<string, unknown>): Promise<number> {
  const request = readRunRequest('poll', flags);
  const command = request.given.command;
  if (command.wait === true)
    throw new UsageError('--dry-run and --wait exclude each other', 'a dry run converts nothing: leave out --wait');
  const { identity } = request.watch;
  const home = request.home;
  // Never created: a home without a state DB is a home where nothing was claimed yet.
  const db = StateDB.readOnly(homePaths(home).db);
  let storage: Storage | undefined;
  try {
    const { previous, settings } = planWatch(db ?? { findWatch: () => undefined }, request.watch);
    const engine = engineOf(home, db?.homeSettings() ?? {}, request.given.home);
    const naming = namingOf(identity.outputBucket, settings);
    storage = await createStorage({
      endpoint: identity.endpoint,
      accessKeyFile: settings.accessKeyFile,
      secretKeyFile: settings.secretKeyFile,
      region: settings.region,
    });
    // One quick request to each bucket, so a dead endpoint or wrong credentials fail in one line.
    await storage.probe(identity.inputBucket);
    await storage.probe(identity.outputBucket);
    const notes = [
      `dry run of the watch "${identity.pattern}" on s3://${identity.inputBucket} → s3://${identity.outputBucket}: nothing is written, to S3 or to ${home}`,
      db === undefined
        ? `${home} has no state DB: every matching manifest counts as new`
        : previous === undefined
          ? `a new watch for ${home} (its settings: the defaults and the flags given)`
          : `watch ${previous.id} of ${home}, with its stored settings and the flags given`,
    ];
    const given = unstored(request.given);
    if (given.length > 0) notes.push(`settings given (${given.join(', ')}) are used for this dry run, not stored`);
    const manifests = await dryRunBucket({
      storage,
      history: db,
      watch: { pattern: identity.pattern, inputBucket: identity.inputBucket },
      naming,
      limits: engine.limits,
      concurrency: engine.ioConcurrency,
    });
    if (manifests.length === 0)
      notes.push(`no objects matching "${identity.pattern}" in s3://${identity.inputBucket}: nothing would be claimed`);
    print({ notes, manifests, totals: totalsOf(manifests) }, naming, command.json === true);
    return 0;
  } finally {
    storage?.close();
    db?.close();
  }
}

/**
 * `cogd plan FILE.csv`: a local manifest's rows, as a run would see them. With `--input-bucket`,
 * each image is checked there (HEAD, then its TIFF header by ranged reads) as in a dry run;
 * without, the rows are judged from the file alone. `--output-bucket` only names the outputs.
 */
export async function planCommand(file: string, flags: Record<string, unknown>): Promise<number> {
  const given = readOptions('plan', flags);
  const { inputBucket, outputBucket, s3Endpoint } = given.identity;
  const { accessKeyFile, secretKeyFile } = given.watch;
  if ((accessKeyFile === undefined) !== (secretKeyFile === undefined)) {
    throw new UsageError(
      '-a/--access-key and -s/--secret-key go together',
      'pass both key files, or neither to use the AWS environment',
    );
  }
  if (inputBucket === undefined && (s3Endpoint !== undefined || accessKeyFile !== undefined)) {
    throw new UsageError(
      `${s3Endpoint !== undefined ? '-e/--s3-endpoint' : '-a/--access-key'} is given without --input-bucket`,
      'the images are checked in S3 only with --input-bucket NAME; leave the S3 flags out to judge the rows from the file alone',
    );
  }
  if (inputBucket !== undefined && inputBucket === outputBucket) {
    throw new UsageError(
      `--input-bucket and --output-bucket are both "${inputBucket}": every COG would overwrite its source image (the same key in the same bucket)`,
      'write the outputs to another bucket',
    );
  }
  const settings: WatchSettings = { ...DEFAULT_WATCH_SETTINGS, ...given.watch };
  const region = process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'];
  if (region !== undefined && region !== '') settings.region = region;
  const local = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(local);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new UsageError(`cannot read the manifest ${file}: ${why}`, 'give the path of a local CSV manifest');
  }
  // The home's limits where it has stored some (read-only; nothing is created).
  const home = resolveHome(given.command.home);
  const db = StateDB.readOnly(homePaths(home).db);
  let limits;
  let concurrency: number;
  try {
    const engine = engineOf(home, db?.homeSettings() ?? {}, given.home);
    limits = engine.limits;
    concurrency = engine.ioConcurrency;
  } finally {
    db?.close();
  }
  const naming = namingOf(outputBucket, settings);
  const notes = [`plan of ${local}: nothing is written, to S3 or to ${home}`];
  let storage: Storage | undefined;
  try {
    if (inputBucket === undefined) {
      notes.push('no --input-bucket: rows judged from the file alone (images not looked up, band counts not checked)');
    } else {
      storage = await createStorage({ endpoint: s3Endpoint, accessKeyFile, secretKeyFile, region: settings.region });
      await storage.probe(inputBucket);
      if (outputBucket !== undefined) await storage.probe(outputBucket);
      notes.push(`images looked up in s3://${inputBucket} (HEAD, then their TIFF headers by ranged reads)`);
    }
    // Binary content is no manifest: a poll would leave such an object untouched.
    const binary = notText(bytes);
    const manifest: ManifestVerdict =
      binary !== undefined
        ? {
            source: local,
            key: path.basename(local),
            verdict: 'skip',
            reason: `not a manifest (${binary}); a poll would leave it untouched`,
            results: [],
            rows: [],
          }
        : await manifestVerdict(local, path.basename(local), bytes, {
            naming,
            limits,
            concurrency,
            storage,
            watch: inputBucket === undefined ? undefined : { inputBucket },
          });
    print({ notes, manifests: [manifest], totals: totalsOf([manifest]) }, naming, given.command.json === true);
    return 0;
  } finally {
    storage?.close();
  }
}
