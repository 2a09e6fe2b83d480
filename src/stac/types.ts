/**
 * The shapes of the STAC 1.0.0 documents cogd writes, kept to what it fills in: a reader of these
 * types sees every field an item or collection of cogd's can have, and nothing it never writes.
 */

/** `[longitude, latitude]` in OGC:CRS84 order (GeoJSON's). */
export type Position = [number, number];

export interface Polygon {
  type: 'Polygon';
  coordinates: Position[][];
}

export interface MultiPolygon {
  type: 'MultiPolygon';
  coordinates: Position[][][];
}

/** `[west, south, east, north]`; west > east when the box crosses the antimeridian (RFC 7946 §5.2). */
export type BBox = [number, number, number, number];

export interface Link {
  rel: string;
  href: string;
  type?: string;
  title?: string;
}

/** A band of the raster extension (v1.1.0). */
export interface RasterBand {
  data_type: string;
  nodata?: number | 'nan' | 'inf' | '-inf';
  spatial_resolution?: number;
  statistics?: { minimum?: number; maximum?: number; mean?: number; stddev?: number; valid_percent?: number };
}

export interface Asset {
  href: string;
  type: string;
  title?: string;
  roles: string[];
  'file:size': number;
  'file:checksum': string;
  'raster:bands'?: RasterBand[];
}

export interface StacItem {
  type: 'Feature';
  stac_version: '1.0.0';
  stac_extensions: string[];
  id: string;
  collection: string;
  geometry: Polygon | MultiPolygon | null;
  bbox?: BBox;
  properties: Record<string, unknown> & { datetime: string };
  links: Link[];
  assets: Record<string, Asset>;
}

export interface StacCollection {
  type: 'Collection';
  stac_version: '1.0.0';
  stac_extensions: string[];
  id: string;
  title?: string;
  description: string;
  license: string;
  extent: {
    spatial: { bbox: BBox[] };
    temporal: { interval: Array<[string | null, string | null]> };
  };
  links: Link[];
  /** Present (true) until the first item with a bbox is added: see collection.ts. */
  'cogd:spatial_extent_unset'?: true;
}

/** The `$id`s of the extensions cogd's items use, as `stac_extensions` lists them. */
export const EXTENSIONS = {
  projection: 'https://stac-extensions.github.io/projection/v1.1.0/schema.json',
  raster: 'https://stac-extensions.github.io/raster/v1.1.0/schema.json',
  file: 'https://stac-extensions.github.io/file/v2.1.0/schema.json',
  processing: 'https://stac-extensions.github.io/processing/v1.2.0/schema.json',
} as const;
