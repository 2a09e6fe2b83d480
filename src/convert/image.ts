/**
 * What GDAL says about an image (`gdalinfo -json`, with `-checksum` and `-approx_stats` where they
 * are needed): the facts the rules plan from and the fidelity check compares.
 */

export interface BandInfo {
  type: string;
  /** Red, Green, Blue, Gray, Alpha, Palette, Undefined… */
  colorInterpretation?: string;
  hasColorTable: boolean;
  /** The palette's entries as [c1, c2, c3, c4] (RGBA), when the band has one. */
  colorTable?: number[][];
  /** The band's nodata value (a number, or "nan", "inf", "-inf" as gdalinfo writes them). */
  nodata?: number | string;
  /** GDAL's mask flags of the band: ALL_VALID, PER_DATASET, ALPHA, NODATA. */
  maskFlags?: string[];
  /** Significant bits below the type's size (1-bit images are Byte with NBITS=1). */
  nbits?: number;
  /** GDAL's checksum of the band's pixels (`-checksum`). */
  checksum?: number;
  min?: number;
  max?: number;
  mean?: number;
  stdDev?: number;
  /** Overviews the band has. */
  overviews?: number;
  /** The band's block size [width, height]. */
  block?: [number, number];
}

export interface ImageInfo {
  driver: string;
  width: number;
  height: number;
  bands: BandInfo[];
  /** The coordinate system as WKT, when there is one. */
  crs?: string;
  geoTransform?: number[];
  /** Ground control points, when the image is georeferenced by them instead. */
  gcps?: number;
  /** The IMAGE_STRUCTURE metadata (COMPRESSION, LAYOUT, INTERLEAVE…). */
  structure?: Record<string, string>;
}

interface GdalinfoBand {
  type?: string;
  colorInterpretation?: string;
  colorTable?: { entries?: number[][] };
  noDataValue?: number | string;
  mask?: { flags?: string[] };
  metadata?: { IMAGE_STRUCTURE?: { NBITS?: string } };
  checksum?: number;
  minimum?: number;
  maximum?: number;
  mean?: number;
  stdDev?: number;
  overviews?: unknown[];
  block?: number[];
}

interface GdalinfoDoc {
  driverShortName?: string;
  size?: number[];
  bands?: GdalinfoBand[];
  coordinateSystem?: { wkt?: string };
  geoTransform?: number[];
  gcps?: { gcpList?: unknown[] };
  metadata?: { IMAGE_STRUCTURE?: Record<string, string> };
}

/** Reads `gdalinfo -json` output into the facts the rules need. */
export function parseGdalinfo(json: string): ImageInfo {
  const doc = JSON.parse(json) as GdalinfoDoc;
  const bands: BandInfo[] = (doc.bands ?? []).map((b) => {
    const band: BandInfo = { type: b.type ?? 'Unknown', hasColorTable: b.colorTable !== undefined };
    if (b.colorInterpretation !== undefined) band.colorInterpretation = b.colorInterpretation;
    if (b.colorTable?.entries !== undefined) band.colorTable = b.colorTable.entries;
    if (b.noDataValue !== undefined) band.nodata = b.noDataValue;
    if (b.mask?.flags !== undefined) band.maskFlags = b.mask.flags;
    const nbits = Number(b.metadata?.IMAGE_STRUCTURE?.NBITS);
    if (Number.isInteger(nbits) && nbits > 0) band.nbits = nbits;
    if (typeof b.checksum === 'number') band.checksum = b.checksum;
    if (typeof b.minimum === 'number') band.min = b.minimum;
    if (typeof b.maximum === 'number') band.max = b.maximum;
    if (typeof b.mean === 'number') band.mean = b.mean;
    if (typeof b.stdDev === 'number') band.stdDev = b.stdDev;
    if (b.overviews !== undefined) band.overviews = b.overviews.length;
    if (b.block?.length === 2) band.block = [b.block[0]!, b.block[1]!];
    return band;
  });
  const info: ImageInfo = {
    driver: doc.driverShortName ?? 'unknown',
    width: doc.size?.[0] ?? 0,
    height: doc.size?.[1] ?? 0,
    bands,
  };
  const wkt = doc.coordinateSystem?.wkt;
  if (wkt !== undefined && wkt !== '') info.crs = wkt;
  if (doc.geoTransform !== undefined) info.geoTransform = doc.geoTransform;
  const gcps = doc.gcps?.gcpList?.length ?? 0;
  if (gcps > 0) info.gcps = gcps;
  if (doc.metadata?.IMAGE_STRUCTURE !== undefined) info.structure = doc.metadata.IMAGE_STRUCTURE;
  return info;
}

/** The band's role, as GDAL names it; undefined when it has none worth acting on. */
export function roleOf(band: BandInfo): string | undefined {
  const role = band.colorInterpretation;
  return role === undefined || role === 'Undefined' ? undefined : role;
}

/** Whether the image carries a mask beyond "all valid": nodata, an alpha band, or a mask band. */
export function hasMask(info: ImageInfo): boolean {
  return info.bands.some(
    (b) =>
      b.nodata !== undefined || b.colorInterpretation === 'Alpha' || (b.maskFlags ?? []).some((f) => f !== 'ALL_VALID'),
  );
}

/** True for integer data types, false for floating point. */
export function isInteger(type: string): boolean {
  return /^(Byte|Int8|U?Int(16|32|64))$/.test(type);
}

export function isFloat(type: string): boolean {
  return /^Float(32|64)$/.test(type);
}
