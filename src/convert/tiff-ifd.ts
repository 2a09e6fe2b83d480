/**
 * A TIFF's chain of IFDs read with positional reads of small ranges, never the whole file (a COG
 * can be many GB; its structure sits in the first few KB). Classic TIFF and BigTIFF, either byte
 * order, and each IFD's image and block layout. Used by the COG check (cog-check.ts); tiff-header.ts
 * stays the planner's own quick read of the first IFD.
 */
import type { FileHandle } from 'node:fs/promises';

/** What a reader read: calls and bytes (tests hold a check to reading only a few KB). */
export interface ReadStats {
  reads: number;
  bytes: number;
}

export const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  PlanarConfig: 284,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ColorMap: 320,
  SampleFormat: 339,
} as const;

/** Bytes per value by TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, …, LONG8, SLONG8, IFD8). */
export const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};

export interface Entry {
  type: number;
  count: number;
  /** Where the values are in the file (inside the entry itself when they fit there). */
  at: number;
  /** Length of the values in bytes. */
  bytes: number;
  /** The values' bytes when they fit in the entry. */
  inline: Buffer | undefined;
}

export interface Ifd {
  offset: number;
  /** First byte after the IFD (after its next-IFD pointer). */
  end: number;
  next: number;
  entries: Map<number, Entry>;
}

export class TiffReader {
  private constructor(
    private readonly handle: FileHandle,
    readonly little: boolean,
    readonly bigTiff: boolean,
    readonly firstIfd: number,
    private readonly stats: ReadStats | undefined,
  ) {}

  /** Reads the header; throws, saying why, when the file is not a TIFF. */
  static async open(handle: FileHandle, stats?: ReadStats): Promise<TiffReader> {
    const head = await new TiffReader(handle, true, false, 0, stats).read(0, 16, false);
    const order = head.toString('latin1', 0, 2);
    if (head.length < 8 || (order !== 'II' && order !== 'MM')) throw new Error('the file is not a TIFF');
    const little = order === 'II';
    const version = little ? head.readUInt16LE(2) : head.readUInt16BE(2);
    if (version !== 42 && (version !== 43 || head.length < 16))
      throw new Error(`the file is not a TIFF (version ${version})`);
    const bigTiff = version === 43;
    const decoder = new TiffReader(handle, little, bigTiff, 0, stats);
    return new TiffReader(handle, little, bigTiff, bigTiff ? decoder.u64(head, 8) : decoder.u32(head, 4), stats);
  }

  /** `length` bytes at `offset`; throws on a short read unless `exact` is false. */
  async read(offset: number, length: number, exact = true): Promise<Buffer> {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, offset);
    if (this.stats !== undefined) {
      this.stats.reads += 1;
      this.stats.bytes += bytesRead;
    }
    if (exact && bytesRead < length)
      throw new Error(`the file is truncated (${length} bytes wanted at byte ${offset})`);
    return buffer.subarray(0, bytesRead);
  }

  /** Many small reads, 64 at a time: [offset, length, exact] each. */
  async readMany(ranges: Array<[offset: number, length: number, exact: boolean]>): Promise<Buffer[]> {
    const buffers: Buffer[] = [];
    for (let start = 0; start < ranges.length; start += 64) {
      buffers.push(
        ...(await Promise.all(ranges.slice(start, start + 64).map(([at, n, exact]) => this.read(at, n, exact)))),
      );
    }
    return buffers;
  }

  u16(b: Buffer, at: number): number {
    return this.little ? b.readUInt16LE(at) : b.readUInt16BE(at);
  }

  u32(b: Buffer, at: number): number {
    return this.little ? b.readUInt32LE(at) : b.readUInt32BE(at);
  }

  u64(b: Buffer, at: number): number {
    const value = this.little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`an offset or count is too large (${value})`);
    return Number(value);
  }

  /** The IFD at `offset`: its entries (values not read yet) and the next IFD's offset. */
  async ifd(offset: number): Promise<Ifd> {
    const [countSize, entrySize, pointerSize] = this.bigTiff ? [8, 20, 8] : [2, 12, 4];
    const countBytes = await this.read(offset, countSize);
    const count = this.bigTiff ? this.u64(countBytes, 0) : this.u16(countBytes, 0);
    if (count === 0 || count > 4096) throw new Error(`the IFD at byte ${offset} has ${count} entries`);
    const table = await this.read(offset + countSize, count * entrySize + pointerSize);
    const entries = new Map<number, Entry>();
    for (let i = 0; i < count; i += 1) {
      const at = i * entrySize;
      const type = this.u16(table, at + 2);
      const n = this.bigTiff ? this.u64(table, at + 4) : this.u32(table, at + 4);
      const bytes = n * (TYPE_SIZE[type] ?? 0);
      const valueAt = at + (this.bigTiff ? 12 : 8);
      const fits = bytes <= pointerSize;
      entries.set(this.u16(table, at), {
        type,
        count: n,
        bytes,
        at: fits ? offset + countSize + valueAt : this.bigTiff ? this.u64(table, valueAt) : this.u32(table, valueAt),
        inline: fits ? table.subarray(valueAt, valueAt + bytes) : undefined,
      });
    }
    const pointerAt = count * entrySize;
    const next = this.bigTiff ? this.u64(table, pointerAt) : this.u32(table, pointerAt);
    return { offset, end: offset + countSize + pointerAt + pointerSize, next, entries };
  }

  /** The whole chain from the first IFD (a loop or more than 1000 IFDs is an error). */
  async chain(): Promise<Ifd[]> {
    const ifds: Ifd[] = [];
    const seen = new Set<number>();
    for (let offset = this.firstIfd; offset !== 0;) {
      if (seen.has(offset) || ifds.length >= 1000)
        throw new Error(`the IFD chain loops or is too long (at byte ${offset})`);
      seen.add(offset);
      const ifd = await this.ifd(offset);
      ifds.push(ifd);
      offset = ifd.next;
    }
    return ifds;
  }

  /** The unsigned integer values of a tag (BYTE, SHORT, LONG, LONG8, IFD8); [] when absent. */
  async values(entry: Entry | undefined): Promise<number[]> {
    if (entry === undefined || entry.count === 0) return [];
    const size = TYPE_SIZE[entry.type];
    if (size === undefined || ![1, 3, 4, 13, 16, 18].includes(entry.type)) {
      throw new Error(`a tag has type ${entry.type} where an integer was expected`);
    }
    const data = entry.inline ?? (await this.read(entry.at, entry.bytes));
    const values = new Array<number>(entry.count);
    for (let i = 0; i < entry.count; i += 1) {
      values[i] =
        size === 1
          ? data[i]!
          : size === 2
            ? this.u16(data, i * 2)
            : size === 4
              ? this.u32(data, i * 4)
              : this.u64(data, i * 8);
    }
    return values;
  }
}

/** One IFD's image as GDAL's GTiff driver sees it: size, bands, blocks (tiles, or strips). */
export interface TiffImage {
  ifd: Ifd;
  /** For messages: `the main image (2048 x 2048)`, `overview 0 (1024 x 1024)`, `the mask of …`. */
  name: string;
  subfileType: number;
  width: number;
  height: number;
  samples: number;
  compression: number;
  tiled: boolean;
  /** Tile size; for strips, the image width x rows per strip. */
  blockWidth: number;
  blockHeight: number;
  /** Offsets and byte counts of band 1's blocks in row-major order (all bands' when pixel-interleaved). */
  offsets: number[];
  counts: number[];
  /** Offsets and byte counts of all blocks (all planes when band-interleaved). */
  allOffsets: number[];
  allCounts: number[];
}

export async function readImage(tiff: TiffReader, ifd: Ifd): Promise<TiffImage> {
  const one = async (tag: number, fallback: number): Promise<number> =>
    (await tiff.values(ifd.entries.get(tag)))[0] ?? fallback;
  const [width, height, samples] = [
    await one(TAG.ImageWidth, 0),
    await one(TAG.ImageLength, 0),
    await one(TAG.SamplesPerPixel, 1),
  ];
  const tiled =
    ifd.entries.has(TAG.TileWidth) && ifd.entries.has(TAG.TileOffsets) && !ifd.entries.has(TAG.StripOffsets);
  const blockWidth = tiled ? await one(TAG.TileWidth, 0) : width;
  const blockHeight = tiled ? await one(TAG.TileLength, 0) : Math.min(await one(TAG.RowsPerStrip, height), height);
  if (width === 0 || height === 0 || blockWidth === 0 || blockHeight === 0) {
    throw new Error(`the IFD at byte ${ifd.offset} has no image size or block size`);
  }
  const allOffsets = await tiff.values(ifd.entries.get(tiled ? TAG.TileOffsets : TAG.StripOffsets));
  const allCounts = await tiff.values(ifd.entries.get(tiled ? TAG.TileByteCounts : TAG.StripByteCounts));
  const perBand = Math.ceil(width / blockWidth) * Math.ceil(height / blockHeight);
  const planes = (await one(TAG.PlanarConfig, 1)) === 2 ? samples : 1;
  if (allOffsets.length < perBand * planes || allCounts.length !== allOffsets.length) {
    throw new Error(
      `the IFD at byte ${ifd.offset} has ${allOffsets.length} block offsets for ${perBand * planes} blocks`,
    );
  }
  return {
    ifd,
    name: `an extra image (IFD at byte ${ifd.offset})`,
    subfileType: await one(TAG.NewSubfileType, 0),
    width,
    height,
    samples,
    compression: await one(TAG.Compression, 1),
    tiled,
    blockWidth,
    blockHeight,
    offsets: allOffsets.slice(0, perBand),
    counts: allCounts.slice(0, perBand),
    allOffsets,
    allCounts,
  };
}

/** A block's offset as GDAL gives it (BLOCK_OFFSET_x_y): 0 when the block has no data (byte count 0). */
export const blockOffset = (m: TiffImage, i: number): number => (m.counts[i] === 0 ? 0 : m.offsets[i]!);

/** The offset of band 1's first block that has data, in row-major order; 0 when none has. */
export function firstBlockOffset(m: TiffImage): number {
  const i = m.counts.findIndex((c) => c !== 0);
  return i < 0 ? 0 : m.offsets[i]!;
}

/** A GeoTIFF's IFDs as GDAL's GTiff driver sorts them. */
export interface GtiffLayout {
  /** All IFDs' images in chain order. */
  images: TiffImage[];
  main: TiffImage;
  /** Reduced-resolution images (NewSubfileType bit 1) with the main image's band count, in file order. */
  overviews: TiffImage[];
  /** Masks (NewSubfileType bit 4) by the image they belong to: the first full-resolution one is the main
   * image's, a reduced one belongs to the (first maskless) overview of its size. */
  masks: Map<TiffImage, TiffImage>;
}

export async function readLayout(tiff: TiffReader): Promise<GtiffLayout> {
  const images: TiffImage[] = [];
  for (const ifd of await tiff.chain()) images.push(await readImage(tiff, ifd));
  const main = images[0]!;
  main.name = `the main image (${main.width} x ${main.height})`;
  const overviews = images.filter((m, i) => i > 0 && (m.subfileType & 5) === 1 && m.samples === main.samples);
  overviews.forEach((o, i) => (o.name = `overview ${i} (${o.width} x ${o.height})`));
  const masks = new Map<TiffImage, TiffImage>();
  for (const m of images.filter((m) => (m.subfileType & 4) !== 0)) {
    const sameSize = (o: TiffImage): boolean => o.width === m.width && o.height === m.height && !masks.has(o);
    const owner = (m.subfileType & 1) === 0 ? main : overviews.find(sameSize);
    if (owner === undefined || masks.has(owner)) continue;
    masks.set(owner, m);
    m.name = `the mask of ${owner === main ? 'the main image' : owner.name}`;
  }
  return { images, main, overviews, masks };
}
