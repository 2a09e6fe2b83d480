/**
 * The COG gate: is a file a cloud optimized GeoTIFF? Read from the TIFF structure itself (a few KB
 * of positional reads, tiff-ifd.ts), with the checks of GDAL 3.6's validator (osgeo_utils/samples/
 * validate_cloud_optimized_geotiff.py, full check included) and, under cogd's policy (the default),
 * stricter ones: the main image, its overviews and masks are tiled whatever their size; an image
 * larger than one tile has overviews (GDAL only warns, and only above 512 pixels); every IFD and the
 * tag values it points to come before any tile data; a file without GDAL's ghost header
 * (GDAL_STRUCTURAL_METADATA) gets a warning. `policy: 'gdal'` gives GDAL's own verdict.
 */
import { open, stat } from 'node:fs/promises';
import {
  blockOffset,
  firstBlockOffset,
  readLayout,
  TiffReader,
  type ReadStats,
  type TiffImage as Image,
} from './tiff-ifd.js';

export type { ReadStats } from './tiff-ifd.js';

export interface CogFacts {
  byteOrder: 'little-endian' | 'big-endian';
  bigTiff: boolean;
  width: number;
  height: number;
  bands: number;
  tiled: boolean;
  /** The main image's tile size (when striped: width x rows per strip). */
  tileWidth: number;
  tileHeight: number;
  /** TIFF Compression tag value of the main image (1 none, 5 LZW, 7 JPEG, 8 Deflate, 50000 ZSTD…). */
  compression: number;
  overviews: Array<{ width: number; height: number }>;
  masks: Array<{ width: number; height: number }>;
  /** Offsets of all IFDs, in chain order (the main image's first). */
  ifdOffsets: number[];
  /** First byte of tile (or strip) data; null when no block has data. */
  dataOffset: number | null;
  /** GDAL's ghost header, key by key (LAYOUT=IFDS_BEFORE_DATA, BLOCK_ORDER…); null when absent. */
  ghostHeader: Record<string, string> | null;
}

export interface CogReport {
  ok: boolean;
  /** Each a whole sentence for a failure reason: `not a cloud optimized GeoTIFF: …`. */
  errors: string[];
  warnings: string[];
  /** null when the file could not be read as a TIFF. */
  facts: CogFacts | null;
}

export interface CogCheckOptions {
  /** 'cogd' (default): GDAL's checks and cogd's stricter ones; 'gdal': exactly GDAL's validator. */
  policy?: 'cogd' | 'gdal';
  /** Check every block's order, leader and trailer as GDAL does for local files (default true). */
  fullCheck?: boolean;
  /** Counts the reads made. */
  stats?: ReadStats;
}

type Level = 'error' | 'warning' | undefined;
type Add = (text: string, gdal: Level, cogd?: Level) => void;
type Flags = Record<'rowMajor' | 'leader' | 'trailer' | 'interleaved', boolean>;

const PREFIX = 'not a cloud optimized GeoTIFF: ';
const GHOST = 'GDAL_STRUCTURAL_METADATA_SIZE=';
const GHOST_LINE = `${GHOST}000000 bytes\n`.length;
const BLOCK_ERRORS_SHOWN = 5;

const size = (m: Image): string => `${m.width} x ${m.height}`;

/**
 * Checks `file` (it must exist: an I/O error opening it throws). Anything wrong inside it, including
 * not being a TIFF at all, is a failed check with a reason.
 */
export async function checkCog(file: string, options: CogCheckOptions = {}): Promise<CogReport> {
  const issues: Array<{ text: string; gdal: Level; cogd: Level }> = [];
  const add: Add = (text, gdal, cogd = gdal) => void issues.push({ text, gdal, cogd });
  let facts: CogFacts | null = null;
  const handle = await open(file, 'r');
  try {
    const tiff = await TiffReader.open(handle, options.stats);
    const { images, main, overviews, masks } = await readLayout(tiff);
    await checkTilingAndOverviews(file, main, overviews, [...masks.values()], add);
    const ghostHeader = await checkHeader(tiff, main, add);
    const dataOffset = checkOrder(images, [main, ...overviews], add);
    const ghost = (key: string, value: string): boolean => ghostHeader?.[key] === value;
    const flags = {
      rowMajor: ghost('BLOCK_ORDER', 'ROW_MAJOR'),
      leader: ghost('BLOCK_LEADER', 'SIZE_AS_UINT4'),
      trailer: ghost('BLOCK_TRAILER', 'LAST_4_BYTES_REPEATED'),
      interleaved: ghost('MASK_INTERLEAVED_WITH_IMAGERY', 'YES'),
    };
    if ((options.fullCheck ?? true) && Object.values(flags).some(Boolean)) {
      for (const level of [main, ...overviews]) {
        const mask = masks.get(level);
        const found = await checkBlocks(tiff, level, flags.interleaved ? mask : undefined, flags);
        if (mask !== undefined) found.push(...(await checkBlocks(tiff, mask, undefined, flags)));
        for (const text of found) add(text, 'error');
      }
    }
    facts = {
      byteOrder: tiff.little ? 'little-endian' : 'big-endian',
      bigTiff: tiff.bigTiff,
      width: main.width,
      height: main.height,
      bands: main.samples,
      tiled: main.tiled,
      tileWidth: main.blockWidth,
      tileHeight: main.blockHeight,
      compression: main.compression,
      overviews: overviews.map((o) => ({ width: o.width, height: o.height })),
      masks: [...masks.values()].map((m) => ({ width: m.width, height: m.height })),
      ifdOffsets: images.map((m) => m.ifd.offset),
      dataOffset,
      ghostHeader,
    };
  } catch (error) {
    add(`cannot read the TIFF structure: ${error instanceof Error ? error.message : String(error)}`, 'error');
  } finally {
    await handle.close();
  }
  const policy = options.policy ?? 'cogd';
  const errors = issues.filter((i) => i[policy] === 'error').map((i) => `${PREFIX}${i.text}`);
  const warnings = issues.filter((i) => i[policy] === 'warning').map((i) => i.text);
  return { ok: errors.length === 0, errors, warnings, facts };
}

async function checkTilingAndOverviews(
  file: string,
  main: Image,
  overviews: Image[],
  masks: Image[],
  add: Add,
): Promise<void> {
  // GDAL fails an image above 512 px whose blocks are as wide as it and wider than 1024 px (and such
  // an overview); cogd wants every image tiled.
  const big = main.width > 512 || main.height > 512;
  const wide = (m: Image): boolean => m.blockWidth === m.width && m.blockWidth > 1024;
  for (const m of [main, ...overviews, ...masks]) {
    const gdal = (m === main ? big && wide(m) : overviews.includes(m) && wide(m)) ? 'error' : undefined;
    const how = m.tiled ? 'its tiles are as wide as the image' : 'it is stored in strips';
    if (gdal !== undefined || !m.tiled) add(`${m.name} is not tiled (${how})`, gdal, 'error');
  }
  // GDAL warns when an image above 512 px has no overviews; cogd fails one larger than a tile.
  const largerThanTile = main.tiled ? main.width > main.blockWidth || main.height > main.blockHeight : big;
  if (overviews.length === 0 && (big || largerThanTile)) {
    const tiles = main.tiled ? ` (larger than its ${main.blockWidth} x ${main.blockHeight} tiles)` : '';
    add(
      `the image is ${size(main)}${tiles} but has no overviews`,
      big ? 'warning' : undefined,
      largerThanTile ? 'error' : 'warning',
    );
  }
  if (overviews.length === 0 && (await stat(`${file}.ovr`).catch(() => null)) !== null) {
    add('its overviews are in an external .ovr file; they must be internal', 'error');
  }
  overviews.forEach((o, i) => {
    const previous = i === 0 ? main : overviews[i - 1]!;
    if (o.width > previous.width || o.height > previous.height) {
      add(`${o.name} is larger than ${previous.name}: overviews must come by decreasing size`, 'error');
    }
  });
}

/** The main IFD right after the header, or after GDAL's ghost header; returns the ghost header. */
async function checkHeader(tiff: TiffReader, main: Image, add: Add): Promise<Record<string, string> | null> {
  let ghost: Record<string, string> | null = null;
  // GDAL looks for the ghost header only when the main IFD is not at byte 8 or 16 (nothing else fits).
  if (main.ifd.offset !== 8 && main.ifd.offset !== 16) {
    let expected = tiff.bigTiff ? 16 : 8;
    const line = (await tiff.read(expected, GHOST_LINE, false)).toString('latin1');
    if (line.length === GHOST_LINE && line.startsWith(GHOST)) {
      const digits = line.slice(GHOST.length, GHOST.length + 6);
      if (!/^\d{6}$/.test(digits)) throw new Error(`its GDAL_STRUCTURAL_METADATA size is "${digits}"`);
      const length = Number(digits);
      const text = (await tiff.read(expected + GHOST_LINE, length, false)).toString('latin1');
      ghost = {};
      for (const [, key, value] of text.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)) ghost[key!] = value!.trim();
      expected += GHOST_LINE + length;
      expected += expected % 2; // an IFD starts on a word boundary
    }
    if (main.ifd.offset !== expected) {
      const after = ghost === null ? 'the header' : 'the header and its GDAL_STRUCTURAL_METADATA';
      add(
        `the main IFD is at byte ${main.ifd.offset}; it should be at byte ${expected}, right after ${after}`,
        'error',
      );
    }
  }
  if (ghost === null) {
    add(
      'it has no GDAL_STRUCTURAL_METADATA header (not written by GDAL as a COG); its layout was checked from its IFDs alone',
      undefined,
      'warning',
    );
  } else if (ghost['LAYOUT'] !== 'IFDS_BEFORE_DATA') {
    add('its GDAL_STRUCTURAL_METADATA does not declare LAYOUT=IFDS_BEFORE_DATA', undefined, 'warning');
  }
  if (ghost?.['KNOWN_INCOMPATIBLE_EDITION'] === 'YES') {
    add(
      'KNOWN_INCOMPATIBLE_EDITION=YES is declared in the file (it was modified after it was written as a COG)',
      'error',
    );
  }
  return ghost;
}

/** IFDs before data, and data from the smallest overview to the main image; returns where data starts. */
function checkOrder(images: Image[], levels: Image[], add: Add): number | null {
  // GDAL: the IFDs of the main image then of the overviews by increasing offsets.
  for (let i = 1; i < levels.length; i += 1) {
    const [previous, level] = [levels[i - 1]!, levels[i]!];
    if (level.ifd.offset < previous.ifd.offset) {
      add(
        `the IFD of ${level.name} is at byte ${level.ifd.offset}, before the one of ${previous.name} at byte ${previous.ifd.offset}`,
        'error',
      );
    }
  }
  // GDAL: each level's first block — the smallest overview's after its IFD, the main image's last.
  const first = levels.map(firstBlockOffset);
  const last = levels.length - 1;
  if (first[last] !== 0 && first[last]! < levels[last]!.ifd.offset) {
    add(
      `the first block of ${levels[last]!.name} is at byte ${first[last]!}, before its IFD at byte ${levels[last]!.ifd.offset}`,
      'error',
    );
  }
  for (let i = last - 1; i >= 0; i -= 1) {
    if (first[i] !== 0 && first[i]! < first[i + 1]!) {
      const must = i === 0 ? "the main image's data must come last" : "the smallest overview's data must come first";
      add(
        `the data of ${levels[i]!.name} starts at byte ${first[i]!}, before that of ${levels[i + 1]!.name} at byte ${first[i + 1]!} (${must})`,
        'error',
      );
    }
  }
  // cogd: every IFD, with the tag values it points to, before the first byte of any block's data.
  const data = images.flatMap((m) => m.allOffsets.filter((_, i) => m.allCounts[i] !== 0));
  if (data.length === 0) return null;
  const start = data.reduce((a, b) => Math.min(a, b));
  for (const m of images) {
    const end = Math.max(
      m.ifd.end,
      ...[...m.ifd.entries.values()].map((e) => (e.inline === undefined ? e.at + e.bytes : 0)),
    );
    if (end > start) {
      add(
        `the IFD of ${m.name} ends at byte ${end}, after the image data starts (byte ${start}): IFDs must come before the image data`,
        undefined,
        'error',
      );
    }
  }
  return start;
}

/**
 * GDAL's full check of one image's blocks: row-major order (BLOCK_ORDER=ROW_MAJOR), the leader (the
 * block's size as a little-endian uint32 just before it), the trailer (its last 4 bytes repeated
 * after it) and, with MASK_INTERLEAVED_WITH_IMAGERY, each mask block right after its imagery block.
 */
async function checkBlocks(
  tiff: TiffReader,
  image: Image,
  interleavedMask: Image | undefined,
  flags: Flags,
): Promise<string[]> {
  const found: string[] = [];
  let mask = interleavedMask;
  if (mask !== undefined && (mask.blockWidth !== image.blockWidth || mask.blockHeight !== image.blockHeight)) {
    found.push(`${image.name}: its mask's block size is different from its own`);
    mask = undefined;
  }
  // Leaders and trailers (GDAL reads 8 trailer bytes and finds nothing wrong when the file ends first).
  const wanted: Array<[key: string, at: number, length: number]> = [];
  image.offsets.forEach((_, i) => {
    const [offset, count] = [blockOffset(image, i), image.counts[i]!];
    if (offset > 0 && flags.leader) wanted.push([`l${i}`, offset - 4, 4]);
    if (offset > 0 && flags.trailer && count >= 4) wanted.push([`t${i}`, offset + count - 4, 8]);
  });
  const read = await tiff.readMany(wanted.map(([, at, length]) => [at, length, length === 4]));
  const bytes = new Map(wanted.map(([key], j) => [key, read[j]!]));
  const across = Math.ceil(image.width / image.blockWidth);
  let last = 0;
  for (let i = 0; i < image.offsets.length; i += 1) {
    const block = `block (${i % across}, ${Math.floor(i / across)})`;
    let offset = blockOffset(image, i);
    const count = offset === 0 ? 0 : image.counts[i]!;
    if (offset > 0) {
      if (flags.rowMajor && offset < last)
        found.push(`${image.name}: ${block} at byte ${offset} comes before the previous block (BLOCK_ORDER=ROW_MAJOR)`);
      const leader = bytes.get(`l${i}`)?.readUInt32LE(0);
      if (leader !== undefined && leader !== count)
        found.push(`${image.name}: the leader of ${block} gives its size as ${leader} instead of ${count}`);
      const trailer = bytes.get(`t${i}`);
      if (trailer?.length === 8 && !trailer.subarray(0, 4).equals(trailer.subarray(4)))
        found.push(`${image.name}: the trailer bytes of ${block} are invalid`);
    }
    const maskOffset = mask === undefined ? 0 : blockOffset(mask, i);
    if (offset > 0 && maskOffset > 0) {
      const expected = offset + count + (flags.leader ? 4 : 0) + (flags.trailer ? 4 : 0);
      if (maskOffset !== expected)
        found.push(
          `${mask!.name}: ${block} is at byte ${maskOffset}, whereas ${expected} was expected (MASK_INTERLEAVED_WITH_IMAGERY)`,
        );
    } else if (offset === 0 && maskOffset > 0) {
      if (flags.rowMajor && maskOffset < last)
        found.push(
          `${mask!.name}: ${block} at byte ${maskOffset} comes before the previous block (BLOCK_ORDER=ROW_MAJOR)`,
        );
      offset = maskOffset;
    }
    last = offset;
  }
  if (found.length <= BLOCK_ERRORS_SHOWN) return found;
  return [
    ...found.slice(0, BLOCK_ERRORS_SHOWN),
    `${image.name}: ${found.length - BLOCK_ERRORS_SHOWN} more block errors`,
  ];
}
