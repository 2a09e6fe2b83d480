/**
 * Every file of a corpus of real GeoTIFFs through one mixed 50-row manifest. The corpus directory
 * comes from COGD_CORPUS (CI: ../shared/testdata/geotiff); without it this suite is skipped with a
 * notice. Files GDAL can read must convert; anything else must fail with a reason.
 */
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  baseArgs,
  cogd,
  download,
  freshBuckets,
  gdalinfo,
  getText,
  putFile,
  resultKeyOf,
  tempDir,
  validateCog,
} from '../support/helpers.js';

const corpus = process.env['COGD_CORPUS'];
if (corpus === undefined || corpus === '') {
  console.warn(
    'NOTICE: COGD_CORPUS is not set; the corpus suite is skipped (CI sets it to ../shared/testdata/geotiff)',
  );
}

describe.skipIf(corpus === undefined || corpus === '')('corpus of real GeoTIFFs', () => {
  it('converts every readable file and accounts for every row of a 50-row manifest', async () => {
    const files = readdirSync(corpus!)
      .filter((name) => /\.tiff?$/i.test(name))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    const home = await tempDir();
    const buckets = await freshBuckets();
    const rows: string[] = [];
    const readable = new Set<string>();
    for (const name of files) {
      const file = path.join(corpus!, name);
      const probe = await execa('gdalinfo', ['-json', file], { reject: false });
      const bands = probe.exitCode === 0 ? (JSON.parse(probe.stdout) as { bands: unknown[] }).bands.length : 1;
      if (probe.exitCode === 0) readable.add(name);
      await putFile(buckets.input, `corpus/${name}`, file);
      rows.push(`corpus/${name},${bands}`);
    }
    // Fill to 50 rows: the same images under a second folder, then known-bad rows.
    for (const name of files) {
      if (rows.length >= 48) break;
      await putFile(buckets.input, `copy/${name}`, path.join(corpus!, name));
      rows.push(`copy/${name},3`); // declared band count often wrong on purpose: the file decides
    }
    rows.push('corpus/does-not-exist.tif,3', 'corpus/readme.txt,1');
    await putFile(buckets.input, 'corpus/readme.txt', path.join(corpus!, 'README.md'));
    await import('../support/helpers.js').then(({ put }) =>
      put(buckets.input, 'mixed-raw.csv', `${rows.join('\n')}\n`),
    );

    // auto: each file gets the profile its type calls for, so every kind of file meets every codec cogd picks.
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home)), '--profile', 'auto']);
    const processed = (await getText(buckets.input, (await resultKeyOf(buckets.input, 'mixed-', 'processed'))!))
      .split('\n')
      .filter(Boolean);
    const failedKey = await resultKeyOf(buckets.input, 'mixed-', 'failed');
    const failed = failedKey === undefined ? [] : (await getText(buckets.input, failedKey)).split('\n').filter(Boolean);
    // Every row in exactly one result CSV.
    expect([...processed, ...failed].sort()).toEqual([...rows].sort());
    expect(processed.filter((row) => failed.includes(row))).toEqual([]);
    // Every readable file converted, in both folders.
    for (const row of rows) {
      const key = row.split(',')[0]!;
      const name = path.basename(key);
      expect(processed.includes(row), `${row} should be processed`).toBe(readable.has(name));
    }
    expect(failed.sort()).toEqual(['corpus/does-not-exist.tif,3', 'corpus/readme.txt,1']);
    const errors = await getText(buckets.input, (await resultKeyOf(buckets.input, 'mixed-', 'errors'))!);
    expect(errors).toMatch(/corpus\/does-not-exist\.tif,.*does not exist/);
    expect(errors).toMatch(/corpus\/readme\.txt,.*does not name a GeoTIFF/);
    expect(result.exitCode).toBe(1);

    // Every COG is a COG; every preview is an 8-bit JPEG with 1 or 3 bands.
    for (const name of readable) {
      const file = await download(buckets.output, `corpus/${name}`, path.join(home, name));
      const cog = await gdalinfo(file);
      expect(cog.metadata?.['IMAGE_STRUCTURE']?.['LAYOUT'], name).toBe('COG');
      expect(cog.metadata?.['IMAGE_STRUCTURE']?.['COMPRESSION'], name).toMatch(/^(WEBP|ZSTD)$/);
      const validation = await validateCog(file);
      expect(validation.ok, `${name}: ${validation.output}`).toBe(true);
      const jpegKey = `corpus/${name.replace(/\.tiff?$/i, '.jpg')}`;
      const jpeg = await gdalinfo(await download(buckets.output, jpegKey, path.join(home, `${name}.jpg`)));
      expect(jpeg.driverShortName, name).toBe('JPEG');
      expect([1, 3], name).toContain(jpeg.bands.length);
      expect(
        jpeg.bands.every((b) => b.type === 'Byte'),
        name,
      ).toBe(true);
    }
  });
});
