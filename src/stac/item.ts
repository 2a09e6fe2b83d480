/**
 * The STAC 1.0.0 Item of one converted image: where the COG and its preview are, what they hold
 * (projection, bands, statistics), how to check them (size, SHA-256) and how they were made.
 * Pure: every fact comes in, nothing is read or run here, so the item of an image is the same on
 * every machine that converted it the same way.
 */
import { previewKey as previewKeyOf } from '../manifest/names.js';
import type { Footprint } from './antimeridian.js';
import { rasterFacts, type RasterFacts } from './gdalinfo.js';
import { relativeHref, s3Href } from './hrefs.js';
import { EXTENSIONS, type Asset, type RasterBand, type StacItem } from './types.js';

export interface FileFacts {
  /** Bytes, as uploaded. */
  size: number;
  /** SHA-256 of those bytes, hex. */
  sha256: string;
}

export interface ItemFacts {
  /** The COG's key in the output bucket. */
  key: string;
  outputBucket: string;
  /** Where this item is written, in the output bucket (its `self` link; asset hrefs are relative to it). */
  itemKey: string;
  collectionId: string;
  /** The href from the item to its collection (`parent` and `collection` links), relative. */
  collectionHref: string;
  /** The COG's `gdalinfo -json -approx_stats` document (text or parsed). */
  gdalinfo: unknown;
  footprint: Footprint;
  cog: FileFacts;
  preview: FileFacts;
  /** The preview's key. @defaultValue the COG's key with `.jpg` for `.tif`, as cogd names previews */
  previewKey?: string;
  processing: {
    cogdVersion: string;
    /** `gdal_translate --version`'s text ("GDAL 3.6.2, released 2023/01/02"); the item gives its version number. */
    gdalVersion: string;
    /** When the image was converted, ISO 8601 (UTC). */
    datetime: string;
    /** The COG profile (lzw, zstd, webp…) and the creation options passed to GDAL's COG driver. */
    profile: string;
    creationOptions: ReadonlyArray<readonly [string, string]>;
  };
}

export const COG_MEDIA_TYPE = 'image/tiff; application=geotiff; profile=cloud-optimized';

/**
 * The item's id: the COG's key without its `.tif`/`.tiff` extension, `/` kept (`a/b/scene.tif` →
 * `a/b/scene`). Keeping the whole key makes ids unique across a bucket's prefixes (replacing `/`
 * would make `a/b.tif` and `a_b.tif` one id) and lets a reader go from id to object. Only keys that
 * differ in that extension alone share an id — and those already share a preview key, so cogd's
 * outputs cannot tell them apart anyway.
 */
export function itemId(key: string): string {
  return key.replace(/\.tiff?$/i, '');
}

/** A multihash of a SHA-256 digest (0x12 = sha2-256, 0x20 = 32 bytes), as the file extension wants it. */
export function multihashSha256(hex: string): string {
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`not a SHA-256 hex digest: "${hex}"`);
  return `1220${hex.toLowerCase()}`;
}

/**
 * A TIFF DateTime tag (`YYYY:MM:DD HH:MM:SS`, no time zone) as an ISO instant. TIFF says nothing
 * of the zone; it is taken as UTC, the only reading that does not depend on the converting
 * machine. Placeholders and impossible dates (`0000:00:00 00:00:00`, month 13) give undefined.
 */
export function tiffDateTime(text: string): string | undefined {
  const match = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text.trim());
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const parts = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours()];
  if (year < 1 || parts.join() !== [year, month, day, hour].join() || minute > 59 || second > 59) return undefined;
  return date.toISOString().replace('.000Z', 'Z');
}

/** The version number in `gdal_translate --version`'s text, else the text. */
function gdalVersionNumber(text: string): string {
  return /^GDAL\s+([^\s,]+)/.exec(text.trim())?.[1] ?? text.trim();
}

/** Projection fields (item properties), or none for an image that is not georeferenced. */
function projection(facts: RasterFacts): Record<string, unknown> | undefined {
  if (facts.georeferencing === null) return undefined;
  const shape = [facts.height, facts.width]; // rows, columns
  const gt = facts.geoTransform;
  const crs = facts.crs;
  // Imagery placed by GCPs has no CRS of its own grid: the extension asks for proj:epsg null then.
  if (gt === undefined || crs === undefined) return { 'proj:epsg': null, 'proj:shape': shape };
  const [x0, dx, rx, y0, ry, dy] = gt;
  const corners = [
    [0, 0],
    [facts.width, 0],
    [0, facts.height],
    [facts.width, facts.height],
  ].map(([p, l]) => [x0 + p! * dx + l! * rx, y0 + p! * ry + l! * dy] as const);
  const xs = corners.map(([x]) => x);
  const ys = corners.map(([, y]) => y);
  return {
    'proj:epsg': crs.epsg,
    ...(crs.epsg === null ? { 'proj:wkt2': crs.wkt2 } : {}),
    'proj:shape': shape,
    'proj:transform': [dx, rx, x0, ry, dy, y0], // the affine (rasterio) order the extension uses
    'proj:bbox': [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
  };
}

function rasterBands(facts: RasterFacts): RasterBand[] {
  const gt = facts.geoTransform;
  // Mean of a pixel's width and height, in the CRS's units (metres for UTM, degrees for EPSG:4326).
  const resolution = gt === undefined ? undefined : (Math.hypot(gt[1], gt[4]) + Math.hypot(gt[2], gt[5])) / 2;
  return facts.bands.map((band) => ({
    data_type: band.dataType,
    ...(band.nodata === undefined ? {} : { nodata: band.nodata }),
    ...(resolution === undefined ? {} : { spatial_resolution: resolution }),
    ...(Object.keys(band.statistics).length > 0 ? { statistics: { ...band.statistics } } : {}),
  }));
}

/** The asset's href relative to the item, with its file extension fields. */
function fileAsset(
  facts: ItemFacts,
  key: string,
  file: FileFacts,
  rest: Omit<Asset, 'href' | `file:${string}`>,
): Asset {
  if (!Number.isSafeInteger(file.size) || file.size < 0) throw new Error(`not a file size: ${file.size}`);
  return {
    href: relativeHref(facts.itemKey, key),
    ...rest,
    'file:size': file.size,
    'file:checksum': multihashSha256(file.sha256),
  };
}

/** The STAC Item of a converted image. Throws on a malformed gdalinfo document, size or digest. */
export function buildItem(facts: ItemFacts): StacItem {
  const raster = rasterFacts(facts.gdalinfo);
  const proj = projection(raster);
  const bands = rasterBands(raster);
  const captured = raster.tiffDateTime === undefined ? undefined : tiffDateTime(raster.tiffDateTime);
  const options = facts.processing.creationOptions.map(([name, value]) => `${name}=${value}`).join(' ');
  const data = fileAsset(facts, facts.key, facts.cog, {
    type: COG_MEDIA_TYPE,
    title: 'Cloud Optimized GeoTIFF',
    roles: ['data'],
    ...(bands.length > 0 ? { 'raster:bands': bands } : {}),
  });
  const preview = fileAsset(facts, facts.previewKey ?? previewKeyOf(facts.key), facts.preview, {
    type: 'image/jpeg',
    title: 'Preview',
    roles: ['overview'],
  });
  const extensions = [
    ...(proj === undefined ? [] : [EXTENSIONS.projection]),
    ...(bands.length > 0 ? [EXTENSIONS.raster] : []),
    EXTENSIONS.file,
    EXTENSIONS.processing,
  ];
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    stac_extensions: extensions,
    id: itemId(facts.key),
    collection: facts.collectionId,
    geometry: facts.footprint.geometry,
    ...(facts.footprint.geometry !== null && facts.footprint.bbox !== null ? { bbox: facts.footprint.bbox } : {}),
    properties: {
      datetime: captured ?? facts.processing.datetime,
      // Whether datetime is when the image was taken (its TIFF DateTime tag) or only when cogd converted it.
      'cogd:datetime_source': captured === undefined ? 'processing' : 'tiff',
      ...proj,
      'processing:software': {
        cogd: facts.processing.cogdVersion,
        gdal: gdalVersionNumber(facts.processing.gdalVersion),
      },
      'processing:datetime': facts.processing.datetime,
      'processing:lineage':
        `Converted to a Cloud Optimized GeoTIFF with GDAL's COG driver, profile ${facts.processing.profile}` +
        (options === '' ? '' : `, creation options ${options}`),
    },
    links: [
      { rel: 'self', href: s3Href(facts.outputBucket, facts.itemKey), type: 'application/geo+json' },
      { rel: 'collection', href: facts.collectionHref, type: 'application/json' },
      { rel: 'parent', href: facts.collectionHref, type: 'application/json' },
    ],
    assets: { data, preview },
  };
}
