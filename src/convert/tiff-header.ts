/**
 * Just enough of a TIFF's first IFD to plan a conversion without starting a GDAL process: size,
 * band count, sample type, palette. `gdalinfo` costs ~85 ms per image here (~50 ms of it process
 * start), a third of the two conversions; for plain 8-bit images this read replaces it, and for
 * other sample types it spares the first of the two `gdalinfo`s (statistics are needed anyway).
 * Anything unusual returns undefined and goes to `gdalinfo` as before.
 */
import { open } from 'node:fs/promises';
import type { ImageInfo } from './rules.js';
import { TAG, TYPE_SIZE } from './tiff-ifd.js';

/** GDAL's data type of a sample from BitsPerSample and SampleFormat (1 unsigned, 2 signed, 3 float). */
const SAMPLE_TYPE: Record<string, string> = {
  '8/1': 'Byte',
  '8/2': 'Int8',
  '16/1': 'UInt16',
  '16/2': 'Int16',
  '32/1': 'UInt32',
  '32/2': 'Int32',
  '64/1': 'UInt64',
  '64/2': 'Int64',
  '32/3': 'Float32',
  '64/3': 'Float64',
};

/** Reads the header; undefined when the file is not a plain 8-bit unsigned TIFF this can vouch for. */
export async function readPlainByteTiff(file: string): Promise<ImageInfo | undefined> {
  const info = await readTiffHeader(file);
  return info !== undefined && info.bands.every((b) => b.type === 'Byte') ? info : undefined;
}

/**
 * Reads the header of a TIFF with one sample type in all bands; undefined for anything else.
 * For other types than Byte it only tells that statistics will be needed (GDAL still inspects).
 */
export async function readTiffHeader(file: string): Promise<ImageInfo | undefined> {
  const handle = await open(file, 'r');
  try {
    return await readTiffHeaderWith(async (offset, length) => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    });
  } finally {
    await handle.close();
  }
}

/**
 * Bytes `length` from `offset` of a TIFF (fewer at its end): where readTiffHeaderWith reads from —
 * a file, or an object in S3 by ranged reads (`cogd poll --dry-run`).
 */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

/** readTiffHeader over any source of bytes. */
export async function readTiffHeaderWith(read: ReadAt): Promise<ImageInfo | undefined> {
  const head = await read(0, 16);
  if (head.length < 8) return undefined;
  const little = head.toString('latin1', 0, 2) === 'II';
  if (!little && head.toString('latin1', 0, 2) !== 'MM') return undefined;
  const u16 = (b: Buffer, o: number): number => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number): number => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number): number => Number(little ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const version = u16(head, 2);
  const big = version === 43;
  if (version !== 42 && !big) return undefined;
  const ifd = big ? u64(head, 8) : u32(head, 4);
  const countBytes = big ? 8 : 2;
  const entrySize = big ? 20 : 12;
  const countBuffer = await read(ifd, countBytes);
  if (countBuffer.length < countBytes) return undefined;
  const entries = big ? u64(countBuffer, 0) : u16(countBuffer, 0);
  if (entries <= 0 || entries > 4096) return undefined;
  const table = await read(ifd + countBytes, entries * entrySize);
  if (table.length < entries * entrySize) return undefined;

  const tags = new Map<number, number[]>();
  for (let i = 0; i < entries; i += 1) {
    const at = i * entrySize;
    const tag = u16(table, at);
    const type = u16(table, at + 2);
    const count = big ? u64(table, at + 4) : u32(table, at + 4);
    const size = TYPE_SIZE[type];
    if (size === undefined) continue;
    if (tag === TAG.ColorMap) {
      tags.set(tag, [count]);
      continue;
    }
    if (!(Object.values(TAG) as number[]).includes(tag) || count > 64) continue;
    const inline = count * size <= (big ? 8 : 4);
    const data = inline
      ? table.subarray(at + (big ? 12 : 8), at + (big ? 12 : 8) + count * size)
      : await read(big ? u64(table, at + 12) : u32(table, at + 8), count * size);
    const values: number[] = [];
    for (let j = 0; j < count; j += 1) {
      if (type === 3 || type === 8) values.push(u16(data, j * 2));
      else if (type === 4 || type === 9) values.push(u32(data, j * 4));
      else if (type === 16 || type === 17) values.push(u64(data, j * 8));
      else if (type === 1 || type === 6) values.push(data[j]!);
      else return undefined;
    }
    tags.set(tag, values);
  }

  const width = tags.get(TAG.ImageWidth)?.[0];
  const height = tags.get(TAG.ImageLength)?.[0];
  const samples = tags.get(TAG.SamplesPerPixel)?.[0] ?? 1;
  const bits = tags.get(TAG.BitsPerSample) ?? [1];
  const formats = tags.get(TAG.SampleFormat) ?? [1];
  const photometric = tags.get(TAG.Photometric)?.[0];
  if (width === undefined || height === undefined || photometric === undefined) return undefined;
  if (!bits.every((b) => b === bits[0]) || !formats.every((f) => f === formats[0])) return undefined;
  const type = SAMPLE_TYPE[`${bits[0]}/${formats[0]}`];
  if (type === undefined) return undefined;
  // Photometric: 0/1 gray, 2 RGB, 3 palette, 6 YCbCr (GDAL shows RGB); others (CMYK, Lab…) to gdalinfo.
  if (![0, 1, 2, 3, 6].includes(photometric)) return undefined;
  // A ColorMap beside another photometric (MinIsWhite + ColorMap exists): let GDAL decide.
  if (tags.has(TAG.ColorMap) !== (photometric === 3)) return undefined;
  const palette = photometric === 3;
  return {
    driver: 'GTiff',
    width,
    height,
    bands: Array.from({ length: samples }, (_, i) => ({ type, hasColorTable: palette && i === 0 })),
  };
}

/** Whether bytes open like a TIFF or BigTIFF (II*\0, MM\0*, II+\0, MM\0+). */
export function hasTiffSignature(head: Buffer): boolean {
  if (head.length < 4) return false;
  const order = head.toString('latin1', 0, 2);
  if (order === 'II') return head[3] === 0 && (head[2] === 42 || head[2] === 43);
  if (order === 'MM') return head[2] === 0 && (head[3] === 42 || head[3] === 43);
  return false;
}
