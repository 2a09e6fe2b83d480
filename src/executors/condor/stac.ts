/**
 * STAC items of images converted on HTCondor. Execute nodes have no Node.js, so the worker leaves
 * the raw facts of its COG beside the outputs (`WORKER_FACTS`: what the local executor reads of its
 * COG — the `gdalinfo -json -approx_stats` document, the outline through gdaltransform — and the
 * size and SHA-256 of the bytes HTCondor then uploads); the submit description brings them back to
 * the run's directory, `<run dir>/condor/facts/<log name>.*`; and once the job ended well and its
 * outputs are verified, cogd builds the item here with the same `buildItem` the local executor
 * uses. The facts stay on disk, so a cogd that re-attaches to a finished job still finds them.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { CogdError, describeError, PermanentError } from '../../errors.js';
import { NO_FOOTPRINT } from '../../stac/antimeridian.js';
import { footprintOfRing, outline, parseTransformed, type Footprint } from '../../stac/footprint.js';
import { rasterFacts } from '../../stac/gdalinfo.js';
import { buildItem, type FileFacts } from '../../stac/item.js';
import { itemPlace } from '../../stac/publish.js';
import { COGD_VERSION } from '../../version.js';
import type { JobOutput, JobSpec } from '../types.js';
import type { ConcreteProfile } from '../../convert/profiles.js';
import { classPlan, PROFILES, WORKER_FACTS, type ImageClass } from './render.js';

type FactName = keyof typeof WORKER_FACTS;

/** The directory of a run where HTCondor leaves the facts. */
export const factsDir = (runDir: string): string => path.join(runDir, 'condor', 'facts');

/** Where a job's facts land on the access point: `<run dir>/condor/facts/<log name>.<name>`. */
export function factsFiles(runDir: string, logName: string): Record<FactName, string> {
  const base = path.join(factsDir(runDir), logName);
  return { gdalinfo: `${base}.gdalinfo.json`, footprint: `${base}.footprint.txt`, facts: `${base}.facts.txt` };
}

/**
 * The submit fields that bring the facts back (`transfer_output_files`, `transfer_output_remaps`),
 * empty when the watch writes no items. HTCondor does not create the directory they land in:
 * `factsDir` is created before any submission.
 */
export function stacSubmitFields(runDir: string, stac: boolean): { stac_outputs: string; stac_remaps: string } {
  if (!stac) return { stac_outputs: '', stac_remaps: '' };
  if (/[\s;=]/.test(runDir))
    throw new PermanentError(
      'Template',
      `the run directory ${runDir} contains white space, ";" or "=", which transfer_output_remaps cannot carry`,
      { hint: 'use a --home without them, or --no-stac' },
    );
  const files = factsFiles(runDir, '$(log_name)');
  const names = Object.keys(WORKER_FACTS) as FactName[];
  return {
    stac_outputs: names.map((n) => `, ${WORKER_FACTS[n]}`).join(''),
    stac_remaps: names.map((n) => `; ${WORKER_FACTS[n]} = ${files[n]}`).join(''),
  };
}

/**
 * Throws when the run's items need the facts (`fields` from `stacSubmitFields`) and the submit
 * template does not bring them back: every job would convert, then fail for want of them. A
 * template cannot mend itself, so the rows fail at once, saying what to add.
 */
export function checkBringsFacts(template: string, fields: Record<string, string>): void {
  if (!fields['stac_remaps']) return;
  if (template.includes('{{stac_outputs}}') && template.includes('{{stac_remaps}}')) return;
  throw new PermanentError('Template', 'the submit template does not bring the STAC facts back', {
    hint: 'add {{stac_outputs}} to transfer_output_files and {{stac_remaps}} to transfer_output_remaps, as submit-templates/cog.sub does, or --no-stac',
  });
}

/** Removes what an earlier attempt of the job brought back, before a new submission. */
export async function forgetFacts(runDir: string, logName: string): Promise<void> {
  await Promise.all(Object.values(factsFiles(runDir, logName)).map((file) => rm(file, { force: true })));
}

/** What the worker's facts say. */
interface WorkerFacts {
  gdalinfo: string;
  transformed: string;
  gdalVersion: string;
  converted: string;
  profile: ConcreteProfile;
  cls: ImageClass;
  cog: FileFacts;
  preview: FileFacts;
}

const CLASSES: readonly string[] = ['integer', 'float', 'other', 'categorical'] satisfies ImageClass[];

function unreadable(file: string, reason: string): CogdError {
  return new CogdError('StacFacts', `the worker's STAC facts ${file} ${reason}`, {
    hint: 'HTCondor brings them back by transfer_output_files and transfer_output_remaps in the submit template',
  });
}

/** Reads the facts the worker left (rejects with the reason when one is missing or malformed). */
async function readFacts(files: Record<FactName, string>): Promise<WorkerFacts> {
  const read = async (file: string): Promise<string> =>
    readFile(file, 'utf8').catch((error: unknown) => {
      throw unreadable(file, `cannot be read: ${describeError(error)}`);
    });
  const [gdalinfo, transformed, text] = [
    await read(files.gdalinfo),
    await read(files.footprint),
    await read(files.facts),
  ];
  const values = new Map<string, string>();
  const outputs = new Map<string, FileFacts>();
  for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
    const [key = '', ...rest] = line.split(' ');
    const file = /^file (\S+) (\d+) ([0-9a-f]{64})$/.exec(line);
    if (file !== null) outputs.set(file[1]!, { size: Number(file[2]), sha256: file[3]! });
    else if (key !== 'file') values.set(key, rest.join(' '));
  }
  const profile = PROFILES.find((p) => p === values.get('profile'));
  const cls = values.get('class') ?? '';
  const converted = Date.parse(values.get('converted') ?? '');
  const cog = outputs.get('cog.tif');
  const preview = outputs.get('preview.jpg');
  const gdalVersion = values.get('gdal') ?? '';
  if (profile === undefined || !CLASSES.includes(cls) || Number.isNaN(converted) || gdalVersion === '')
    throw unreadable(files.facts, 'lack the profile, image class, GDAL version or time of conversion');
  if (cog === undefined || preview === undefined)
    throw unreadable(files.facts, 'lack the size and SHA-256 of cog.tif or preview.jpg');
  return {
    gdalinfo,
    transformed,
    gdalVersion,
    converted: new Date(converted).toISOString(),
    profile,
    cls: cls as ImageClass,
    cog,
    preview,
  };
}

/**
 * The footprint as footprint() makes it: none for an image without georeferencing (as rasterFacts
 * decides, whatever the worker thought), else the outline the worker transformed — every point of it.
 */
function footprintOf(facts: WorkerFacts, file: string): Footprint {
  const raster = rasterFacts(facts.gdalinfo);
  if (raster.georeferencing === null) return NO_FOOTPRINT;
  const points = parseTransformed(facts.transformed);
  const expected = outline(raster.width, raster.height).length;
  if (points.length !== expected)
    throw unreadable(
      file,
      points.length === 0
        ? `is empty, but the COG is georeferenced (by ${raster.georeferencing}): the worker and cogd disagree`
        : `has ${points.length} points of the ${expected} of the outline`,
    );
  return footprintOfRing(points);
}

/**
 * Builds and writes the item of a job whose outputs HTCondor uploaded: from the worker's facts,
 * with the sizes it recorded checked against the objects. Rejects (to be retried) when the facts
 * are missing, malformed or describe other objects than the bucket holds.
 */
export async function publishItem(job: JobSpec, runDir: string): Promise<JobOutput> {
  const files = factsFiles(runDir, job.files.name);
  const facts = await readFacts(files);
  for (const [key, recorded] of [
    [job.cogKey, facts.cog],
    [job.previewKey, facts.preview],
  ] as const) {
    const head = await job.storage.head(job.outputBucket, key);
    if (head?.size !== recorded.size)
      throw new CogdError(
        'StacFacts',
        `s3://${job.outputBucket}/${key} holds ${head === undefined ? 'nothing' : `${head.size} bytes`}, the worker made ${recorded.size} bytes`,
      );
  }
  const plan = classPlan(job.conversion, facts.profile, facts.cls);
  if (plan === undefined)
    throw unreadable(files.facts, `name the ${facts.profile} profile for a ${facts.cls} image, which it cannot hold`);
  const place = itemPlace(job.cogKey, job.outputBucket, job.conversion);
  let item: ReturnType<typeof buildItem>;
  try {
    item = buildItem({
      key: job.cogKey,
      outputBucket: job.outputBucket,
      ...place,
      gdalinfo: facts.gdalinfo,
      footprint: footprintOf(facts, files.footprint),
      cog: facts.cog,
      preview: facts.preview,
      previewKey: job.previewKey,
      processing: {
        cogdVersion: COGD_VERSION,
        gdalVersion: facts.gdalVersion,
        datetime: facts.converted,
        profile: plan.profile,
        creationOptions: plan.options,
      },
    });
  } catch (error) {
    if (error instanceof CogdError) throw error;
    throw unreadable(files.gdalinfo, `is no gdalinfo -json document of the COG: ${describeError(error)}`);
  }
  await job.storage.put(job.outputBucket, place.itemKey, `${JSON.stringify(item, null, 2)}\n`, 'application/geo+json');
  job.files.log(`wrote the STAC item s3://${job.outputBucket}/${place.itemKey}`);
  return { item: { key: place.itemKey, bbox: item.bbox ?? null, datetime: item.properties.datetime } };
}
