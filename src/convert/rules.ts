/**
 * The conversion's constants and limits, defined once (profiles.ts makes the COG, preview.ts the
 * JPEG). The local executor runs them; the HTCondor worker is generated from them.
 *
 * - JPEG previews at quality 80; 16-bit and float data scaled to 8 bits from the image's statistics
 *   (mean ± 2.5 standard deviations, clamped to min/max), so they give a visible preview instead of
 *   a black or 12-bit JPEG.
 * - What an input may be before it is rejected unconverted.
 */
import { PermanentError } from '../errors.js';

export type { BandInfo, ImageInfo } from './image.js';
import type { BandInfo, ImageInfo } from './image.js';

export const JPEG_QUALITY = 80;

/** Data types a preview can be scaled from (complex types cannot). */
export const PREVIEWABLE = new Set([
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
]);

/** Standard deviations either side of the mean that the 8-bit preview window spans. */
export const STRETCH_SIGMAS = 2.5;

/** Images with at most this many bands make a gray preview from band 1; others use bands 1, 2, 3. */
export const GRAY_MAX_BANDS = 2;

/** The 8-bit window of a band: mean ± 2.5σ clamped to [min, max], never empty. */
export function scaleWindow(band: BandInfo): [number, number] {
  const { min, max, mean, stdDev } = band;
  if (min === undefined || max === undefined) {
    throw new PermanentError(
      'NoStatistics',
      `no statistics for a ${band.type} band (all pixels nodata?); cannot scale the preview`,
    );
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
    throw new PermanentError(
      'TooLarge',
      `the image is ${info.width} × ${info.height} = ${pixels} pixels, over the limit of ${limits.maxPixels}`,
      {
        hint: 'raise --max-pixels if this is intended',
      },
    );
  }
  if (info.bands.length > limits.maxBands) {
    throw new PermanentError(
      'TooManyBands',
      `the image has ${info.bands.length} bands, over the limit of ${limits.maxBands}`,
      {
        hint: 'raise --max-bands if this is intended',
      },
    );
  }
  for (const [i, band] of info.bands.slice(0, 3).entries()) {
    if (!PREVIEWABLE.has(band.type)) {
      throw new PermanentError(
        'UnsupportedType',
        `band ${i + 1} is ${band.type}; a JPEG preview cannot represent that data type`,
      );
    }
  }
}
