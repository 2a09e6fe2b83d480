/**
 * The TIFF header read that spares plain 8-bit images a gdalinfo process must agree with gdalinfo
 * wherever it answers, and step aside (undefined) wherever it cannot vouch.
 */
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGdalinfo } from '../../src/convert/image.js';
import { readPlainByteTiff, readTiffHeader } from '../../src/convert/tiff-header.js';
import { makeTiff, tempDir } from '../support/helpers.js';

async function agreesWithGdal(file: string, read = readPlainByteTiff): Promise<'header' | 'gdalinfo'> {
  const header = await read(file);
  if (header === undefined) return 'gdalinfo';
  const gdal = parseGdalinfo((await execa('gdalinfo', ['-json', file])).stdout);
  expect(header.width, file).toBe(gdal.width);
  expect(header.height, file).toBe(gdal.height);
  expect(
    header.bands.map((b) => [b.type, b.hasColorTable]),
    file,
  ).toEqual(gdal.bands.map((b) => [b.type, b.hasColorTable]));
  return 'header';
}

describe('TIFF header read', () => {
  it('answers for 8-bit images as gdalinfo does, and leaves the rest to gdalinfo', async () => {
    const dir = await tempDir();
    const made = [
      { spec: { bands: 1 }, expect: 'header' },
      { spec: { bands: 3 }, expect: 'header' },
      { spec: { bands: 4, width: 300, height: 7 }, expect: 'header' },
      { spec: { bands: 5 }, expect: 'header' },
      { spec: { bands: 1, type: 'UInt16' as const }, expect: 'gdalinfo' },
      { spec: { bands: 3, type: 'Float32' as const }, expect: 'gdalinfo' },
    ];
    for (const [i, m] of made.entries()) {
      expect(await agreesWithGdal(await makeTiff(path.join(dir, `m${i}.tif`), m.spec)), JSON.stringify(m.spec)).toBe(
        m.expect,
      );
    }
    // BigTIFF, big-endian, palette, YCbCr JPEG: made with GDAL's own options.
    const base = path.join(dir, 'm1.tif');
    for (const [name, options] of [
      ['big.tif', ['-co', 'BIGTIFF=YES']],
      ['ycbcr.tif', ['-co', 'COMPRESS=JPEG', '-co', 'PHOTOMETRIC=YCBCR', '-co', 'TILED=YES']],
      ['msb.tif', ['-co', 'ENDIANNESS=BIG']],
    ] as const) {
      await execa('gdal_translate', ['-q', ...options, base, path.join(dir, name)]);
      expect(await agreesWithGdal(path.join(dir, name)), name).toBe('header');
    }
  });

  it('tells the sample type of other TIFFs as gdalinfo does (they go to gdalinfo with statistics at once)', async () => {
    const dir = await tempDir();
    for (const [i, spec] of [
      { bands: 1, type: 'UInt16' as const },
      { bands: 3, type: 'Float32' as const },
      { bands: 1, type: 'Int16' as const },
    ].entries()) {
      const file = await makeTiff(path.join(dir, `t${i}.tif`), spec);
      expect(await agreesWithGdal(file, readTiffHeader), spec.type).toBe('header');
      expect(await readPlainByteTiff(file), spec.type).toBeUndefined();
    }
  });

  it('steps aside for what is not a TIFF', async () => {
    const dir = await tempDir();
    for (const [name, body] of [
      ['text.tif', 'not a tiff'],
      ['short.tif', 'II*'],
      ['badifd.tif', Buffer.concat([Buffer.from('II*\0'), Buffer.alloc(64, 7)])],
    ] as const) {
      await writeFile(path.join(dir, name), body);
      expect(await readPlainByteTiff(path.join(dir, name)), name).toBeUndefined();
    }
  });

  const corpus = process.env['COGD_CORPUS'];
  it.skipIf(corpus === undefined || corpus === '')(
    'agrees with gdalinfo on every corpus file it answers for',
    async () => {
      const files = readdirSync(corpus!).filter((f) => /\.tiff?$/i.test(f));
      const answered: string[] = [];
      for (const f of files) if ((await agreesWithGdal(path.join(corpus!, f))) === 'header') answered.push(f);
      expect(answered.length).toBeGreaterThanOrEqual(14); // the 8-bit ones; the MinIsWhite+ColorMap one goes to gdalinfo
      expect(answered).not.toContain('palette-byte-laea-europe-deflate-nodata0.tif');
      expect(answered).toContain('palette-byte-laea-uncompressed-striped.tif');
    },
  );
});
