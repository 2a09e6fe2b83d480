/** COG profiles, true previews and the fidelity check, as rules over GDAL's facts (no GDAL run here). */
import { describe, expect, it } from 'vitest';
import { differences } from '../../src/convert/fidelity.js';
import type { BandInfo, ImageInfo } from '../../src/convert/image.js';
import { backgroundRgb, planPreview, previewBands, previewCommand, previewVrt } from '../../src/convert/preview.js';
import { autoProfile, cogCommand, DEFAULT_CONVERSION, planCog, wantsChecksum } from '../../src/convert/profiles.js';
import type { ConversionSettings } from '../../src/types.js';

const band = (type: string, extra: Partial<BandInfo> = {}): BandInfo => ({ type, hasColorTable: false, ...extra });
const image = (bands: BandInfo[], extra: Partial<ImageInfo> = {}): ImageInfo => ({
  driver: 'GTiff',
  width: 1000,
  height: 800,
  bands,
  ...extra,
});
const settings = (extra: Partial<ConversionSettings> = {}): ConversionSettings => ({ ...DEFAULT_CONVERSION, ...extra });
const rgb = image([
  band('Byte', { colorInterpretation: 'Red' }),
  band('Byte', { colorInterpretation: 'Green' }),
  band('Byte', { colorInterpretation: 'Blue' }),
]);
const options = (info: ImageInfo, extra: Partial<ConversionSettings> = {}) =>
  Object.fromEntries(planCog(info, settings(extra)).options);

describe('profiles', () => {
  it('lzw, deflate and zstd take the predictor of the data type, none for palettes', () => {
    expect(options(rgb)).toEqual({
      COMPRESS: 'LZW',
      PREDICTOR: '2',
      OVERVIEW_RESAMPLING: 'AVERAGE',
      BIGTIFF: 'IF_SAFER',
    });
    expect(options(image([band('Float32')]), { profile: 'deflate' })).toMatchObject({
      COMPRESS: 'DEFLATE',
      PREDICTOR: '3',
    });
    expect(options(image([band('Int16')]), { profile: 'zstd' })).toMatchObject({ COMPRESS: 'ZSTD', PREDICTOR: '2' });
    const palette = image([band('Byte', { hasColorTable: true, colorInterpretation: 'Palette' })]);
    expect(options(palette)).toEqual({ COMPRESS: 'LZW', OVERVIEW_RESAMPLING: 'NEAREST', BIGTIFF: 'IF_SAFER' });
    expect(options(image([band('Byte', { nbits: 1 })]))).toMatchObject({ OVERVIEW_RESAMPLING: 'NEAREST' });
    expect(planCog(rgb, settings()).lossless).toBe(true);
  });

  it('webp is lossless RGB(A) Byte; jpeg lossy RGB Byte without nodata; lerc takes an error', () => {
    expect(planCog(rgb, settings({ profile: 'webp' }))).toMatchObject({ profile: 'webp', lossless: true });
    expect(options(rgb, { profile: 'webp' })).toMatchObject({ COMPRESS: 'WEBP', QUALITY: '100' });
    expect(planCog(rgb, settings({ profile: 'webp', creationOptions: ['QUALITY=85'] })).lossless).toBe(false);
    expect(planCog(rgb, settings({ profile: 'jpeg' }))).toMatchObject({ profile: 'jpeg', lossless: false });
    const dem = image([band('Float32', { nodata: -9999 })]);
    expect(options(dem, { profile: 'lerc', maxZError: 0.01 })).toMatchObject({ COMPRESS: 'LERC', MAX_Z_ERROR: '0.01' });
    expect(planCog(dem, settings({ profile: 'lerc', maxZError: 0.01 })).lossless).toBe(false);
    expect(planCog(dem, settings({ profile: 'lerc' })).lossless).toBe(true);
  });

  it('a profile that cannot hold the image fails it, naming one that can', () => {
    const u16 = image([band('UInt16'), band('UInt16'), band('UInt16')]);
    expect(() => planCog(u16, settings({ profile: 'jpeg' }))).toThrow(
      /the jpeg profile holds RGB Byte images; this image has 3 UInt16 bands: use --profile zstd \(or auto\)/,
    );
    expect(() => planCog(image([band('Byte')]), settings({ profile: 'webp' }))).toThrow(
      /webp profile holds 3 or 4 Byte bands .* 1 Byte band: use --profile zstd/,
    );
    const withNodata = image(rgb.bands.map((b) => ({ ...b, nodata: 0 })));
    expect(() => planCog(withNodata, settings({ profile: 'jpeg' }))).toThrow(/use --profile webp/);
    expect(() => planCog(image([band('Byte', { hasColorTable: true })]), settings({ profile: 'lerc' }))).toThrow(
      /not palette indices/,
    );
  });

  it('auto picks by type; --co and --overview-resampling override; the command lists every option', () => {
    expect(autoProfile(rgb)).toBe('webp');
    expect(autoProfile(image([...rgb.bands, band('Byte', { colorInterpretation: 'Alpha' })]))).toBe('zstd'); // exact RGBA
    expect(
      planCog(image([...rgb.bands, band('Byte', { colorInterpretation: 'Alpha' })]), settings({ profile: 'webp' }))
        .exactBands,
    ).toEqual([4]);
    expect(autoProfile(image([band('Float32')]))).toBe('zstd');
    expect(planCog(image([band('UInt16')]), settings({ profile: 'auto' })).profile).toBe('zstd');
    expect(
      options(rgb, { creationOptions: ['LEVEL=9', 'BLOCKSIZE=256'], overviewResampling: 'lanczos' }),
    ).toMatchObject({ LEVEL: '9', BLOCKSIZE: '256', OVERVIEW_RESAMPLING: 'LANCZOS' });
    expect(cogCommand(planCog(rgb, settings()), 'in.tif', 'out.tif')).toEqual([
      '-q',
      '-of',
      'COG',
      '-co',
      'COMPRESS=LZW',
      '-co',
      'PREDICTOR=2',
      '-co',
      'OVERVIEW_RESAMPLING=AVERAGE',
      '-co',
      'BIGTIFF=IF_SAFER',
      '-mo',
      'OVR_RESAMPLING_ALG=AVERAGE',
      'in.tif',
      'out.tif',
    ]);
    expect(wantsChecksum(settings({ profile: 'jpeg' }))).toBe(false);
    expect(wantsChecksum(settings({ profile: 'auto' }))).toBe(true);
  });
});

describe('previews', () => {
  it('choose bands by role, falling back to position', () => {
    const bgr = image([
      band('Byte', { colorInterpretation: 'Blue' }),
      band('Byte', { colorInterpretation: 'Green' }),
      band('Byte', { colorInterpretation: 'Red' }),
    ]);
    expect(previewBands(bgr)).toEqual({ bands: [3, 2, 1], expand: false });
    expect(
      previewBands(
        image([band('Byte', { colorInterpretation: 'Alpha' }), band('Byte', { colorInterpretation: 'Gray' })]),
      ),
    ).toEqual({ bands: [2], expand: false });
    expect(previewBands(image([band('Byte'), band('Byte'), band('Byte'), band('Byte'), band('Byte')]))).toEqual({
      bands: [1, 2, 3],
      expand: false,
    });
    expect(previewBands(image([band('Byte'), band('Byte', { colorInterpretation: 'Alpha' })]))).toEqual({
      bands: [1],
      expand: false,
    });
    expect(previewBands(image([band('Byte', { hasColorTable: true, colorInterpretation: 'Palette' })]))).toEqual({
      bands: [1],
      expand: true,
    });
  });

  it('paint masked pixels with the background through a VRT, and stretch only what needs it', () => {
    const dem = image([band('Float32', { nodata: -9999, min: 10, max: 110, mean: 60, stdDev: 10 })]);
    const plan = planPreview(dem, settings({ previewBackground: '#102030' }));
    expect(plan).toMatchObject({ bands: [1], masked: true, windows: [[35, 85]], background: [16, 32, 48] });
    const vrt = previewVrt(plan, dem, '/s/in put&.tif');
    expect(vrt).toContain('<SourceFilename relativeToVRT="0">/s/in put&amp;.tif</SourceFilename>');
    expect(vrt).toContain('<ScaleOffset>29</ScaleOffset><ScaleRatio>0</ScaleRatio>'); // the gray of #102030
    expect(vrt).toContain(
      `<ScaleOffset>${-35 * 5.1}</ScaleOffset><ScaleRatio>5.1</ScaleRatio><UseMaskBand>true</UseMaskBand>`,
    );
    expect(previewCommand(plan, 'p.vrt', 'o.jpg')).toEqual([
      '-q',
      '-of',
      'JPEG',
      '-co',
      'QUALITY=80',
      'p.vrt',
      'o.jpg',
    ]);
    expect(previewCommand(planPreview(rgb, settings()), 'i', 'o')).toEqual([
      '-q',
      '-of',
      'JPEG',
      '-co',
      'QUALITY=80',
      '-b',
      '1',
      '-b',
      '2',
      '-b',
      '3',
      'i',
      'o',
    ]);
    expect(previewCommand(planPreview(image([band('Byte', { nbits: 1 })]), settings()), 'i', 'o')).toContain(
      '-scale_1',
    );
    expect(backgroundRgb('255,0,10')).toEqual([255, 0, 10]);
  });

  it("scale images over JPEG's limit, or over --preview-max-size, keeping the aspect", () => {
    expect(planPreview(image([band('Byte')], { width: 1, height: 70_000 }), settings()).outsize).toEqual([1, 65_500]);
    expect(
      planPreview(image([band('Byte')], { width: 4000, height: 2000 }), settings({ previewMaxSize: 1000 })).outsize,
    ).toEqual([1000, 500]);
    expect(planPreview(rgb, settings()).outsize).toBeUndefined();
  });
});

describe('fidelity', () => {
  const geo = { crs: 'PROJCS["x"]', geoTransform: [500000, 10, 0, 4500000, 0, -10] };
  const input = image([band('UInt16', { nodata: 0, checksum: 11, colorInterpretation: 'Gray' })], geo);

  it('passes a faithful output and names each difference', () => {
    expect(differences(input, structuredClone(input), { exactBands: [1] })).toEqual([]);
    const out = image([band('Int16', { checksum: 12, colorInterpretation: 'Gray' })], {
      ...geo,
      width: 999,
      geoTransform: [500000, 10, 0, 4500010, 0, -10],
    });
    expect(differences(input, out, { exactBands: [1] })).toEqual([
      'size 1000 x 800 became 999 x 800',
      'the geotransform [500000,10,0,4500000,0,-10] became [500000,10,0,4500010,0,-10]',
      'band 1 type UInt16 became Int16',
      'band 1 nodata 0 became none',
      'band 1 pixels changed (checksum 11 became 12) although the profile is lossless',
    ]);
    expect(differences(input, { ...input, crs: undefined }, { exactBands: [] })).toEqual(['the CRS was lost']);
  });

  it('lets a jpeg output stand an alpha band as a mask', () => {
    const rgba = image([...rgb.bands, band('Byte', { colorInterpretation: 'Alpha' })]);
    const jpeg = image(rgb.bands.map((b) => ({ ...b, maskFlags: ['PER_DATASET'] })));
    expect(differences(rgba, jpeg, { exactBands: [], alphaToMask: true })).toEqual([]);
    expect(differences(rgba, jpeg, { exactBands: [] })).toContain('the alpha band became a mask');
  });
});
