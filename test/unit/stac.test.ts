/**
 * STAC items and collections from real COGs made by GDAL (no mocks): footprints through
 * gdaltransform — UTM, across the antimeridian, around a pole, from GCPs, none without
 * georeferencing — checked against gdalinfo's own wgs84Extent and, with COGD_STAC_SCHEMAS set,
 * against the official STAC schemas (core and each extension an item lists).
 */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addItems, newCollection, unionBBox } from '../../src/stac/collection.js';
import { footprint, footprintOfRing, outline, type Footprint } from '../../src/stac/footprint.js';
import { relativeHref } from '../../src/stac/hrefs.js';
import { tiffDateTime } from '../../src/stac/item.js';
import type { BBox, Polygon, Position, StacItem } from '../../src/stac/types.js';
import { tempDir } from '../support/helpers.js';
import { featureTiff } from '../support/images.js';
import {
  convertToItem,
  expectWellFormed,
  extentOf,
  georeferenced,
  PROCESSED,
  STAC_SCHEMAS,
  stacValidator,
  type Converted,
  type StacValidator,
} from '../support/stac.js';

if (STAC_SCHEMAS === undefined) {
  console.log(
    'NOTICE: COGD_STAC_SCHEMAS is not set; STAC items and collections are built but not validated against the STAC schemas (CI sets it to ../shared/stac-schemas)',
  );
}
const validator: StacValidator | undefined = STAC_SCHEMAS === undefined ? undefined : stacValidator(STAC_SCHEMAS);
const schemaIt = validator === undefined ? it.skip : it;
/** Items checked against the schemas (when there are schemas) by the last test. */
const built: StacItem[] = [];

let dir = '';
beforeAll(async () => {
  dir = await tempDir('cogd-stac-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** convertToItem into this test's directory; every item is kept for the schema check. */
async function convert(source: string, name: string, extra: string[] = []): Promise<Converted> {
  const converted = await convertToItem(dir, source, name, extra);
  built.push(converted.item);
  return converted;
}
const p = (lon: number, lat: number): Position => [lon, lat];
const box = (w: number, s: number, e: number, n: number): BBox => [w, s, e, n];
const image = (name: string, srs?: string, ullr?: number[]): Promise<string> => georeferenced(dir, name, srs, ullr);

describe('STAC items', () => {
  it('a UTM image: footprint as gdalinfo places it, projection, bands, assets, checksums', async () => {
    const { item, info, cog, sha256 } = await convert(await featureTiff(dir, 'u16-nodata'), 'utm');
    const [w, s, e, n] = extentOf(info.wgs84Extent!.coordinates[0]!);
    expect(item.bbox).toHaveLength(4);
    const bbox = item.bbox!;
    [w, s, e, n].forEach((v, i) => expect(Math.abs(bbox[i]! - v)).toBeLessThan(1e-4));
    // Densified edges can only add to the corners' extent.
    expect(bbox[0] <= w + 1e-7 && bbox[1] <= s + 1e-7 && bbox[2] >= e - 1e-7 && bbox[3] >= n - 1e-7).toBe(true);
    const geometry = item.geometry as Polygon;
    expect(geometry.type).toBe('Polygon');
    expect(geometry.coordinates[0]).toHaveLength(4 * 20 + 1);
    expectWellFormed(geometry.coordinates);
    expect(item.id).toBe('scenes/utm');
    expect(item.properties).toMatchObject({
      datetime: PROCESSED,
      'cogd:datetime_source': 'processing',
      'proj:epsg': 32618,
      'proj:shape': [400, 600],
      'proj:transform': [10, 0, 500000, 0, -10, 4500000],
      'proj:bbox': [500000, 4496000, 506000, 4500000],
      'processing:software': { cogd: '0.1.0', gdal: '3.6.2' },
      'processing:datetime': PROCESSED,
    });
    expect(item.properties['processing:lineage']).toContain('profile lzw, creation options COMPRESS=LZW PREDICTOR=2');
    expect(item.properties['proj:wkt2']).toBeUndefined();
    const data = item.assets['data']!;
    expect(data).toMatchObject({ href: './utm.tif', roles: ['data'], 'file:size': (await stat(cog)).size });
    expect(data.type).toBe('image/tiff; application=geotiff; profile=cloud-optimized');
    expect(data['file:checksum']).toBe(`1220${sha256}`);
    expect(data['raster:bands']).toEqual([
      {
        data_type: 'uint16',
        nodata: 0,
        spatial_resolution: 10,
        statistics: expect.objectContaining({ minimum: expect.any(Number), valid_percent: 50 }),
      },
    ]);
    expect(item.assets['preview']).toMatchObject({ href: './utm.jpg', type: 'image/jpeg', roles: ['overview'] });
    expect(item.assets['preview']!['file:checksum']).toMatch(/^1220[0-9a-f]{64}$/);
    expect(item.links).toEqual([
      { rel: 'self', href: 's3://out/scenes/utm.json', type: 'application/geo+json' },
      { rel: 'collection', href: '../collection.json', type: 'application/json' },
      { rel: 'parent', href: '../collection.json', type: 'application/json' },
    ]);
    expect(item.stac_extensions).toEqual([
      'https://stac-extensions.github.io/projection/v1.1.0/schema.json',
      'https://stac-extensions.github.io/raster/v1.1.0/schema.json',
      'https://stac-extensions.github.io/file/v2.1.0/schema.json',
      'https://stac-extensions.github.io/processing/v1.2.0/schema.json',
    ]);
  });

  it('datetime comes from the TIFF DateTime tag, as UTC', async () => {
    const { item } = await convert(await image('dated', 'EPSG:32618', [500000, 4500000, 500600, 4499600]), 'dated', [
      '-mo',
      'TIFFTAG_DATETIME=2021:03:04 10:11:12',
    ]);
    expect(item.properties).toMatchObject({ datetime: '2021-03-04T10:11:12Z', 'cogd:datetime_source': 'tiff' });
    expect(item.properties['processing:datetime']).toBe(PROCESSED);
    expect(tiffDateTime('0000:00:00 00:00:00')).toBeUndefined();
    expect(tiffDateTime('2021:02:30 10:11:12')).toBeUndefined();
    expect(tiffDateTime('2021-03-04 10:11:12')).toBeUndefined();
  });

  /** The parts of a footprint split at ±180: one east of it, one west, meeting on it at the same latitudes. */
  function expectSplit(fp: Footprint): void {
    expect(fp.geometry?.type).toBe('MultiPolygon');
    const parts = (fp.geometry as { coordinates: Position[][][] }).coordinates.map((p) => p[0]!);
    expect(parts).toHaveLength(2);
    expectWellFormed(parts);
    const east = parts.find((ring) => ring.every(([lon]) => lon > 0))!;
    const west = parts.find((ring) => ring.every(([lon]) => lon < 0))!;
    expect(east).toBeDefined();
    expect(west).toBeDefined();
    const onMeridian = (ring: Position[], lon: number) =>
      ring
        .slice(1) // closed: the first point is also the last
        .filter(([x]) => x === lon)
        .map(([, y]) => y)
        .sort();
    expect(onMeridian(east, 180)).toEqual(onMeridian(west, -180));
    expect(onMeridian(east, 180).length).toBeGreaterThanOrEqual(2);
    expect(fp.bbox![0]).toBeGreaterThan(fp.bbox![2]); // west > east
  }

  it('an image across the antimeridian (UTM 60N) is a MultiPolygon split at ±180, bbox west > east', async () => {
    const { fp, info } = await convert(await image('am60', 'EPSG:32660', [700000, 1200000, 900000, 1000000]), 'am60');
    expectSplit(fp);
    const lons = info.wgs84Extent!.coordinates[0]!.map(([lon]) => lon);
    expect(Math.abs(fp.bbox![0] - Math.min(...lons.filter((l) => l > 0)))).toBeLessThan(1e-4);
    expect(Math.abs(fp.bbox![2] - Math.max(...lons.filter((l) => l < 0)))).toBeLessThan(1e-4);
  });

  it('an EPSG:4326 image from 179° to 181° is split the same way', async () => {
    const { fp } = await convert(await image('am4326', 'EPSG:4326', [179, 10, 181, 8]), 'am4326');
    expectSplit(fp);
    expect(fp.bbox).toEqual([179, 8, -179, 10]);
  });

  it('an image around a pole is closed through the pole (EPSG:3413 north, EPSG:3031 south)', async () => {
    for (const [srs, pole] of [
      ['EPSG:3413', 90],
      ['EPSG:3031', -90],
    ] as const) {
      const name = `pole${srs.slice(5)}`;
      const { fp, info } = await convert(await image(name, srs, [-500000, 500000, 500000, -500000]), name);
      expect(fp.geometry?.type).toBe('Polygon');
      expectWellFormed((fp.geometry as Polygon).coordinates);
      const lats = info.wgs84Extent!.coordinates[0]!.map(([, lat]) => lat);
      const edge = pole > 0 ? Math.min(...lats) : Math.max(...lats);
      expect(fp.bbox![0]).toBe(-180);
      expect(fp.bbox![2]).toBe(180);
      expect(Math.abs(fp.bbox![pole > 0 ? 1 : 3] - edge)).toBeLessThan(1e-4);
      expect(fp.bbox![pole > 0 ? 3 : 1]).toBe(pole);
    }
  });

  it('an image without georeferencing has no geometry, no bbox, no projection — and no gdaltransform', async () => {
    const { item, fp, info } = await convert(await image('plain'), 'plain');
    expect(fp).toEqual({ geometry: null, bbox: null });
    // A file that does not exist: gdaltransform would fail on it; not run, nothing fails.
    await expect(footprint(path.join(dir, 'no-such-file.tif'), info)).resolves.toEqual({ geometry: null, bbox: null });
    expect(item.geometry).toBeNull();
    expect('bbox' in item).toBe(false);
    expect(Object.keys(item.properties).filter((k) => k.startsWith('proj:'))).toEqual([]);
    expect(item.stac_extensions.some((e) => e.includes('/projection/'))).toBe(false);
    expect(item.assets['data']!['raster:bands']![0]!.spatial_resolution).toBeUndefined();
  });

  it('GCPs place an image too; a CRS without an EPSG code is given as WKT2; NaN nodata is "nan"', async () => {
    const gcps = ['-gcp', '0', '0', '10', '50', '-gcp', '60', '0', '11', '50', '-gcp', '0', '40', '10', '49'];
    const { item } = await convert(await image('plain2'), 'gcps', [
      ...gcps,
      '-gcp',
      '60',
      '40',
      '11',
      '49',
      '-a_srs',
      'EPSG:4326',
    ]);
    expect(item.bbox).toEqual([10, 49, 11, 50]);
    expect(item.properties).toMatchObject({ 'proj:epsg': null, 'proj:shape': [40, 60] });
    expect(item.properties['proj:transform']).toBeUndefined();
    const stere = '+proj=stere +lat_0=90 +lon_0=10 +datum=WGS84';
    const custom = await image('custom', stere, [-1000, 1000, 1000, -1000]);
    const { item: other } = await convert(custom, 'custom', ['-ot', 'Float32', '-a_nodata', 'nan']);
    expect(other.properties['proj:epsg']).toBeNull();
    expect(other.properties['proj:wkt2']).toMatch(/^PROJCRS\[/);
    expect(other.assets['data']!['raster:bands']![0]).toMatchObject({ data_type: 'float32', nodata: 'nan' });
  });

  schemaIt('every item built above is valid STAC (core and each extension it lists)', () => {
    expect(built.length).toBeGreaterThanOrEqual(8);
    for (const item of built) expect(validator!.validateItem(item), item.id).toEqual([]);
    // And the validator does check: a listed extension not followed fails.
    const broken = structuredClone(built[0]!);
    broken.assets['data']!['file:checksum'] = 'not hex';
    expect(validator!.validateItem(broken).join('\n')).toContain('file/v2.1.0');
    const spaced = structuredClone(built[0]!);
    spaced.assets['data']!.href = './a b.tif'; // hrefs are IRI references: a space must be encoded
    expect(validator!.validateItem(spaced).join('\n')).toContain('must match format "iri-reference"');
  });
});

describe('footprint rings', () => {
  it('outline: 21 points per edge, corners included, closed', () => {
    const ring = outline(600, 400);
    expect(ring).toHaveLength(81);
    expect([ring[0], ring[20], ring[40], ring[60], ring[80]]).toEqual([
      [0, 0],
      [600, 0],
      [600, 400],
      [0, 400],
      [0, 0],
    ]);
  });

  it('a ring crossing ±180 four times (a U shape) gives three parts; one only touching 180 is not split', () => {
    const u = [p(170, 0), p(-170, 0), p(-170, 10), p(170, 10), p(170, 20), p(-170, 20), p(-170, 30), p(160, 30)];
    const fp = footprintOfRing([...u, p(160, 0), p(170, 0)]);
    expect(fp.geometry?.type).toBe('MultiPolygon');
    expect((fp.geometry as { coordinates: unknown[] }).coordinates).toHaveLength(3);
    expect(fp.bbox).toEqual([160, 0, -170, 30]);
    const touching = footprintOfRing([p(170, 0), p(180, 0), p(-180, 5), p(170, 5), p(170, 0)]);
    expect(touching.geometry?.type).toBe('Polygon');
    expect(touching.bbox).toEqual([170, 0, 180, 5]);
  });
});

describe('STAC collections', () => {
  it('unionBBox takes the shorter way round', () => {
    expect(unionBBox([box(170, 0, 175, 1), box(-175, 2, -170, 3)])).toEqual([170, 0, -170, 3]);
    expect(unionBBox([box(179, 0, -179, 1), box(10, 0, 20, 1)])).toEqual([10, 0, -179, 1]);
    expect(unionBBox([box(-10, 0, 10, 1), box(-20, -5, 5, 0)])).toEqual([-20, -5, 10, 1]);
    expect(unionBBox([box(0, 0, 170, 1), box(160, 0, 10, 1)])).toEqual([-180, 0, 180, 1]);
  });

  it('extents grow, item links are not repeated, and every stage is valid STAC', () => {
    const empty = newCollection('watch-1', 'Images of watch 1', { title: 'watch 1' });
    expect(empty.license).toBe('proprietary');
    const items = [
      { href: './scenes/a.json', bbox: [-75, 40, -74, 41] as BBox, datetime: '2021-03-04T10:11:12Z' },
      { href: './scenes/b.json', bbox: null, datetime: '2026-05-01T12:00:00Z' },
    ];
    const first = addItems(empty, items.slice(1));
    expect(first.extent.spatial.bbox).toEqual([[-180, -90, 180, 90]]); // still unknown: b has no bbox
    const second = addItems(first, items);
    expect(second.extent.spatial.bbox).toEqual([[-75, 40, -74, 41]]);
    expect(second.extent.temporal.interval).toEqual([['2021-03-04T10:11:12Z', '2026-05-01T12:00:00Z']]);
    const third = addItems(second, [{ href: './scenes/c.json', bbox: [179, 8, -179, 10], datetime: PROCESSED }]);
    // Eastwards from 179° over ±180 to -74° (107°) is shorter than from -75° to -179° (256°).
    expect(third.extent.spatial.bbox).toEqual([[179, 8, -74, 41]]);
    expect(third.links.filter((l) => l.rel === 'item').map((l) => l.href)).toEqual([
      './scenes/b.json',
      './scenes/a.json',
      './scenes/c.json',
    ]);
    expect(empty.links).toEqual([]); // inputs are not changed
    if (validator === undefined) return;
    for (const c of [empty, first, second, third]) expect(validator.validateCollection(c)).toEqual([]);
  });

  it('relative hrefs between keys', () => {
    expect(relativeHref('a/b/item.json', 'a/b/x.tif')).toBe('./x.tif');
    expect(relativeHref('a/b/item.json', 'a/collection.json')).toBe('../collection.json');
    expect(relativeHref('collection.json', 'a/b c#1.json')).toBe('./a/b%20c%231.json');
  });
});
