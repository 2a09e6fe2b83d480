/**
 * The COG gate against real files made by GDAL, each also judged by GDAL's own validator: under
 * `policy: 'gdal'` checkCog must give the validator's verdict (ok, and as many errors and warnings);
 * under cogd's policy (the default) it may only be stricter, and where it is, the test says so.
 * COGD_CORPUS adds the corpus of real GeoTIFFs (read in place).
 */
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { open, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCog, type CogReport } from '../../src/convert/cog-check.js';
import { readLayout, TiffReader } from '../../src/convert/tiff-ifd.js';
import { makeTiff, tempDir, validateCog } from '../support/helpers.js';

const corpus = process.env['COGD_CORPUS'];
if (corpus === undefined || corpus === '') {
  console.log(
    'NOTICE: COGD_CORPUS is not set; the COG check over the corpus is skipped (CI sets it to ../shared/testdata/geotiff)',
  );
}

/** The " - " lines the validator prints under a heading. */
function listed(output: string, heading: string): string[] {
  const at = output.indexOf(heading);
  if (at < 0) return [];
  const lines = output.slice(at).split('\n').slice(1);
  const end = lines.findIndex((line) => !line.startsWith(' - '));
  return lines.slice(0, end < 0 ? lines.length : end);
}

/** checkCog under both policies beside GDAL's validator; asserts what must agree. */
async function judge(file: string): Promise<{ cogd: CogReport; gdal: CogReport; validator: string }> {
  const [cogd, gdal, validator] = await Promise.all([
    checkCog(file),
    checkCog(file, { policy: 'gdal' }),
    validateCog(file),
  ]);
  const why = `${file}\nvalidator: ${validator.output}\ncheckCog (gdal): ${JSON.stringify(gdal, null, 1)}`;
  expect(gdal.ok, why).toBe(validator.ok);
  expect(gdal.warnings.length, why).toBe(listed(validator.output, 'The following warnings were found').length);
  if (validator.output.includes('The following errors were found') || validator.ok) {
    expect(gdal.errors.length, why).toBe(listed(validator.output, 'The following errors were found').length);
  }
  // cogd's policy is GDAL's plus stricter checks: never ok where GDAL is not.
  if (!validator.ok) expect(cogd.ok, why).toBe(false);
  for (const error of cogd.errors) expect(error).toMatch(/^not a cloud optimized GeoTIFF: /);
  return { cogd, gdal, validator: validator.output };
}

const translate = async (args: string[]): Promise<void> => {
  await execa('gdal_translate', ['-q', ...args]);
};

describe('COG check', () => {
  let dir = '';
  const at = (name: string): string => path.join(dir, name);

  beforeAll(async () => {
    dir = await tempDir('cogd-cog-check-');
    await Promise.all([
      makeTiff(at('rgb2048.tif'), { width: 2048, height: 2048, bands: 3 }),
      makeTiff(at('gray2048.tif'), { width: 2048, height: 2048, bands: 1 }),
      makeTiff(at('rgb256.tif'), { width: 256, height: 256, bands: 3 }),
      makeTiff(at('u16.tif'), { width: 1000, height: 700, bands: 1, type: 'UInt16' }),
      makeTiff(at('f32.tif'), { width: 600, height: 400, bands: 1, type: 'Float32' }),
      makeTiff(at('rgba.tif'), { width: 600, height: 400, bands: 4 }),
      makeTiff(at('gray200.tif'), { width: 200, height: 200, bands: 1 }),
    ]);
    await translate(['-of', 'COG', at('rgb2048.tif'), at('cog2048.tif')]);
  });

  afterAll(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('passes the COGs gdal_translate -of COG makes, as GDAL does', async () => {
    const made: Array<[name: string, args: string[]]> = [
      ['cog256.tif', [at('rgb256.tif')]],
      ['cog-u16.tif', [at('u16.tif')]],
      ['cog-f32.tif', ['-co', 'PREDICTOR=YES', at('f32.tif')]],
      ['cog-bigtiff.tif', ['-co', 'BIGTIFF=YES', at('rgb2048.tif')]],
      ['cog-rgba-jpeg.tif', ['-co', 'COMPRESS=JPEG', at('rgba.tif')]],
      ['cog-mask.tif', ['-b', '1', '-b', '2', '-b', '3', '-mask', '4', at('rgba.tif')]],
    ];
    for (const [name, args] of made) await translate(['-of', 'COG', ...args, at(name)]);
    const reports = new Map<string, CogReport>();
    for (const name of ['cog2048.tif', ...made.map(([n]) => n)]) {
      const { cogd, validator } = await judge(at(name));
      expect(validator, name).toContain('is a valid cloud optimized GeoTIFF');
      expect(cogd, name).toMatchObject({ ok: true, errors: [], warnings: [] });
      expect(cogd.facts?.ghostHeader, name).toMatchObject({ LAYOUT: 'IFDS_BEFORE_DATA', BLOCK_ORDER: 'ROW_MAJOR' });
      reports.set(name, cogd);
    }
    expect(reports.get('cog2048.tif')?.facts).toMatchObject({
      byteOrder: 'little-endian',
      bigTiff: false,
      width: 2048,
      height: 2048,
      bands: 3,
      tiled: true,
      tileWidth: 512,
      tileHeight: 512,
      compression: 5,
      overviews: [
        { width: 1024, height: 1024 },
        { width: 512, height: 512 },
      ],
      masks: [],
    });
    expect(reports.get('cog256.tif')?.facts).toMatchObject({ width: 256, overviews: [], tileWidth: 512 });
    expect(reports.get('cog-bigtiff.tif')?.facts).toMatchObject({
      bigTiff: true,
      overviews: [{ width: 1024 }, { width: 512 }],
    });
    expect(reports.get('cog-u16.tif')?.facts).toMatchObject({
      width: 1000,
      height: 700,
      overviews: [{ width: 500, height: 350 }],
    });
    expect(reports.get('cog-rgba-jpeg.tif')?.facts).toMatchObject({ bands: 4, compression: 7 });
    expect(reports.get('cog-mask.tif')?.facts).toMatchObject({
      bands: 3,
      masks: [
        { width: 600, height: 400 },
        { width: 300, height: 200 },
      ],
    });
  });

  it('passes a big-endian tiled GeoTIFF with overviews written before the data (the COG driver has no ENDIANNESS)', async () => {
    // A tiled GTiff with overviews, copied with COPY_SRC_OVERVIEWS=YES: IFDs first, and GDAL writes its
    // ghost header (block leaders stay little-endian: the full check passes in a big-endian file).
    await translate(['-of', 'GTiff', '-co', 'TILED=YES', at('gray2048.tif'), at('tiled-src.tif')]);
    await execa('gdaladdo', ['-q', at('tiled-src.tif'), '2', '4', '8']);
    for (const [name, extra] of [
      ['be.tif', []],
      ['be-bigtiff.tif', ['-co', 'BIGTIFF=YES']],
    ] as const) {
      await translate([
        '-of',
        'GTiff',
        '-co',
        'TILED=YES',
        '-co',
        'COPY_SRC_OVERVIEWS=YES',
        '-co',
        'ENDIANNESS=BIG',
        ...extra,
        at('tiled-src.tif'),
        at(name),
      ]);
      const { cogd } = await judge(at(name));
      expect(cogd.ok, cogd.errors.join('\n')).toBe(true);
      expect(cogd.facts).toMatchObject({
        byteOrder: 'big-endian',
        bigTiff: name === 'be-bigtiff.tif',
        ghostHeader: { LAYOUT: 'IFDS_BEFORE_DATA', BLOCK_LEADER: 'SIZE_AS_UINT4' },
        tileWidth: 256,
      });
      expect(cogd.facts?.overviews.map((o) => o.width)).toEqual([1024, 512, 256]);
      expect(cogd.warnings).toEqual([]);
    }
  });

  it('fails a striped GeoTIFF: not tiled (GDAL too above 1024 px wide; cogd at any size)', async () => {
    const large = await judge(at('gray2048.tif'));
    expect(large.validator).toContain('The file is greater than 512xH or Wx512, but is not tiled');
    expect(large.gdal.errors).toEqual([
      'not a cloud optimized GeoTIFF: the main image (2048 x 2048) is not tiled (it is stored in strips)',
    ]);
    expect(large.cogd.errors).toContain(
      'not a cloud optimized GeoTIFF: the main image (2048 x 2048) is not tiled (it is stored in strips)',
    );
    expect(large.cogd.errors).toContain('not a cloud optimized GeoTIFF: the image is 2048 x 2048 but has no overviews');
    // GDAL calls a small striped file a valid COG; cogd does not.
    const small = await judge(at('gray200.tif'));
    expect(small.gdal.ok).toBe(true);
    expect(small.cogd.errors).toEqual([
      'not a cloud optimized GeoTIFF: the main image (200 x 200) is not tiled (it is stored in strips)',
    ]);
  });

  it('fails a tiled 2048² GeoTIFF without overviews (GDAL only warns) and passes a 200² one (one tile)', async () => {
    await translate(['-of', 'GTiff', '-co', 'TILED=YES', at('gray2048.tif'), at('tiled2048.tif')]);
    const large = await judge(at('tiled2048.tif'));
    expect(large.validator).toContain('it is recommended to include internal overviews');
    expect(large.gdal).toMatchObject({ ok: true, warnings: [expect.stringContaining('has no overviews')] });
    expect(large.cogd.errors).toEqual([
      'not a cloud optimized GeoTIFF: the image is 2048 x 2048 (larger than its 256 x 256 tiles) but has no overviews',
    ]);

    await translate(['-of', 'GTiff', '-co', 'TILED=YES', at('gray200.tif'), at('tiled200.tif')]);
    const small = await judge(at('tiled200.tif'));
    expect(small.cogd.ok, small.cogd.errors.join('\n')).toBe(true);
    expect(small.cogd.facts).toMatchObject({ width: 200, tileWidth: 256, overviews: [] });
  });

  it('fails overviews added by gdaladdo after the data, as GDAL does, and says the IFDs come after the data', async () => {
    await translate(['-of', 'GTiff', '-co', 'TILED=YES', at('gray2048.tif'), at('addo.tif')]);
    await execa('gdaladdo', ['-q', at('addo.tif'), '2', '4', '8']);
    const { cogd, gdal, validator } = await judge(at('addo.tif'));
    expect(validator).toContain(
      'The offset of the first block of the main resolution image should be after the one of the overview of index 2',
    );
    expect(gdal.errors).toContainEqual(
      expect.stringMatching(
        /^not a cloud optimized GeoTIFF: the data of the main image \(2048 x 2048\) starts at byte \d+, before that of overview 0 \(1024 x 1024\)/,
      ),
    );
    expect(cogd.errors).toContainEqual(
      expect.stringMatching(
        /the IFD of overview 2 \(256 x 256\) ends at byte \d+, after the image data starts .*IFDs must come before the image data/,
      ),
    );
  });

  it('fails a COG edited afterwards, and one whose block leader or trailer is damaged, as GDAL does', async () => {
    for (const name of ['edited.tif', 'leader.tif', 'trailer.tif'])
      await translate(['-of', 'COG', at('rgb256.tif'), at(name)]);
    await execa('gdaladdo', ['-q', at('edited.tif'), '2']);
    const edited = await judge(at('edited.tif'));
    expect(edited.cogd.errors).toContain(
      'not a cloud optimized GeoTIFF: KNOWN_INCOMPATIBLE_EDITION=YES is declared in the file (it was modified after it was written as a COG)',
    );

    const handle = await open(at('leader.tif'), 'r');
    const { main } = await readLayout(await TiffReader.open(handle)).finally(() => handle.close());
    const [offset, count] = [main.offsets[0]!, main.counts[0]!];
    const damage = async (name: string, at: number, bytes: number[]): Promise<void> => {
      const file = await open(path.join(dir, name), 'r+');
      await file.write(Buffer.from(bytes), 0, bytes.length, at).finally(() => file.close());
    };
    await damage('leader.tif', offset - 4, [1, 0, 0, 0]);
    await damage('trailer.tif', offset + count, [0, 0, 0, 0]);
    const leader = await judge(at('leader.tif'));
    expect(leader.cogd.errors).toEqual([
      `not a cloud optimized GeoTIFF: the main image (256 x 256): the leader of block (0, 0) gives its size as 1 instead of ${count}`,
    ]);
    const trailer = await judge(at('trailer.tif'));
    expect(trailer.cogd.errors).toEqual([
      'not a cloud optimized GeoTIFF: the main image (256 x 256): the trailer bytes of block (0, 0) are invalid',
    ]);
    expect((await checkCog(at('trailer.tif'), { fullCheck: false })).ok).toBe(true);
  });

  it('fails what is not a TIFF, with the reason', async () => {
    await writeFile(at('text.tif'), 'not a tiff at all');
    const { cogd } = await judge(at('text.tif'));
    expect(cogd).toEqual({
      ok: false,
      errors: ['not a cloud optimized GeoTIFF: cannot read the TIFF structure: the file is not a TIFF'],
      warnings: [],
      facts: null,
    });
  });

  it('reads only a few KB of a 2048² COG', async () => {
    const stats = { reads: 0, bytes: 0 };
    expect((await checkCog(at('cog2048.tif'), { stats })).ok).toBe(true);
    expect(stats.bytes).toBeGreaterThan(0);
    expect(stats.bytes).toBeLessThan(4096);
    expect((await stat(at('cog2048.tif'))).size).toBeGreaterThan(1000 * stats.bytes);
  });

  it.skipIf(corpus === undefined || corpus === '')(
    'passes every corpus file converted with -of COG and judges each input as GDAL does',
    async () => {
      const files = readdirSync(corpus!)
        .filter((name) => /\.tiff?$/i.test(name))
        .sort();
      expect(files.length).toBeGreaterThan(0);
      let converted = 0;
      for (const name of files) {
        const input = path.join(corpus!, name);
        if ((await execa('gdalinfo', [input], { reject: false })).exitCode !== 0) continue;
        await judge(input);
        const cog = at(`corpus-${name}`);
        await translate(['-of', 'COG', input, cog]);
        const { cogd } = await judge(cog);
        expect(cogd, name).toMatchObject({ ok: true, errors: [] });
        await rm(cog);
        converted += 1;
      }
      expect(converted).toBeGreaterThan(0);
    },
  );
});
