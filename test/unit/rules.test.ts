import { describe, expect, it } from 'vitest';
import { cogArgs, jpegArgs, previewBands, scaleWindow, type ImageInfo } from '../../src/convert/rules.js';
import { delayFor, exponential } from '../../src/util/backoff.js';

const band = (type: string, extra: Partial<ImageInfo['bands'][number]> = {}) => ({ type, hasColorTable: false, ...extra });

describe('conversion rules', () => {
  it('keeps the reference COG options', () => {
    expect(cogArgs('in.tif', 'out.tif')).toEqual(['-q', '-of', 'COG', '-co', 'COMPRESS=LZW', 'in.tif', 'out.tif']);
  });

  it('picks preview bands: 1 → 1, 2 (gray+alpha) → 1, 3 → 1,2,3, 4+ → 1,2,3', () => {
    expect(previewBands(1)).toEqual([1]);
    expect(previewBands(2)).toEqual([1]);
    expect(previewBands(3)).toEqual([1, 2, 3]);
    expect(previewBands(4)).toEqual([1, 2, 3]);
    expect(previewBands(7)).toEqual([1, 2, 3]);
  });

  it('writes Byte RGB as it is, at quality 80', () => {
    const info: ImageInfo = { driver: 'GTiff', width: 1, height: 1, bands: [band('Byte'), band('Byte'), band('Byte'), band('Byte')] };
    expect(jpegArgs(info, 'i', 'o')).toEqual(['-q', '-of', 'JPEG', '-co', 'QUALITY=80', '-b', '1', '-b', '2', '-b', '3', 'i', 'o']);
  });

  it('expands a palette to RGB', () => {
    const info: ImageInfo = { driver: 'GTiff', width: 1, height: 1, bands: [band('Byte', { hasColorTable: true })] };
    expect(jpegArgs(info, 'i', 'o')).toContain('-expand');
  });

  it('scales 16-bit and float bands to 8 bits from their statistics', () => {
    const info: ImageInfo = {
      driver: 'GTiff', width: 1, height: 1,
      bands: [band('UInt16', { min: 0, max: 4000, mean: 2000, stdDev: 100 }), band('UInt16', { min: 10, max: 20 }), band('UInt16', { min: 5, max: 5 })],
    };
    const args = jpegArgs(info, 'i', 'o');
    expect(args).toEqual(['-q', '-of', 'JPEG', '-co', 'QUALITY=80', '-b', '1', '-b', '2', '-b', '3', '-ot', 'Byte',
      '-scale_1', '1750', '2250', '0', '255', '-scale_2', '10', '20', '0', '255', '-scale_3', '5', '6', '0', '255', 'i', 'o']);
  });

  it('refuses what a JPEG cannot show, with the reason', () => {
    expect(() => scaleWindow(band('Float32'))).toThrow(/no statistics/);
    const complex: ImageInfo = { driver: 'GTiff', width: 1, height: 1, bands: [band('CInt16', { min: 0, max: 1 })] };
    expect(() => jpegArgs(complex, 'i', 'o')).toThrow(/CInt16; a JPEG preview cannot represent/);
  });
});

describe('backoff', () => {
  it('doubles from the base delay, capped, with bounded jitter', () => {
    const b = exponential(1000);
    expect(delayFor(b, 1, () => 0.5)).toBe(1000);
    expect(delayFor(b, 2, () => 0.5)).toBe(2000);
    expect(delayFor(b, 3, () => 0.5)).toBe(4000);
    expect(delayFor(b, 30, () => 0.5)).toBe(15 * 60 * 1000);
    expect(delayFor(b, 1, () => 0)).toBe(800);
    expect(delayFor(b, 1, () => 1)).toBe(1200);
  });
});
