/**
 * The conversion rules, defined once. The local executor runs these argument lists; the HTCondor
 * worker is generated from them.
 *
 * - COG: `-of COG -co COMPRESS=LZW` (the reference tool's default).
 * - JPEG preview, quality 80. Bands: 1 → 1; 2 (gray + alpha) → 1; 3 → 1,2,3; 4 or more → 1,2,3.
 *   A paletted band is expanded to RGB. Anything but Byte is scaled to 8 bits from the image's
 *   statistics (mean ± 2.5 standard deviations, clamped to min/max), so 16-bit and float imagery
 *   gives a visible preview instead of a black or 12-bit JPEG.
 */
import { PermanentError } from '../errors.js';

export interface BandInfo {
  type: string;
  colorInterpretation?: string;
  hasColorTable: boolean;
  min?: number;
  max?: number;
  mean?: number;
  stdDev?: number;
}

export interface ImageInfo {
  driver: string;
  width: number;
  height: number;
  bands: BandInfo[];
}

export const COG_OPTIONS = { compress: 'LZW' } as const;
export const JPEG_QUALITY = 80;

export function cogArgs(input: string, output: string): string[] {
  return ['-q', '-of', 'COG', '-co', `COMPRESS=${COG_OPTIONS.compress}`, input, output];
}

/** Which source bands make the preview. */
export function previewBands(bandCount: number): number[] {
  if (bandCount < 1) throw new PermanentError('NoBands', 'the image has no bands');
  return bandCount <= GRAY_MAX_BANDS ? [1] : [1, 2, 3];
}

/** True when the preview needs per-band statistics (anything but 8-bit). */
export function needsStatistics(info: ImageInfo): boolean {
  return previewBands(info.bands.length).some((b) => info.bands[b - 1]?.type !== 'Byte');
}

/** Data types a preview can be scaled from (complex types cannot). */
export const PREVIEWABLE = new Set(['Byte', 'Int8', 'UInt16', 'Int16', 'UInt32', 'Int32', 'UInt64', 'Int64', 'Float32', 'Float64']);

/** Standard deviations either side of the mean that the 8-bit preview window spans. */
export const STRETCH_SIGMAS = 2.5;

/** Images with at most this many bands make a gray preview from band 1; others use bands 1, 2, 3. */
export const GRAY_MAX_BANDS = 2;

/** The 8-bit window of a band: mean ± 2.5σ clamped to [min, max], never empty. */
export function scaleWindow(band: BandInfo): [number, number] {
  const { min, max, mean, stdDev } = band;
  if (min === undefined || max === undefined) {
    throw new PermanentError('NoStatistics', `no statistics for a ${band.type} band (all pixels nodata?); cannot scale the preview`);
  }
  let lo = min;
  let hi = max;
  if (mean !== undefined && stdDev !== undefined && stdDev > 0) {
    lo = Math.max(min, mean - STRETCH_SIGMAS * stdDev);
    hi = Math.min(max, mean + STRETCH_SIGMAS * stdDev);
  }
  if (!(hi > lo)) hi = lo + 1;
  return [lo, hi];
}

export function jpegArgs(info: ImageInfo, input: string, output: string): string[] {
  const bands = previewBands(info.bands.length);
  const args = ['-q', '-of', 'JPEG', '-co', `QUALITY=${JPEG_QUALITY}`];
  for (const b of bands) args.push('-b', String(b));
  const first = info.bands[0];
  if (bands.length === 1 && first !== undefined && first.hasColorTable && first.type === 'Byte') {
    args.push('-expand', 'rgb');
  } else if (needsStatistics(info)) {
    args.push('-ot', 'Byte');
    bands.forEach((b, i) => {
      const band = info.bands[b - 1]!;
      if (!PREVIEWABLE.has(band.type)) {
        throw new PermanentError('UnsupportedType', `band ${b} is ${band.type}; a JPEG preview cannot represent that data type`);
      }
      const [lo, hi] = scaleWindow(band);
      args.push(`-scale_${i + 1}`, String(lo), String(hi), '0', '255');
    });
  }
  args.push(input, output);
  return args;
}

/** What an input may be before it is rejected without conversion. */
export interface Limits {
  /** @defaultValue 2,000,000,000 pixels (about 45k × 45k) */
  maxPixels: number;
  /** @defaultValue 64 */
  maxBands: number;
}

export const DEFAULT_LIMITS: Limits = { maxPixels: 2_000_000_000, maxBands: 64 };

/** Rejects, before any conversion, what cannot work or would only exhaust the machine. */
export function checkLimits(info: ImageInfo, limits: Limits): void {
  const pixels = info.width * info.height;
  if (info.width <= 0 || info.height <= 0) {
    throw new PermanentError('BadDimensions', `the image claims ${info.width} × ${info.height} pixels`);
  }
  if (pixels > limits.maxPixels) {
    throw new PermanentError('TooLarge', `the image is ${info.width} × ${info.height} = ${pixels} pixels, over the limit of ${limits.maxPixels}`, {
      hint: 'raise --max-pixels if this is intended',
    });
  }
  if (info.bands.length > limits.maxBands) {
    throw new PermanentError('TooManyBands', `the image has ${info.bands.length} bands, over the limit of ${limits.maxBands}`, {
      hint: 'raise --max-bands if this is intended',
    });
  }
  for (const [i, band] of info.bands.slice(0, 3).entries()) {
    if (!PREVIEWABLE.has(band.type)) {
      throw new PermanentError('UnsupportedType', `band ${i + 1} is ${band.type}; a JPEG preview cannot represent that data type`);
    }
  }
}
