import { describe, expect, it } from 'vitest';
import type { BandInfo, ImageInfo } from '../../src/convert/image.js';
import { planPreview, previewBands, previewCommand } from '../../src/convert/preview.js';
import { scaleWindow } from '../../src/convert/rules.js';
import { delayFor, exponential } from '../../src/util/backoff.js';

const band = (type: string, extra: Partial<BandInfo> = {}): BandInfo => ({ type, hasColorTable: false, ...extra });

describe('conversion rules', () => {
  const rules = (bands: BandInfo[]): ImageInfo => ({ driver: 'GTiff', width: 1, height: 1, bands });
  const none: Parameters<typeof planPreview>[1] = { previewBackground: 'white', previewMaxSize: undefined };

  it('picks preview bands without roles as the reference tool did: 1 → 1, 2 (gray+alpha) → 1, 3+ → 1,2,3', () => {
    for (const [count, bands] of [
      [1, [1]],
      [2, [1]],
      [3, [1, 2, 3]],
      [4, [1, 2, 3]],
      [7, [1, 2, 3]],
    ] as const) {
      expect(previewBands(rules(Array.from({ length: count }, () => band('Byte')))).bands).toEqual(bands);
    }
  });

  it('writes Byte RGB as it is, at quality 80, and expands a palette to RGB', () => {
    expect(
      previewCommand(planPreview(rules([band('Byte'), band('Byte'), band('Byte'), band('Byte')]), none), 'i', 'o'),
    ).toEqual(['-q', '-of', 'JPEG', '-co', 'QUALITY=80', '-b', '1', '-b', '2', '-b', '3', 'i', 'o']);
    expect(previewCommand(planPreview(rules([band('Byte', { hasColorTable: true })]), none), 'i', 'o')).toContain(
      '-expand',
    );
  });

  it('scales 16-bit and float bands to 8 bits from their statistics', () => {
    const info = rules([
      band('UInt16', { min: 0, max: 4000, mean: 2000, stdDev: 100 }),
      band('UInt16', { min: 10, max: 20 }),
      band('UInt16', { min: 5, max: 5 }),
    ]);
    expect(previewCommand(planPreview(info, none), 'i', 'o')).toEqual([
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
      '-ot',
      'Byte',
      '-scale_1',
      '1750',
      '2250',
      '0',
      '255',
      '-scale_2',
      '10',
      '20',
      '0',
      '255',
      '-scale_3',
      '5',
      '6',
      '0',
      '255',
      'i',
      'o',
    ]);
  });

  it('refuses what a JPEG cannot show, with the reason', () => {
    expect(() => scaleWindow(band('Float32'))).toThrow(/no statistics/);
    expect(() => planPreview(rules([band('CInt16', { min: 0, max: 1 })]), none)).toThrow(
      /CInt16; a JPEG preview cannot represent/,
    );
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
