import { describe, expect, it } from 'vitest';
import {
  isResultName,
  logNames,
  manifestBase,
  previewKey,
  resultKey,
  runBatchName,
  timestamp,
  watchBatchName,
} from '../../src/manifest/names.js';

describe('names', () => {
  it('derives result names as the reference tool did', () => {
    const base = manifestBase('path/to/files-raw.csv');
    expect(base).toBe('path/to/files-');
    expect(resultKey(base, 'processing', '20261121-101500')).toBe('path/to/files-processing-20261121-101500.csv');
    expect(resultKey(base, 'processed', '20261121-101500')).toBe('path/to/files-processed-20261121-101500.csv');
    expect(resultKey(base, 'failed', '20261121-101500')).toBe('path/to/files-failed-20261121-101500.csv');
  });

  it('does not assume every manifest ends in raw.csv', () => {
    expect(manifestBase('orders.csv')).toBe('orders-');
    expect(manifestBase('ORDERS.CSV')).toBe('ORDERS-');
    expect(manifestBase('a/list')).toBe('a/list-');
  });

  it('recognises its own result files so they are never claimed', () => {
    expect(isResultName('x-processing-20261121-101500.csv')).toBe(true);
    expect(isResultName('a/x-failed-20261121-101500-2.csv')).toBe(true);
    expect(isResultName('x-raw.csv')).toBe(false);
    expect(isResultName('x-failed.csv')).toBe(false);
  });

  it('formats timestamps as YYYYMMDD-HHMMSS in UTC', () => {
    expect(timestamp(new Date('2026-01-02T03:04:05.678Z'))).toBe('20260102-030405');
  });

  it('puts the preview under the image key with .jpg', () => {
    expect(previewKey('a/b/img.tif')).toBe('a/b/img.jpg');
    expect(previewKey('a/b/img.TIFF')).toBe('a/b/img.jpg');
    expect(previewKey('a.tif/img.tif')).toBe('a.tif/img.jpg');
  });

  it('keeps per-image log names unique when base names repeat', () => {
    const names = logNames([
      { key: 'a/x.tif', line: 1 },
      { key: 'b/x.tif', line: 2 },
      { key: 'c/x.TIFF', line: 7 },
      { key: 'post.tif', line: 8 },
      { key: 'y z.tif', line: 9 },
    ]);
    expect([...names.values()]).toEqual(['x', 'x-line2', 'x-line7', 'post-line8', 'y_z']);
    expect(new Set(names.values()).size).toBe(5);
  });

  it('names batches as HTCondor users know them', () => {
    expect(watchBatchName('*raw.csv')).toBe('COG-Pipeline-Crondor-*raw.csv');
    expect(runBatchName('*raw.csv')).toBe('COG-Pipeline-DAG-*raw.csv');
  });
});
