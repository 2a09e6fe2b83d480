/**
 * Validates STAC items and collections against the official JSON schemas, offline: the schemas are
 * read in place from the directory COGD_STAC_SCHEMAS names (CI: ../shared/stac-schemas; its README
 * says where each comes from), every file registered under its own `$id` so the relative and
 * absolute `$ref`s between them resolve as published. The GeoJSON schemas the core schemas refer to
 * come from the npm package geojson-schema (the same files geojson.org serves).
 *
 * An item is checked against the core item schema and against every extension it lists in
 * `stac_extensions` — as stac-validator does — so an extension listed but not followed fails, and
 * so does one listed that there is no schema for.
 *
 * Also the real COGs (made by GDAL) the STAC tests describe, and checks on their geometries.
 */
import { Ajv, type AnySchemaObject, type ErrorObject } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from 'vitest';
import { footprint, type Footprint } from '../../src/stac/footprint.js';
import { buildItem, type FileFacts } from '../../src/stac/item.js';
import type { BBox, Position, StacItem } from '../../src/stac/types.js';

/** The schema directory, or undefined when COGD_STAC_SCHEMAS is not set (tests then skip, saying so). */
export const STAC_SCHEMAS: string | undefined =
  process.env['COGD_STAC_SCHEMAS'] === undefined || process.env['COGD_STAC_SCHEMAS'] === ''
    ? undefined
    : path.resolve(process.env['COGD_STAC_SCHEMAS']);

const ITEM = 'https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json';
const COLLECTION = 'https://schemas.stacspec.org/v1.0.0/collection-spec/json-schema/collection.json';

/**
 * PROJJSON's schemas, which the projection extension refers to for `proj:projjson` only, are not
 * kept (their README says so): permissive stand-ins under their `$id`s let the extension schemas
 * compile. cogd never writes `proj:projjson`, so nothing it writes goes unchecked.
 */
const PROJJSON_STAND_INS = [
  'https://proj.org/schemas/v0.5/projjson.schema.json',
  'https://proj.org/schemas/v0.7/projjson.schema.json',
];

/**
 * RFC 3987 IRIs, which the STAC schemas use for hrefs and ajv-formats does not define: no spaces,
 * controls or characters RFC 3987 excludes (`<>"{}|\^` and the backtick); an IRI also needs a scheme.
 */
function iriReference(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f || '<>"{}|\\^`'.includes(text.charAt(i))) return false;
  }
  return true;
}
const iri = (text: string): boolean => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) && iriReference(text);

function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return jsonFiles(file);
    return entry.isFile() && entry.name.endsWith('.json') && entry.name !== 'package.json' ? [file] : [];
  });
}

function loadSchemas(ajv: Ajv, files: readonly string[]): void {
  for (const file of files) {
    const schema = JSON.parse(readFileSync(file, 'utf8')) as AnySchemaObject;
    if (typeof schema.$id !== 'string') throw new Error(`${file}: a schema without an $id`);
    ajv.addSchema(schema);
  }
}

export interface StacValidator {
  /** What is wrong with `item` (one line per error, naming the schema), or nothing. */
  validateItem(item: unknown): string[];
  validateCollection(collection: unknown): string[];
}

function describe(schema: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map(
    (e) => `${schema}: ${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
  );
}

/** A validator over the schemas in `dir`. */
export function stacValidator(dir: string): StacValidator {
  const ajv = new Ajv({ strict: false, allErrors: true });
  // ajv-formats is CommonJS: imported from ESM its module is the default; the plugin is also its `default`.
  formatsPlugin.default(ajv);
  ajv.addFormat('iri', iri);
  ajv.addFormat('iri-reference', iriReference);
  const geojson = path.dirname(createRequire(import.meta.url).resolve('geojson-schema/package.json'));
  loadSchemas(ajv, jsonFiles(geojson));
  for (const $id of PROJJSON_STAND_INS) ajv.addSchema({ $id });
  loadSchemas(ajv, jsonFiles(dir));
  const check = (schema: string, doc: unknown): string[] => {
    const validate = ajv.getSchema(schema);
    if (validate === undefined) return [`${schema}: no such schema in ${dir}`];
    return validate(doc) ? [] : describe(schema, validate.errors);
  };
  const withExtensions = (core: string, doc: unknown): string[] => {
    const listed = (doc as { stac_extensions?: unknown }).stac_extensions;
    const extensions = Array.isArray(listed) ? listed.filter((e): e is string => typeof e === 'string') : [];
    return [core, ...extensions].flatMap((schema) => check(schema, doc));
  };
  return {
    validateItem: (item) => withExtensions(ITEM, item),
    validateCollection: (collection) => withExtensions(COLLECTION, collection),
  };
}

// Real COGs and their items, for the tests: GDAL makes the files, cogd's STAC code describes them.

const ENV = { GDAL_PAM_ENABLED: 'NO' }; // no .aux.xml next to the files (gdalinfo -approx_stats would write one)

/** The processing time every test item is given. */
export const PROCESSED = '2026-05-01T12:00:00Z';

const gdal = async (command: string, args: string[]): Promise<string> =>
  (await execa(command, args, { env: ENV })).stdout;

async function fileFacts(file: string): Promise<FileFacts> {
  const bytes = await readFile(file);
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export interface Converted {
  cog: string;
  /** The COG's gdalinfo -json -approx_stats document. */
  info: { wgs84Extent?: { coordinates: Position[][] } };
  fp: Footprint;
  item: StacItem;
  /** The COG's SHA-256, hex, computed here over its bytes. */
  sha256: string;
}

/**
 * `source` made a COG (`<dir>/<name>.tif`, `extra` gdal_translate options) with a JPEG preview,
 * and its item as cogd builds it: key `scenes/<name>.tif` in bucket `out`, item `scenes/<name>.json`,
 * collection `watch-1` at `../collection.json`, profile lzw.
 */
export async function convertToItem(
  dir: string,
  source: string,
  name: string,
  extra: string[] = [],
): Promise<Converted> {
  const cog = path.join(dir, `${name}.tif`);
  const preview = path.join(dir, `${name}.jpg`);
  await gdal('gdal_translate', ['-q', '-of', 'COG', ...extra, source, cog]);
  await gdal('gdal_translate', ['-q', '-of', 'JPEG', '-ot', 'Byte', '-scale', '-b', '1', cog, preview]);
  const info = JSON.parse(await gdal('gdalinfo', ['-json', '-approx_stats', cog])) as Converted['info'];
  const fp = await footprint(cog, info);
  const cogFacts = await fileFacts(cog);
  const item = buildItem({
    key: `scenes/${name}.tif`,
    outputBucket: 'out',
    itemKey: `scenes/${name}.json`,
    collectionId: 'watch-1',
    collectionHref: '../collection.json',
    gdalinfo: info,
    footprint: fp,
    cog: cogFacts,
    preview: await fileFacts(preview),
    processing: {
      cogdVersion: '0.1.0',
      gdalVersion: 'GDAL 3.6.2, released 2023/01/02',
      datetime: PROCESSED,
      profile: 'lzw',
      creationOptions: [
        ['COMPRESS', 'LZW'],
        ['PREDICTOR', '2'],
      ],
    },
  });
  return { cog, info, fp, item, sha256: cogFacts.sha256 };
}

/** A 60 × 40 Byte GeoTIFF in `dir`, with `-a_srs` / `-a_ullr` when given (else no georeferencing). */
export async function georeferenced(dir: string, name: string, srs?: string, ullr?: number[]): Promise<string> {
  const file = path.join(dir, `${name}-src.tif`);
  await gdal('gdal_create', ['-q', '-of', 'GTiff', '-outsize', '60', '40', '-bands', '1', '-burn', '7', file]);
  if (srs === undefined) return file;
  const out = path.join(dir, `${name}-geo.tif`);
  await gdal('gdal_translate', ['-q', '-a_srs', srs, '-a_ullr', ...(ullr ?? []).map(String), file, out]);
  return out;
}

export function extentOf(ring: Position[]): BBox {
  const [lons, lats] = [ring.map((p) => p[0]), ring.map((p) => p[1])];
  return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
}

/** Each ring closed, counter-clockwise (the right-hand rule), within [-180, 180] × [-90, 90]. */
export function expectWellFormed(rings: Position[][]): void {
  for (const ring of rings) {
    expect(ring[0]).toEqual(ring[ring.length - 1]);
    let area = 0;
    for (let i = 1; i < ring.length; i += 1) area += ring[i - 1]![0] * ring[i]![1] - ring[i]![0] * ring[i - 1]![1];
    expect(area).toBeGreaterThan(0);
    for (const [lon, lat] of ring) {
      expect(Math.abs(lon)).toBeLessThanOrEqual(180);
      expect(Math.abs(lat)).toBeLessThanOrEqual(90);
    }
  }
}
