/**
 * Fidelity: an output counts only once it still is the input — same size, georeferencing (CRS and
 * geotransform, or GCPs), bands, data types, nodata, colour interpretation, palette and mask — and,
 * for lossless profiles, the same pixels (GDAL's per-band checksums). Compared from `gdalinfo -json`
 * of both files; each difference is said in words.
 */
import type { BandInfo, ImageInfo } from './image.js';

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Geotransforms agree to the last few significant digits (they are written back as doubles). */
function sameTransform(a: number[] | undefined, b: number[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= 1e-9 * Math.max(1, Math.abs(v)));
}

const show = (value: unknown): string =>
  value === undefined ? 'none' : typeof value === 'string' ? value : JSON.stringify(value);

/** The mask a band has beyond its own values: none, an alpha band, or a per-dataset mask. */
function maskKind(bands: BandInfo[]): 'none' | 'alpha' | 'mask' {
  if (bands.some((b) => b.colorInterpretation === 'Alpha')) return 'alpha';
  const flags = bands[0]?.maskFlags ?? [];
  return flags.includes('PER_DATASET') && !flags.includes('ALPHA') ? 'mask' : 'none';
}

/**
 * What differs between input and output; empty when the output is faithful. `alphaToMask`: the
 * profile turns an alpha band into a mask (JPEG), which then stands for it.
 */
export function differences(
  input: ImageInfo,
  output: ImageInfo,
  options: { exactBands: readonly number[]; alphaToMask?: boolean },
): string[] {
  const found: string[] = [];
  if (input.width !== output.width || input.height !== output.height) {
    found.push(`size ${input.width} x ${input.height} became ${output.width} x ${output.height}`);
  }
  if (!same(input.crs, output.crs))
    found.push(
      input.crs === undefined ? 'a CRS was added' : output.crs === undefined ? 'the CRS was lost' : 'the CRS changed',
    );
  if (!sameTransform(input.geoTransform, output.geoTransform))
    found.push(`the geotransform ${show(input.geoTransform)} became ${show(output.geoTransform)}`);
  if ((input.gcps ?? 0) !== (output.gcps ?? 0)) found.push(`${input.gcps ?? 0} GCPs became ${output.gcps ?? 0}`);

  let inBands = input.bands;
  const inMask = maskKind(input.bands);
  const outMask = maskKind(output.bands);
  if (options.alphaToMask === true && inMask === 'alpha' && outMask === 'mask')
    inBands = input.bands.filter((b) => b.colorInterpretation !== 'Alpha');
  else if (inMask !== outMask)
    found.push(
      `the ${inMask === 'none' ? 'absence of a mask' : inMask === 'alpha' ? 'alpha band' : 'mask'} became ${outMask === 'none' ? 'no mask' : outMask === 'alpha' ? 'an alpha band' : 'a mask'}`,
    );

  if (inBands.length !== output.bands.length) {
    found.push(`${inBands.length} bands became ${output.bands.length}`);
    return found;
  }
  inBands.forEach((a, i) => {
    const b = output.bands[i]!;
    const band = `band ${i + 1}`;
    if (a.type !== b.type) found.push(`${band} type ${a.type} became ${b.type}`);
    if (!same(a.nodata, b.nodata)) found.push(`${band} nodata ${show(a.nodata)} became ${show(b.nodata)}`);
    if ((a.colorInterpretation ?? 'Undefined') !== (b.colorInterpretation ?? 'Undefined')) {
      found.push(
        `${band} colour interpretation ${a.colorInterpretation ?? 'Undefined'} became ${b.colorInterpretation ?? 'Undefined'}`,
      );
    }
    if (!same(a.colorTable, b.colorTable))
      found.push(
        `${band} palette ${a.colorTable === undefined ? 'was added' : b.colorTable === undefined ? 'was lost' : 'changed'}`,
      );
    if (options.exactBands.includes(i + 1) && a.checksum !== undefined && a.checksum !== b.checksum) {
      found.push(
        `${band} pixels changed (checksum ${a.checksum} became ${show(b.checksum)}) although the profile is lossless`,
      );
    }
  });
  return found;
}
