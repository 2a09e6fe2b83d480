/**
 * The facts a STAC item needs from a COG's `gdalinfo -json -approx_stats` document.
 *
 * Shape and transform are taken from `size` and `geoTransform`, not from the document's `stac`
 * section: GDAL 3.6 writes `proj:shape` as [width, height] (STAC wants [rows, columns]; fixed in
 * GDAL 3.8.5, OSGeo/gdal#9337) and `proj:transform` in GDAL's geotransform order (STAC wants the
 * affine order; fixed in GDAL 3.12.1, OSGeo/gdal#13358). Read this way, items are the same
 * whichever GDAL wrote the document. `proj:epsg` is GDAL's own identification of the CRS.
 */

/** A band, as the raster extension describes it. */
export interface BandFacts {
  /** The raster extension's name for the type: uint8, int16, float32… ("other" for what it has no name for). */
  dataType: string;
  nodata?: number | 'nan' | 'inf' | '-inf';
  /** What `-approx_stats` found, named as the raster extension names them; valid_percent is GDAL's STATISTICS_VALID_PERCENT. */
  statistics: Partial<Record<'minimum' | 'maximum' | 'mean' | 'stddev' | 'valid_percent', number>>;
}

export interface RasterFacts {
  width: number;
  height: number;
  /**
   * How the pixels are placed on the Earth. A geotransform or GCPs without a coordinate system do
   * not place them anywhere (gdaltransform would take their numbers for longitudes and latitudes),
   * so they count as none.
   */
  georeferencing: 'geotransform' | 'gcps' | null;
  /** GDAL's geotransform [x0, dx, rx, y0, ry, dy], when georeferencing is 'geotransform'. */
  geoTransform?: [number, number, number, number, number, number];
  /** The raster's CRS as WKT2 and its EPSG code (null when it has none), when georeferencing is 'geotransform'. */
  crs?: { wkt2: string; epsg: number | null };
  bands: BandFacts[];
  /** The TIFF DateTime tag as GDAL reports it (`2021:03:04 10:11:12`), when the file has one. */
  tiffDateTime?: string;
}

type Doc = Record<string, unknown>;

function isRecord(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function record(value: unknown): Doc {
  return isRecord(value) ? value : {};
}

function finite(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** GDAL's band type names → the raster extension's `data_type`. */
const DATA_TYPES: Record<string, string> = {
  Byte: 'uint8',
  Int8: 'int8',
  UInt16: 'uint16',
  Int16: 'int16',
  UInt32: 'uint32',
  Int32: 'int32',
  UInt64: 'uint64',
  Int64: 'int64',
  Float32: 'float32',
  Float64: 'float64',
  CInt16: 'cint16',
  CInt32: 'cint32',
  CFloat32: 'cfloat32',
  CFloat64: 'cfloat64',
};

/** gdalinfo writes non-finite nodata values as strings ("NaN", "Infinity", "-Infinity"); STAC spells them nan, inf, -inf. */
function nodataOf(value: unknown): BandFacts['nodata'] {
  const n = finite(value);
  if (n !== undefined) return n;
  if (typeof value !== 'string') return undefined;
  const word = value.trim().toLowerCase();
  if (word === 'nan') return 'nan';
  if (word === 'inf' || word === 'infinity' || word === '+infinity') return 'inf';
  if (word === '-inf' || word === '-infinity') return '-inf';
  return undefined;
}

function bandFacts(value: unknown): BandFacts {
  const band = record(value);
  const type = typeof band['type'] === 'string' ? band['type'] : '';
  const facts: BandFacts = { dataType: DATA_TYPES[type] ?? 'other', statistics: {} };
  const nodata = nodataOf(band['noDataValue']);
  if (nodata !== undefined) facts.nodata = nodata;
  const stats = [
    ['minimum', band['minimum']],
    ['maximum', band['maximum']],
    ['mean', band['mean']],
    ['stddev', band['stdDev']],
    ['valid_percent', record(record(band['metadata'])[''])['STATISTICS_VALID_PERCENT']],
  ] as const;
  for (const [name, raw] of stats) {
    const n = finite(raw);
    if (n !== undefined) facts.statistics[name] = n;
  }
  return facts;
}

/** The EPSG code GDAL found for the CRS, else the top-level `ID["EPSG",n]` that ends the WKT. */
function epsgOf(stac: Doc, wkt: string): number | null {
  const code = stac['proj:epsg'];
  if (typeof code === 'number' && Number.isInteger(code)) return code;
  const match = /ID\["EPSG",(\d+)\]\]\s*$/.exec(wkt);
  return match ? Number(match[1]) : null;
}

/** Reads a `gdalinfo -json` document (its text, or parsed). Throws when it has no size. */
export function rasterFacts(gdalinfo: unknown): RasterFacts {
  const doc = record(typeof gdalinfo === 'string' ? JSON.parse(gdalinfo) : gdalinfo);
  const size = Array.isArray(doc['size']) ? doc['size'] : [];
  const width = finite(size[0]);
  const height = finite(size[1]);
  if (width === undefined || height === undefined) throw new Error('gdalinfo -json document without a size');
  const facts: RasterFacts = {
    width,
    height,
    georeferencing: null,
    bands: (Array.isArray(doc['bands']) ? doc['bands'] : []).map(bandFacts),
  };
  const wkt = record(doc['coordinateSystem'])['wkt'];
  const gt = Array.isArray(doc['geoTransform']) ? doc['geoTransform'].map(finite) : [];
  if (typeof wkt === 'string' && wkt !== '' && gt.length === 6 && gt.every((n) => n !== undefined)) {
    facts.georeferencing = 'geotransform';
    facts.geoTransform = gt as RasterFacts['geoTransform'];
    facts.crs = { wkt2: wkt, epsg: epsgOf(record(doc['stac']), wkt) };
  } else {
    const gcps = record(doc['gcps']);
    const gcpWkt = record(gcps['coordinateSystem'])['wkt'];
    const list = gcps['gcpList'];
    if (typeof gcpWkt === 'string' && gcpWkt !== '' && Array.isArray(list) && list.length > 0) {
      facts.georeferencing = 'gcps';
    }
  }
  const datetime = record(record(doc['metadata'])[''])['TIFFTAG_DATETIME'];
  if (typeof datetime === 'string' && datetime.trim() !== '') facts.tiffDateTime = datetime.trim();
  return facts;
}
