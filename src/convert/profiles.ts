/**
 * COG profiles: named sets of creation options, as rio-cogeo and production imagery teams publish
 * them, and the rules that fit them to an image.
 *
 * - lzw (default; the reference tool's output), deflate, zstd: lossless, with the predictor the data
 *   type takes (2 for integers, 3 for floating point; none for palettes and 1-bit data);
 * - webp: lossless (QUALITY=100) for 3 or 4 Byte bands (RGB, RGBA);
 * - jpeg: lossy, for RGB Byte; an alpha band becomes an internal mask; refused on data with nodata;
 * - lerc: for floating point and DEM data, lossless unless `--max-z-error` allows an error;
 * - auto: webp for RGB(A) Byte, zstd for everything else.
 * Every profile: overviews resampled by content (nearest for palettes and 1-bit data, average
 * for continuous data) unless `--overview-resampling` says otherwise, and BIGTIFF=IF_SAFER.
 */
import { PermanentError } from '../errors.js';
import type { ConversionSettings, ProfileName } from '../types.js';
import { isFloat, isInteger, type ImageInfo } from './image.js';

export type ConcreteProfile = Exclude<ProfileName, 'auto'>;

/** How images are converted where nothing says otherwise: the reference tool's COG, full-size previews on white. */
export const DEFAULT_CONVERSION: ConversionSettings = {
  profile: 'lzw',
  creationOptions: [],
  overviewResampling: undefined,
  maxZError: 0,
  previewBackground: 'white',
  previewMaxSize: undefined,
  stac: true,
  stacItemSuffix: '.json',
  stacCollection: 'collection.json',
  rowsPerJob: 1,
};

export interface CogPlan {
  profile: ConcreteProfile;
  /** Creation options in the order they are passed. */
  options: Array<[string, string]>;
  /** Whether the pixels come out identical (the fidelity check then compares checksums). */
  lossless: boolean;
  /**
   * Bands whose pixels must come out identical (checksums compared): every band of a lossless
   * profile — but for lossless WebP with alpha, only the alpha band: WebP drops the colour of fully
   * transparent pixels, which no one sees.
   */
  exactBands: number[];
}

const CODEC: Record<ConcreteProfile, string> = {
  lzw: 'LZW',
  deflate: 'DEFLATE',
  zstd: 'ZSTD',
  webp: 'WEBP',
  jpeg: 'JPEG',
  lerc: 'LERC',
};

/** Codecs that take a TIFF predictor. */
const PREDICTED = new Set<ConcreteProfile>(['lzw', 'deflate', 'zstd']);

/** Whether the band values are categories (palette indices, 1-bit classes) rather than measures. */
function categorical(info: ImageInfo): boolean {
  return info.bands.some((b) => b.hasColorTable || b.nbits === 1);
}

/** RGB or RGBA in Byte: what WEBP and JPEG can hold. */
function byteRgb(info: ImageInfo, alphaAllowed: boolean): boolean {
  const n = info.bands.length;
  if (!info.bands.every((b) => b.type === 'Byte' && !b.hasColorTable)) return false;
  if (n === 3) return true;
  return alphaAllowed && n === 4 && info.bands[3]?.colorInterpretation === 'Alpha';
}

/** The profile `auto` picks: webp for RGB Byte, zstd for the rest (RGBA too: its pixels stay exact). */
export function autoProfile(info: ImageInfo): ConcreteProfile {
  return byteRgb(info, false) ? 'webp' : 'zstd';
}

/** Why a profile cannot hold the image (naming one that can), or undefined when it can. */
export function unfit(profile: ConcreteProfile, info: ImageInfo): string | undefined {
  const what = `${info.bands.length} ${info.bands[0]?.type ?? ''} band${info.bands.length === 1 ? '' : 's'}${info.bands.some((b) => b.hasColorTable) ? ' with a palette' : ''}`;
  const instead = `use --profile ${autoProfile(info)} (or auto)`;
  if (profile === 'webp' && !byteRgb(info, true))
    return `the webp profile holds 3 or 4 Byte bands (RGB or RGBA); this image has ${what}: ${instead}`;
  if (profile === 'jpeg') {
    if (!byteRgb(info, true)) return `the jpeg profile holds RGB Byte images; this image has ${what}: ${instead}`;
    const roles = info.bands.slice(0, 3).map((b) => b.colorInterpretation ?? 'Undefined');
    if (roles.join() !== 'Red,Green,Blue') {
      return `the jpeg profile stores colour as YCbCr, which reads back as Red, Green, Blue; the bands of this image are ${roles.join(', ')}: use --profile webp`;
    }
    if (info.bands.some((b) => b.nodata !== undefined)) {
      return `the jpeg profile would blur nodata into the image (JPEG is lossy and has no nodata): use --profile webp for a lossless RGB COG`;
    }
  }
  if (profile === 'lerc' && categorical(info))
    return `the lerc profile is for measured values, not palette indices or classes: use --profile deflate or zstd`;
  return undefined;
}

/** The predictor the data type takes with this codec, if any. */
function predictor(profile: ConcreteProfile, info: ImageInfo): string | undefined {
  const type = info.bands[0]?.type ?? 'Byte';
  if (!PREDICTED.has(profile) || categorical(info)) return undefined;
  if (isFloat(type)) return '3';
  return isInteger(type) ? '2' : undefined;
}

/** GDAL's creation options from `--co KEY=VALUE` strings (keys upper-case, as checked at start). */
export function creationOptionPairs(list: readonly string[]): Array<[string, string]> {
  return list.map((item) => {
    const at = item.indexOf('=');
    return [item.slice(0, at).toUpperCase(), item.slice(at + 1)];
  });
}

/**
 * The creation options for this image under the watch's settings. A profile that cannot hold the
 * image fails it permanently, with a reason that names one that can.
 */
export function planCog(info: ImageInfo, settings: ConversionSettings): CogPlan {
  const profile = settings.profile === 'auto' ? autoProfile(info) : settings.profile;
  const reason = unfit(profile, info);
  if (reason !== undefined) throw new PermanentError('ProfileUnfit', reason);
  const options = new Map<string, string>([['COMPRESS', CODEC[profile]]]);
  const pred = predictor(profile, info);
  if (pred !== undefined) options.set('PREDICTOR', pred);
  if (profile === 'webp') options.set('QUALITY', '100');
  if (profile === 'lerc') options.set('MAX_Z_ERROR', String(settings.maxZError));
  options.set(
    'OVERVIEW_RESAMPLING',
    (settings.overviewResampling ?? (categorical(info) ? 'nearest' : 'average')).toUpperCase(),
  );
  options.set('BIGTIFF', 'IF_SAFER');
  for (const [key, value] of creationOptionPairs(settings.creationOptions)) options.set(key, value);
  const lossless =
    profile === 'jpeg'
      ? false
      : profile === 'webp'
        ? options.get('QUALITY') === '100'
        : profile === 'lerc'
          ? Number(options.get('MAX_Z_ERROR')) === 0
          : true;
  const all = info.bands.map((_, i) => i + 1);
  const exactBands = !lossless ? [] : profile === 'webp' && info.bands.length === 4 ? [4] : all;
  return { profile, options: [...options], lossless, exactBands };
}

/**
 * The gdal_translate arguments that write the COG. The overview resampling is also recorded in the
 * file's metadata (`OVR_RESAMPLING_ALG`, as rio-cogeo writes it): GDAL keeps no trace of it.
 */
export function cogCommand(plan: CogPlan, input: string, output: string): string[] {
  const resampling = plan.options.find(([key]) => key === 'OVERVIEW_RESAMPLING')?.[1];
  return [
    '-q',
    '-of',
    'COG',
    ...plan.options.flatMap(([key, value]) => ['-co', `${key}=${value}`]),
    ...(resampling === undefined ? [] : ['-mo', `OVR_RESAMPLING_ALG=${resampling}`]),
    input,
    output,
  ];
}

/**
 * Whether the input's checksums are needed: the profile is lossless, or may be (auto). Known before
 * the image is inspected, so one gdalinfo reads both.
 */
export function wantsChecksum(settings: ConversionSettings): boolean {
  const options = new Map(creationOptionPairs(settings.creationOptions));
  if (settings.profile === 'jpeg') return false;
  if (settings.profile === 'webp') return (options.get('QUALITY') ?? '100') === '100';
  if (settings.profile === 'lerc') return Number(options.get('MAX_Z_ERROR') ?? settings.maxZError) === 0;
  return true;
}
