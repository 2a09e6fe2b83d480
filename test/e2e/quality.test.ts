/**
 * Output quality, with real GDAL and a real S3: each COG profile on the image kinds users publish
 * (valid COG by GDAL's validator, the expected codec, predictor and overview resampling, fidelity,
 * lossless profiles pixel-identical), true previews asserted on pixel values, and the gate that
 * keeps an output that is no COG from counting.
 */
import { execa } from 'execa';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { featureTiff, pixel, type Feature } from '../support/images.js';
import {
  baseArgs,
  cogd,
  download,
  freshBuckets,
  getText,
  keys,
  put,
  putFile,
  resultKeyOf,
  ROOT,
  tempDir,
  validateCog,
} from '../support/helpers.js';

interface Info {
  bands: Array<{
    type: string;
    checksum?: number;
    colorInterpretation?: string;
    noDataValue?: number;
    colorTable?: unknown;
    overviews?: unknown[];
  }>;
  metadata?: Record<string, Record<string, string>>;
  size: number[];
}

async function info(file: string): Promise<Info> {
  return JSON.parse((await execa('gdalinfo', ['-json', '-checksum', file])).stdout) as Info;
}

const KINDS: Feature[] = ['rgb', 'rgba', 'u16-nodata', 'i16', 'f32-nodata', 'palette'];

/** Which kinds each profile holds; the rest fail with a reason naming a profile that fits. */
const HOLDS: Record<string, Feature[]> = {
  lzw: KINDS,
  deflate: KINDS,
  zstd: KINDS,
  webp: ['rgb', 'rgba'],
  jpeg: ['rgb', 'rgba'],
  lerc: ['rgb', 'rgba', 'u16-nodata', 'i16', 'f32-nodata'],
};

const CODEC: Record<string, RegExp> = {
  lzw: /^LZW$/,
  deflate: /^DEFLATE$/,
  zstd: /^ZSTD$/,
  webp: /^WEBP$/,
  jpeg: /JPEG/,
  lerc: /^LERC/,
};

describe('COG profiles', () => {
  it.each(Object.keys(HOLDS))(
    '%s: valid COGs, the right options, faithful; lossless means identical pixels',
    async (profile) => {
      const home = await tempDir();
      const buckets = await freshBuckets();
      const sources = new Map<Feature, string>();
      for (const kind of KINDS) {
        sources.set(kind, await featureTiff(home, kind));
        await putFile(buckets.input, `p/${kind}.tif`, sources.get(kind)!);
      }
      await put(
        buckets.input,
        'p-raw.csv',
        KINDS.map((k) => `p/${k}.tif,${k === 'rgb' ? 3 : k === 'rgba' ? 4 : 1}`).join('\n'),
      );
      const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), '--profile', profile]);
      const holds = HOLDS[profile]!;
      expect(result.stdout, result.stderr).toMatch(
        new RegExp(`6 rows, ${holds.length} processed, ${6 - holds.length} failed`),
      );
      const errors =
        holds.length === 6 ? '' : await getText(buckets.input, (await resultKeyOf(buckets.input, 'p-', 'errors'))!);
      for (const kind of KINDS.filter((k) => !holds.includes(k))) {
        expect(errors, kind).toMatch(
          new RegExp(`p/${kind}\\.tif,.*the ${profile} profile.*use --profile (zstd|webp|deflate)`),
        );
      }
      for (const kind of holds) {
        const cog = await download(buckets.output, `p/${kind}.tif`, path.join(home, `out-${kind}.tif`));
        const validation = await validateCog(cog);
        expect(validation.ok, `${profile} ${kind}: ${validation.output}`).toBe(true);
        const [input, output] = [await info(sources.get(kind)!), await info(cog)];
        const structure = output.metadata?.['IMAGE_STRUCTURE'] ?? {};
        expect(structure['COMPRESSION'], `${profile} ${kind}`).toMatch(CODEC[profile]!);
        const predicted = ['lzw', 'deflate', 'zstd'].includes(profile) && kind !== 'palette';
        expect(structure['PREDICTOR'], `${profile} ${kind}`).toBe(
          predicted ? (kind === 'f32-nodata' ? '3' : '2') : undefined,
        );
        expect(output.metadata?.['']?.['OVR_RESAMPLING_ALG'], `${profile} ${kind}`).toBe(
          kind === 'palette' ? 'NEAREST' : 'AVERAGE',
        );
        expect(output.size).toEqual(input.size);
        expect(output.bands.map((b) => b.noDataValue)).toEqual(
          (profile === 'jpeg' && kind === 'rgba' ? input.bands.slice(0, 3) : input.bands).map((b) => b.noDataValue),
        );
        if (profile === 'webp' && kind === 'rgba') {
          // Lossless WebP keeps alpha and every visible pixel; it drops the colour under alpha 0.
          expect(output.bands[3]!.checksum).toBe(input.bands[3]!.checksum);
        } else if (profile !== 'jpeg') {
          // Lossless: GDAL's checksums of every band equal the input's.
          expect(
            output.bands.map((b) => b.checksum),
            `${profile} ${kind}`,
          ).toEqual(input.bands.map((b) => b.checksum));
        }
        if (kind === 'palette') {
          // Nearest keeps an overview's pixels palette indices (average would invent new ones).
          const overview = path.join(home, `ovr-${profile}.tif`);
          await execa('gdal_translate', ['-q', '-ovr', '0', cog, overview]);
          const { stdout } = await execa('gdalinfo', ['-hist', overview]);
          const buckets256 = /\d+ buckets from -0\.5 to 255\.5:\n\s+([\d ]+)/
            .exec(stdout)![1]!
            .trim()
            .split(/\s+/)
            .map(Number);
          expect(
            buckets256.slice(4).every((n) => n === 0),
            `${profile} palette overview holds only indices 0-3`,
          ).toBe(true);
        }
      }
      const runLog = await execa('sh', ['-c', `cat ${home}/logs/run-*/rgb.log`]);
      expect(runLog.stdout).toMatch(new RegExp(`profile ${profile}: ${profile === 'jpeg' ? 'lossy' : 'lossless'}`));
      expect(runLog.stdout).toMatch(/checked: a valid COG, faithful to the input/);
    },
  );

  it('auto picks webp for RGB and zstd for the rest; --co must be an option GDAL lists', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    for (const kind of ['rgb', 'f32-nodata'] as const)
      await putFile(buckets.input, `${kind}.tif`, await featureTiff(home, kind));
    await put(buckets.input, 'a-raw.csv', 'rgb.tif,3\nf32-nodata.tif,1\n');
    const args = await baseArgs(buckets, home);
    const typo = await cogd(['poll', ...args, '--profile', 'auto', '--co', 'LEVLE=9']);
    expect(typo.exitCode).toBe(2);
    expect(typo.stderr).toMatch(/--co LEVLE is not a creation option of GDAL's COG driver \(did you mean LEVEL/);
    expect((await cogd(['poll', ...args, '--co', 'COMPRESS=ZSTD'])).stderr).toMatch(
      /COMPRESS is set by the profile \(choose the codec with --profile/,
    );
    const result = await cogd(['poll', '--wait', ...args, '--profile', 'auto', '--co', 'BLOCKSIZE=256']);
    expect(result.exitCode, result.stderr).toBe(0);
    const rgb = await info(await download(buckets.output, 'rgb.tif', path.join(home, 'o1.tif')));
    const f32 = await info(await download(buckets.output, 'f32-nodata.tif', path.join(home, 'o2.tif')));
    expect(rgb.metadata?.['IMAGE_STRUCTURE']?.['COMPRESSION']).toBe('WEBP');
    expect(f32.metadata?.['IMAGE_STRUCTURE']?.['COMPRESSION']).toBe('ZSTD');
    const { stdout } = await execa('gdalinfo', [path.join(home, 'o2.tif')]);
    expect(stdout).toMatch(/Block=256x256/);
  });
});

describe('true previews', () => {
  it("draw colours by band role, masked pixels as the background, stretch from valid pixels, 1-bit as it looks, a huge side within JPEG's limit", async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const kinds: Feature[] = ['bgr', 'rgba', 'u16-nodata', 'f32-nodata', 'bit1', 'palette', 'tall', 'rgb-nodata'];
    for (const kind of kinds) await putFile(buckets.input, `v/${kind}.tif`, await featureTiff(home, kind));
    await put(buckets.input, 'v-raw.csv', kinds.map((k) => `v/${k}.tif,1`).join('\n'));
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(result.stdout, result.stderr).toMatch(/8 rows, 8 processed, 0 failed/);
    const preview = async (kind: Feature): Promise<string> =>
      download(buckets.output, `v/${kind}.jpg`, path.join(home, `${kind}.jpg`));
    const near = (actual: number[], expected: number[], tolerance = 12): boolean =>
      actual.length === expected.length && actual.every((v, i) => Math.abs(v - expected[i]!) <= tolerance);

    // Blue, Green, Red tags: the roof is red, not blue.
    const bgr = await pixel(await preview('bgr'), 300, 200);
    expect(near(bgr, [200, 30, 40]), `bgr ${bgr.join(',')}`).toBe(true);
    // Alpha 0 (left half): white; the rest: the image.
    const rgba = await preview('rgba');
    expect(near(await pixel(rgba, 100, 200), [255, 255, 255], 4)).toBe(true);
    expect(near(await pixel(rgba, 500, 200), [255, 255, 255], 4)).toBe(false);
    // Nodata (left half) is white; the valid data spans the whole 8-bit range (stretched from valid pixels only).
    for (const kind of ['u16-nodata', 'f32-nodata'] as const) {
      const file = await preview(kind);
      expect(await pixel(file, 100, 200), kind).toEqual([255]);
      const { stdout } = await execa('gdalinfo', ['-json', '-stats', '-srcwin', '310', '0', '290', '400', file]).catch(
        async () =>
          execa('sh', [
            '-c',
            `gdal_translate -q -srcwin 310 0 290 400 ${file} ${file}.right.tif && gdalinfo -json -stats ${file}.right.tif`,
          ]),
      );
      const band = (JSON.parse(stdout) as { bands: Array<{ minimum: number; maximum: number }> }).bands[0]!;
      expect(band.minimum, kind).toBeLessThan(30);
      expect(band.maximum, kind).toBeGreaterThan(225);
    }
    expect(near(await pixel(await preview('rgb-nodata'), 50, 200), [255, 255, 255], 4)).toBe(true);
    // 1-bit: black and white, not black and 1.
    const bits = await preview('bit1');
    const values = [await pixel(bits, 5, 5), await pixel(bits, 45, 5)].map((v) => v[0]!);
    expect(values.sort((a, b) => a - b)).toEqual([expect.closeTo(0, -1.2), expect.closeTo(255, -1.2)]);
    // A palette is drawn in its colours.
    expect((await pixel(await preview('palette'), 5, 5)).length).toBe(3);
    // 1 × 70,000: scaled to JPEG's 65,500.
    const { stdout: tall } = await execa('gdalinfo', ['-json', await preview('tall')]);
    expect((JSON.parse(tall) as Info).size).toEqual([1, 65_500]);
  });

  it('--preview-max-size caps the longest side; --preview-background paints the gaps', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'rgba.tif', await featureTiff(home, 'rgba'));
    await put(buckets.input, 's-raw.csv', 'rgba.tif,4\n');
    const result = await cogd([
      'poll',
      '--wait',
      ...(await baseArgs(buckets, home)),
      '--preview-max-size',
      '300',
      '--preview-background',
      '#ff0000',
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const jpeg = await download(buckets.output, 'rgba.jpg', path.join(home, 'small.jpg'));
    expect((JSON.parse((await execa('gdalinfo', ['-json', jpeg])).stdout) as Info).size).toEqual([300, 200]);
    const gap = await pixel(jpeg, 20, 100);
    expect(gap[0]).toBeGreaterThan(230);
    expect(gap[1]).toBeLessThan(25);
  });
});

describe('the COG gate', () => {
  it("a GDAL that writes a GeoTIFF which is no COG: the row fails with the gate's reason, nothing counts as processed", async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'g.tif', await featureTiff(home, 'rgb'));
    await put(buckets.input, 'g-raw.csv', 'g.tif,3\n');
    const env = { PATH: `${path.join(ROOT, 'test/fixtures/noncog-gdal')}:${process.env['PATH'] ?? ''}` };
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))], { env });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/1 rows, 0 processed, 1 failed/);
    expect(await resultKeyOf(buckets.input, 'g-', 'processed')).toBeUndefined();
    const errors = await getText(buckets.input, (await resultKeyOf(buckets.input, 'g-', 'errors'))!);
    expect(errors).toMatch(/g\.tif,the output is not a cloud optimized GeoTIFF: (?!not a cloud).*tiled/);
    expect(await keys(buckets.output)).toEqual([]);
  });
});
