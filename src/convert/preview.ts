/**
 * True previews. Bands are chosen by their roles (Red, Green, Blue, Gray, Palette), not their
 * position — falling back to the reference tool's rule (1 or 2 bands → band 1; 3 or more → 1, 2, 3)
 * where roles are undefined. Pixels the image marks invalid (nodata, alpha 0, its mask) are drawn in
 * a fixed background colour and left out of the stretch, so a gap never reads as dark data. 16-bit
 * and float data are stretched to 8 bits (mean ± 2.5σ within min/max, from GDAL's statistics, which
 * skip nodata); 1-bit images are drawn black and white, palettes expanded to their colours. Images
 * over JPEG's 65,500 pixels on a side (or `--preview-max-size`) are scaled down to fit.
 *
 * Masked previews go through a small VRT: per output band a constant background source, then the
 * scaled data composited over it through the source's own mask (`UseMaskBand`).
 */
import { PermanentError } from '../errors.js';
import type { ConversionSettings } from '../types.js';
import { hasMask, roleOf, type ImageInfo } from './image.js';
import { GRAY_MAX_BANDS, JPEG_QUALITY, PREVIEWABLE, scaleWindow } from './rules.js';

/** JPEG's largest side. */
export const JPEG_MAX_SIDE = 65_500;

export interface PreviewPlan {
  /** Source bands in output order: one (gray) or three (RGB). */
  bands: number[];
  /** A palette band expanded to RGB. */
  expand: boolean;
  /** Per output band, the window of values mapped to 0-255; undefined: the values as they are. */
  windows: Array<[number, number] | undefined>;
  /** Whether invalid pixels are painted with the background. */
  masked: boolean;
  background: [number, number, number];
  /** The preview's size, where it is scaled down. */
  outsize?: [number, number];
}

/** A colour as `--preview-background` takes it (already checked) → RGB. */
export function backgroundRgb(colour: string): [number, number, number] {
  if (colour === 'white') return [255, 255, 255];
  if (colour === 'black') return [0, 0, 0];
  if (colour === 'gray' || colour === 'grey') return [128, 128, 128];
  if (colour.startsWith('#'))
    return [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16)) as [number, number, number];
  return colour.split(',').map(Number) as [number, number, number];
}

/** Which bands make the preview, by role first, by position where roles say nothing. */
export function previewBands(info: ImageInfo): { bands: number[]; expand: boolean } {
  if (info.bands.length < 1) throw new PermanentError('NoBands', 'the image has no bands');
  const find = (role: string): number => info.bands.findIndex((b) => roleOf(b) === role) + 1;
  const [red, green, blue] = [find('Red'), find('Green'), find('Blue')];
  if (red > 0 && green > 0 && blue > 0) return { bands: [red, green, blue], expand: false };
  const palette = info.bands.findIndex((b) => b.hasColorTable && b.type === 'Byte') + 1;
  if (palette > 0) return { bands: [palette], expand: true };
  // GDAL calls band 1 of any multi-band MINISBLACK TIFF Gray: a gray role counts only where there
  // are too few bands for colour anyway.
  const data = info.bands.map((_, i) => i + 1).filter((b) => roleOf(info.bands[b - 1]!) !== 'Alpha');
  if (data.length > GRAY_MAX_BANDS) return { bands: data.slice(0, 3), expand: false };
  const gray = find('Gray');
  return { bands: [gray > 0 ? gray : (data[0] ?? 1)], expand: false };
}

/** True when the preview needs per-band statistics (a chosen band that is not 8-bit). */
export function needsStatistics(info: ImageInfo): boolean {
  const { bands, expand } = previewBands(info);
  return !expand && bands.some((b) => info.bands[b - 1]?.type !== 'Byte');
}

export function planPreview(
  info: ImageInfo,
  settings: Pick<ConversionSettings, 'previewBackground' | 'previewMaxSize'>,
): PreviewPlan {
  const { bands, expand } = previewBands(info);
  const windows = bands.map((b): [number, number] | undefined => {
    const band = info.bands[b - 1]!;
    if (!PREVIEWABLE.has(band.type))
      throw new PermanentError(
        'UnsupportedType',
        `band ${b} is ${band.type}; a JPEG preview cannot represent that data type`,
      );
    if (expand) return undefined;
    if (band.type === 'Byte') return band.nbits === 1 ? [0, 1] : undefined;
    return scaleWindow(band);
  });
  const plan: PreviewPlan = {
    bands,
    expand,
    windows,
    masked: !expand && hasMask(info),
    background: backgroundRgb(settings.previewBackground),
  };
  const limit = Math.min(JPEG_MAX_SIDE, settings.previewMaxSize ?? JPEG_MAX_SIDE);
  const longest = Math.max(info.width, info.height);
  if (longest > limit) {
    const f = limit / longest;
    plan.outsize = [Math.max(1, Math.round(info.width * f)), Math.max(1, Math.round(info.height * f))];
  }
  return plan;
}

const xml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The VRT of a masked preview: background, then the scaled data through the source's mask. */
export function previewVrt(plan: PreviewPlan, info: ImageInfo, input: string): string {
  const gray = Math.round(0.299 * plan.background[0] + 0.587 * plan.background[1] + 0.114 * plan.background[2]);
  const bands = plan.bands.map((source, i) => {
    const fill = plan.bands.length === 1 ? gray : plan.background[i]!;
    const window = plan.windows[i];
    const ratio = window === undefined ? 1 : 255 / (window[1] - window[0]);
    const scale =
      window === undefined ? '' : `<ScaleOffset>${-window[0] * ratio}</ScaleOffset><ScaleRatio>${ratio}</ScaleRatio>`;
    const src = `<SourceFilename relativeToVRT="0">${xml(input)}</SourceFilename><SourceBand>${source}</SourceBand>`;
    return [
      `  <VRTRasterBand dataType="Byte" band="${i + 1}">`,
      `    <ColorInterp>${plan.bands.length === 1 ? 'Gray' : ['Red', 'Green', 'Blue'][i]}</ColorInterp>`,
      `    <ComplexSource>${src}<ScaleOffset>${fill}</ScaleOffset><ScaleRatio>0</ScaleRatio></ComplexSource>`,
      `    <ComplexSource>${src}${scale}<UseMaskBand>true</UseMaskBand></ComplexSource>`,
      '  </VRTRasterBand>',
    ].join('\n');
  });
  return `<VRTDataset rasterXSize="${info.width}" rasterYSize="${info.height}">\n${bands.join('\n')}\n</VRTDataset>\n`;
}

/** The gdal_translate arguments that write the JPEG from `source` (the input, or the VRT when masked). */
export function previewCommand(plan: PreviewPlan, source: string, output: string): string[] {
  const args = ['-q', '-of', 'JPEG', '-co', `QUALITY=${JPEG_QUALITY}`];
  if (plan.masked) {
    // The VRT has chosen, scaled and masked the bands already.
  } else {
    for (const b of plan.bands) args.push('-b', String(b));
    if (plan.expand) args.push('-expand', 'rgb');
    else if (plan.windows.some((w) => w !== undefined)) {
      args.push('-ot', 'Byte');
      plan.windows.forEach((w, i) => {
        if (w !== undefined) args.push(`-scale_${i + 1}`, String(w[0]), String(w[1]), '0', '255');
      });
    }
  }
  if (plan.outsize !== undefined) args.push('-outsize', String(plan.outsize[0]), String(plan.outsize[1]));
  args.push(source, output);
  return args;
}
