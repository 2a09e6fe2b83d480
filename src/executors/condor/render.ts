/**
 * Rendering for the HTCondor executor: the submit description (from `submit-templates/cog.sub` or
 * the user's copy), its item data, and the execute-node worker — generated from the same conversion
 * rules the local executor runs, never written twice by hand.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isFloat, isInteger, type BandInfo, type ImageInfo } from '../../convert/image.js';
import { backgroundRgb, JPEG_MAX_SIDE, previewVrt } from '../../convert/preview.js';
import {
  autoProfile,
  cogCommand,
  planCog,
  unfit,
  wantsChecksum,
  type CogPlan,
  type ConcreteProfile,
} from '../../convert/profiles.js';
import { GRAY_MAX_BANDS, JPEG_QUALITY, PREVIEWABLE, STRETCH_SIGMAS } from '../../convert/rules.js';
import { CogdError } from '../../errors.js';
import { EDGE_POINTS, FOOTPRINT_TIMEOUT_MS } from '../../stac/footprint.js';
import type { ConversionSettings } from '../../types.js';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../../submit-templates/', import.meta.url));

/** A word for bash, quoted only when it needs to be. */
function shellWord(word: string): string {
  return /^[\w./:=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** GDAL's data types. */
const GDAL_TYPES = [
  'Byte',
  'Int8',
  'UInt16',
  'Int16',
  'UInt32',
  'Int32',
  'UInt64',
  'Int64',
  'Float32',
  'Float64',
  'CInt16',
  'CInt32',
  'CFloat32',
  'CFloat64',
];

/** Every concrete profile (the type makes the list complete). */
export const PROFILES = Object.keys({ lzw: 0, deflate: 0, zstd: 0, webp: 0, jpeg: 0, lerc: 0 } satisfies Record<
  ConcreteProfile,
  0
>) as ConcreteProfile[];

/** The classes of image the COG options can depend on; the worker tells them apart as planCog does. */
export type ImageClass = 'integer' | 'float' | 'other' | 'categorical';

/** An image with these bands (600 x 400), for asking the rules what they do with its kind. */
function probe(bands: Array<Partial<BandInfo> & { type: string }>): ImageInfo {
  return { driver: 'GTiff', width: 600, height: 400, bands: bands.map((b) => ({ hasColorTable: false, ...b })) };
}

const RGB = (type: string, extra: Partial<BandInfo> = {}): Array<Partial<BandInfo> & { type: string }> =>
  ['Red', 'Green', 'Blue'].map((colorInterpretation) => ({ type, colorInterpretation, ...extra }));

/**
 * Example images of each class: whatever the profile, every one of a class that the profile holds
 * must get the same COG options (checked at each render), so the worker can pick them by class.
 */
const CLASS_PROBES: Record<ImageClass, ImageInfo[]> = {
  integer: [
    probe(RGB('Byte')),
    probe([...RGB('Byte'), { type: 'Byte', colorInterpretation: 'Alpha' }]),
    probe([{ type: 'UInt16', colorInterpretation: 'Gray', nodata: 0 }]),
    probe([{ type: 'Int32' }, { type: 'Int32' }]),
  ],
  float: [probe([{ type: 'Float32', colorInterpretation: 'Gray', nodata: -9999 }]), probe(RGB('Float64'))],
  other: [probe([{ type: 'CInt16' }]), probe([{ type: 'CFloat32' }, { type: 'CFloat32' }])],
  categorical: [
    probe([{ type: 'Byte', colorInterpretation: 'Palette', hasColorTable: true, colorTable: [[0, 0, 0, 255]] }]),
    probe([{ type: 'Byte', colorInterpretation: 'Palette', nbits: 1 }]),
    probe(RGB('Byte', { nbits: 1 })),
    probe([{ type: 'UInt16', colorInterpretation: 'Palette', hasColorTable: true, colorTable: [[0, 0, 0, 255]] }]),
  ],
};

/**
 * The COG plan the worker follows for an image of `cls` under `profile`: planCog of the first
 * example of the class the profile holds (render checks that all of them plan alike), or undefined
 * when the profile holds none of the class.
 */
export function classPlan(
  conversion: ConversionSettings,
  profile: ConcreteProfile,
  cls: ImageClass,
): CogPlan | undefined {
  const info = CLASS_PROBES[cls].find((probed) => unfit(profile, probed) === undefined);
  return info === undefined ? undefined : planCog(info, { ...conversion, profile });
}

/**
 * What the worker leaves beside `cog.tif` and `preview.jpg` for the STAC item when the watch
 * writes items (HTCondor brings them back to the run's directory, see `stac.ts`): the COG's
 * `gdalinfo -json -approx_stats`, its outline through gdaltransform, and `key value` lines (GDAL's
 * version, profile, image class, size and SHA-256 of each output, when it was converted).
 */
export const WORKER_FACTS = { gdalinfo: 'cog.gdalinfo.json', footprint: 'footprint.txt', facts: 'facts.txt' };

/**
 * The worker's `cog_options` cases: per profile and class, the gdal_translate options
 * `cogCommand(planCog(image, settings))` gives (the watch's `--co` options merged in by planCog),
 * and whether the profile is lossless. A class no image of which the profile holds has no case.
 */
function cogOptionCases(conversion: ConversionSettings): string {
  const cases: string[] = [];
  for (const profile of PROFILES) {
    for (const [cls, probes] of Object.entries(CLASS_PROBES)) {
      const plans = probes
        .filter((info) => unfit(profile, info) === undefined)
        .map((info) => {
          const plan = planCog(info, { ...conversion, profile });
          return { args: cogCommand(plan, '', '').slice(0, -2), lossless: plan.lossless };
        });
      const first = plans[0];
      if (first === undefined) continue;
      if (plans.some((p) => JSON.stringify(p) !== JSON.stringify(first))) {
        throw new CogdError(
          'Template',
          `the ${profile} profile's COG options differ between ${cls} images: the worker's image classes no longer follow planCog`,
        );
      }
      cases.push(
        `    ${profile}/${cls}) cog=(${first.args.map(shellWord).join(' ')}) lossless=${first.lossless ? 'yes' : 'no'} ;;`,
      );
    }
  }
  return cases.join('\n');
}

/** The worker's constants and the watch's settings, by the name the template gives them. */
function workerValues(conversion: ConversionSettings): Record<string, string> {
  const background = backgroundRgb(conversion.previewBackground);
  // The gray previewVrt paints a one-band preview's masked pixels with.
  const grayVrt = previewVrt(
    { bands: [1], expand: false, windows: [undefined], masked: true, background },
    probe([{ type: 'Byte' }]),
    'probe.tif',
  );
  const grayFill = /<ScaleOffset>([^<]*)<\/ScaleOffset><ScaleRatio>0<\/ScaleRatio>/.exec(grayVrt)?.[1];
  if (grayFill === undefined)
    throw new CogdError(
      'Template',
      'previewVrt no longer paints the background with a constant source: update the worker',
    );
  return {
    PROFILE: shellWord(conversion.profile),
    AUTO_RGB: autoProfile(probe(RGB('Byte'))),
    AUTO_OTHER: autoProfile(probe([{ type: 'UInt16' }])),
    WANT_CHECKSUM: wantsChecksum(conversion) ? 'yes' : 'no',
    JPEG_QUALITY: String(JPEG_QUALITY),
    GRAY_MAX_BANDS: String(GRAY_MAX_BANDS),
    STRETCH_SIGMAS: String(STRETCH_SIGMAS),
    PREVIEWABLE: [...PREVIEWABLE].join(' '),
    INTEGER_TYPES: GDAL_TYPES.filter(isInteger).join(' '),
    FLOAT_TYPES: GDAL_TYPES.filter(isFloat).join(' '),
    JPEG_MAX_SIDE: String(JPEG_MAX_SIDE),
    PREVIEW_MAX_SIZE: conversion.previewMaxSize === undefined ? "''" : String(conversion.previewMaxSize),
    BACKGROUND: background.join(' '),
    GRAY_FILL: grayFill,
    COG_OPTIONS: cogOptionCases(conversion),
    STAC: conversion.stac ? 'yes' : 'no',
    STAC_GDALINFO: WORKER_FACTS.gdalinfo,
    STAC_FOOTPRINT: WORKER_FACTS.footprint,
    STAC_FACTS: WORKER_FACTS.facts,
    EDGE_POINTS: String(EDGE_POINTS),
    FOOTPRINT_TIMEOUT_S: String(Math.ceil(FOOTPRINT_TIMEOUT_MS / 1000)),
  };
}

/**
 * The worker script for a run: the rules' constants and the run's watch's conversion settings
 * filled in. User values (`--co` options) are bash words, quoted: data, never syntax.
 */
export async function renderWorker(conversion: ConversionSettings, template?: string): Promise<string> {
  const text = template ?? (await readFile(`${TEMPLATES_DIR}cog-worker.sh.in`, 'utf8'));
  const values = workerValues(conversion);
  return text.replace(/@@([A-Z_]+)@@/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new CogdError('Template', `the worker template names an unknown rule @@${name}@@`);
    return value;
  });
}

/**
 * Fills `{{name}}` fields of a submit description. Every field must be given, and no value may
 * carry a newline or a double quote: a value can never add a command to the description.
 */
export function renderSubmit(template: string, fields: Record<string, string>): string {
  for (const [name, value] of Object.entries(fields)) {
    if (/[\n\r"]/.test(value))
      throw new CogdError(
        'Template',
        `the submit field ${name} may not contain a newline or a double quote: ${JSON.stringify(value)}`,
      );
  }
  return template.replace(/\{\{([a-z_]+)\}\}/g, (_, name: string) => {
    const value = fields[name];
    if (value === undefined)
      throw new CogdError('Template', `the submit template names an unknown field {{${name}}}`, {
        hint: 'see submit-templates/cog.sub for the fields cogd fills',
      });
    return value;
  });
}

/**
 * Why a key cannot travel through HTCondor's `queue ... from` item data, or undefined when it can.
 * Item data splits on commas and white space and expands `$(...)`; a key with any of those (or a
 * quote, `=`, `;`) could change the submit description, so such rows are rejected.
 */
export function condorUnsafeKey(key: string): string | undefined {
  const bad = /[^A-Za-z0-9._/+-]/.exec(key);
  if (bad === null) return undefined;
  return `the key contains ${JSON.stringify(bad[0])}, which HTCondor item data cannot carry safely (use letters, digits and . _ / + - only, or --executor local)`;
}

/** One line of item data: input key, COG key, preview key, log name. */
export function itemLine(item: { inputKey: string; cogKey: string; previewKey: string; logName: string }): string {
  for (const key of [item.inputKey, item.cogKey, item.previewKey, item.logName]) {
    const reason = condorUnsafeKey(key);
    if (reason !== undefined) throw new CogdError('UnsafeKey', reason);
  }
  return `${item.inputKey}, ${item.cogKey}, ${item.previewKey}, ${item.logName}`;
}
