/**
 * One manifest end to end with real parts: the loopback S3 server, real GDAL, the real CLI as a
 * child process, a real SQLite file in a temp home.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  baseArgs,
  cogd,
  credentials,
  download,
  freshBuckets,
  gdalinfo,
  getText,
  keys,
  makeTiff,
  put,
  putFile,
  resultKeyOf,
  tempDir,
  validateCog,
} from '../support/helpers.js';

describe('cogd poll --wait', () => {
  it('converts every good row, fails every bad row with its reason, and cleans up', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const big = await makeTiff(path.join(home, 'big.tif'), { width: 1024, height: 1024, bands: 3 });
    // The input is striped, large and has no overviews: GDAL's validator warns about it.
    expect((await validateCog(big)).output).toMatch(/recommended to include internal overviews/);
    expect((await gdalinfo(big)).metadata?.['IMAGE_STRUCTURE']?.['LAYOUT']).toBeUndefined();
    await putFile(buckets.input, 'imgs/a/x.tif', big);
    await putFile(
      buckets.input,
      'imgs/b/x.tif',
      await makeTiff(path.join(home, 'x.tif'), { bands: 1, type: 'UInt16' }),
    );
    await putFile(buckets.input, 'imgs/rgba.TIFF', await makeTiff(path.join(home, 'rgba.tif'), { bands: 4 }));
    await put(buckets.input, 'imgs/text.tif', 'this is not a TIFF\n');
    await put(buckets.input, 'jobs/notes.csv', 'not a manifest\n');
    const manifest = [
      'imgs/a/x.tif,3',
      'imgs/b/x.tif,1',
      'imgs/rgba.TIFF,4',
      'imgs/missing.tif,3',
      '/imgs/a/x.tif,3',
      'imgs/../etc/passwd.tif,3',
      'imgs/a/x.png,3',
      'imgs/text.tif,1',
      'imgs/a/x.tif,3',
      'imgs/b/x.tif,many',
      'imgs/b/x.tif',
    ];
    await put(buckets.input, 'jobs/batch1-raw.csv', `${manifest.join('\n')}\n`);

    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(result.stderr).not.toMatch(/at .*\.js:\d+/); // no stack traces
    expect(result.exitCode).toBe(1); // some rows failed
    expect(result.stdout).toMatch(
      /run 1 s3:\/\/in-\S+\/jobs\/batch1-raw\.csv: 11 rows, 3 processed, 8 failed; logs in logs\/run-\d{8}-\d{6}/,
    );

    // Outputs: a COG under the same key and a JPEG beside it, for each good row.
    expect(await keys(buckets.output)).toEqual([
      'collection.json',
      'imgs/a/x.jpg',
      'imgs/a/x.json',
      'imgs/a/x.tif',
      'imgs/b/x.jpg',
      'imgs/b/x.json',
      'imgs/b/x.tif',
      'imgs/rgba.TIFF',
      'imgs/rgba.jpg',
      'imgs/rgba.json',
    ]);
    const cog = await download(buckets.output, 'imgs/a/x.tif', path.join(home, 'out-cog.tif'));
    const cogInfo = await gdalinfo(cog);
    expect(cogInfo.metadata?.['IMAGE_STRUCTURE']?.['LAYOUT']).toBe('COG');
    expect(cogInfo.metadata?.['IMAGE_STRUCTURE']?.['COMPRESSION']).toBe('LZW');
    const validation = await validateCog(cog);
    expect(validation.output).toMatch(/is a valid cloud optimized GeoTIFF/);
    expect(validation.output).not.toMatch(/warning|error/i);
    expect(validation.ok).toBe(true);
    for (const [key, bands] of [
      ['imgs/a/x.jpg', 3],
      ['imgs/b/x.jpg', 1],
      ['imgs/rgba.jpg', 3],
    ] as const) {
      const jpeg = await gdalinfo(await download(buckets.output, key, path.join(home, path.basename(key))));
      expect(jpeg.driverShortName).toBe('JPEG');
      expect(jpeg.bands.length).toBe(bands);
      expect(jpeg.bands.every((b) => b.type === 'Byte')).toBe(true);
    }

    // Result CSVs next to the manifest, rows verbatim; the processing file is gone; notes.csv untouched.
    const inputKeys = await keys(buckets.input, 'jobs/');
    expect(inputKeys.some((k) => k.includes('processing'))).toBe(false);
    expect(inputKeys).not.toContain('jobs/batch1-raw.csv');
    expect(inputKeys).toContain('jobs/notes.csv');
    const processedKey = await resultKeyOf(buckets.input, 'jobs/batch1-', 'processed');
    const failedKey = await resultKeyOf(buckets.input, 'jobs/batch1-', 'failed');
    const errorsKey = await resultKeyOf(buckets.input, 'jobs/batch1-', 'errors');
    expect(await getText(buckets.input, processedKey!)).toBe('imgs/a/x.tif,3\nimgs/b/x.tif,1\nimgs/rgba.TIFF,4\n');
    expect(await getText(buckets.input, failedKey!)).toBe(`${manifest.slice(3).join('\n')}\n`);
    const errors = await getText(buckets.input, errorsKey!);
    expect(errors.split('\n')[0]).toBe('key,reason,line');
    expect(errors).toMatch(/imgs\/missing\.tif,.*does not exist.*,4/);
    expect(errors).toMatch(/starts with ""\/"".*,5/);
    expect(errors).toMatch(/"" segment.*,6/);
    expect(errors).toMatch(/does not name a GeoTIFF.*,7/);
    expect(errors).toMatch(/imgs\/text\.tif,not a readable TIFF: gdalinfo failed.*,8/);
    // Reasons name the object, never a scratch path that is gone once the job ends.
    expect(errors).toMatch(
      new RegExp(`s3://${buckets.input}/imgs/text\\.tif' not recognized as a supported file format`),
    );
    expect(errors).not.toMatch(/scratch|input\.tif/);
    expect(errors).toMatch(/duplicate of line 1.*,9/);
    expect(errors).toMatch(/band count ""many"".*,10/);
    expect(errors).toMatch(/expected 2 columns.*found 1.*,11/);

    // Logs: per image .log/.out/.err, unique when base names repeat, plus post.out.
    const runDir = path.join(home, result.stdout.match(/logs in (logs\/run-[\d-]+)/)![1]!);
    const files = await readdir(runDir);
    expect(files).toEqual(
      expect.arrayContaining([
        'x.log',
        'x.out',
        'x-line2.log',
        'x-line2.out',
        'rgba.log',
        'post.out',
        'errors.csv',
        'text.log',
        'text.err',
      ]),
    );
    expect(await readFile(path.join(runDir, 'x-line2.log'), 'utf8')).toMatch(/s3:\/\/in-\S+\/imgs\/b\/x\.tif/);
    expect(await readFile(path.join(runDir, 'text.err'), 'utf8')).toMatch(/not recognized as a supported file format/);
    expect(await readFile(path.join(runDir, 'post.out'), 'utf8')).toMatch(/rows 11, processed 3, failed 8/);

    // A second poll claims nothing.
    const again = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/no new manifests/);
    expect(await keys(buckets.input, 'jobs/')).toEqual(inputKeys);
  });

  it('previews every data type and band layout GDAL reads', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    const cases = [
      { name: 'byte1', bands: 1, type: 'Byte', jpegBands: 1 },
      { name: 'gray-alpha', bands: 2, type: 'Byte', jpegBands: 1 },
      { name: 'uint16-rgb', bands: 3, type: 'UInt16', jpegBands: 3 },
      { name: 'int16', bands: 1, type: 'Int16', jpegBands: 1 },
      { name: 'float32', bands: 1, type: 'Float32', jpegBands: 1 },
      { name: 'uint16-rgbn', bands: 4, type: 'UInt16', jpegBands: 3 },
      { name: 'five', bands: 5, type: 'Byte', jpegBands: 3 },
    ] as const;
    const rows: string[] = [];
    for (const c of cases) {
      await putFile(
        buckets.input,
        `t/${c.name}.tif`,
        await makeTiff(path.join(home, `${c.name}.tif`), { bands: c.bands, type: c.type }),
      );
      rows.push(`t/${c.name}.tif,${c.bands}`);
    }
    rows.push('t/five.tif,3'.replace('five', 'byte1')); // wrong declared count: the file decides
    rows[0] = 't/byte1.tif,3';
    rows.pop();
    await put(buckets.input, 'types-raw.csv', rows.join('\r\n')); // CRLF, no final newline
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(result.stdout).toMatch(/7 rows, 7 processed, 0 failed/);
    expect(result.exitCode).toBe(0);
    for (const c of cases) {
      const jpeg = await download(buckets.output, `t/${c.name}.jpg`, path.join(home, `${c.name}.jpg`));
      const info = await gdalinfo(jpeg);
      expect(info.bands.length, c.name).toBe(c.jpegBands);
      expect(
        info.bands.every((b) => b.type === 'Byte'),
        c.name,
      ).toBe(true);
      // A real stretch: the preview is not flat black.
      const { stdout } = await import('execa').then(({ execa }) => execa('gdalinfo', ['-json', '-stats', jpeg]));
      const stats = JSON.parse(stdout) as { bands: Array<{ maximum: number; minimum: number }> };
      expect(stats.bands[0]!.maximum - stats.bands[0]!.minimum, c.name).toBeGreaterThan(100);
    }
    const runDir = path.join(home, result.stdout.match(/logs in (logs\/run-[\d-]+)/)![1]!);
    expect(await readFile(path.join(runDir, 'byte1.log'), 'utf8')).toMatch(/manifest declares 3 bands, the file has 1/);
  });

  it('fails an empty manifest alone, and leaves an object with binary content untouched, unclaimed', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'ok.tif', await makeTiff(path.join(home, 'ok.tif'), { bands: 3 }));
    await put(buckets.input, 'a/empty-raw.csv', '');
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x0d, 0x0a, 0x1a, 0x0a, 0x00]);
    await put(buckets.input, 'b/binary-raw.csv', binary);
    await put(buckets.input, 'c/good-raw.csv', '\uFEFFok.tif,3\n');
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/a\/empty-raw\.csv: manifest rejected: the manifest is empty/);
    expect(result.stdout).not.toMatch(/binary-raw\.csv/); // never claimed: it is no manifest
    expect(result.stdout).toMatch(/c\/good-raw\.csv: 1 rows, 1 processed, 0 failed/);
    const all = await keys(buckets.input);
    expect(all.filter((k) => k.includes('processing') || k.endsWith('raw.csv'))).toEqual(['b/binary-raw.csv']);
    expect(all.filter((k) => k.startsWith('b/'))).toEqual(['b/binary-raw.csv']);
    const failedEmpty = await resultKeyOf(buckets.input, 'a/empty-', 'failed');
    expect(await getText(buckets.input, failedEmpty!)).toBe('');
    const errorsEmpty = await resultKeyOf(buckets.input, 'a/empty-', 'errors');
    expect(await getText(buckets.input, errorsEmpty!)).toMatch(/a\/empty-raw\.csv,the manifest is empty/);
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const { s3 } = await import('../support/helpers.js');
    const body = await (
      await s3().send(new GetObjectCommand({ Bucket: buckets.input, Key: 'b/binary-raw.csv' }))
    ).Body!.transformToByteArray();
    expect(Buffer.from(body).equals(binary)).toBe(true);
  });

  it('handles two manifests with the same base name in different folders', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'one/img.tif', await makeTiff(path.join(home, 'one.tif'), { bands: 1 }));
    await putFile(buckets.input, 'two/img.tif', await makeTiff(path.join(home, 'two.tif'), { bands: 3 }));
    await put(buckets.input, 'one/list-raw.csv', 'one/img.tif,1\n');
    await put(buckets.input, 'two/list-raw.csv', 'two/img.tif,3\n');
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(result.exitCode).toBe(0);
    const dirs = [...result.stdout.matchAll(/logs in (logs\/run-[\d-]+)/g)].map((m) => m[1]);
    expect(dirs.length).toBe(2);
    expect(new Set(dirs).size).toBe(2);
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'one/list-', 'processed'))!)).toBe(
      'one/img.tif,1\n',
    );
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'two/list-', 'processed'))!)).toBe(
      'two/img.tif,3\n',
    );
    expect(await keys(buckets.output)).toEqual([
      'collection.json',
      'one/img.jpg',
      'one/img.json',
      'one/img.tif',
      'two/img.jpg',
      'two/img.json',
      'two/img.tif',
    ]);
  });

  it('matches a pattern with "/" against the whole key only', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    await put(buckets.input, 'queue/2026/a-raw.csv', 'img.tif,1\n');
    await put(buckets.input, 'other/b-raw.csv', 'img.tif,1\n');
    await put(buckets.input, 'queue/b-raw.csv', 'img.tif,1\n');
    const result = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home, 'queue/**/*-raw.csv'))]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/queue\/2026\/a-raw\.csv/);
    expect(result.stdout).toMatch(/queue\/b-raw\.csv/);
    expect(result.stdout).not.toMatch(/other\//);
    expect(await keys(buckets.input, 'other/')).toEqual(['other/b-raw.csv']);
  });

  it('never writes the secret key to logs or process arguments', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    await put(buckets.input, 'x-raw.csv', 'img.tif,1\nmissing.tif,1\n');
    const result = await cogd(['poll', '--wait', '-v', ...(await baseArgs(buckets, home))]);
    expect(result.exitCode).toBe(1);
    const logs = path.join(home, 'logs');
    const texts = [result.stdout, result.stderr];
    for (const entry of await readdir(logs, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) texts.push(await readFile(path.join(entry.parentPath, entry.name), 'utf8'));
    }
    expect(texts.length).toBeGreaterThan(5);
    // The key files hold the secret; nothing else may.
    const { secretKey } = credentials();
    for (const text of texts) expect(text).not.toContain(secretKey);
  });
});

describe('cogd usage', () => {
  it('exits 2 with a message naming the bad input', async () => {
    const missing = await cogd(['poll', '-p', '*raw.csv', '--output-bucket', 'out']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/--input-bucket/);
    const bad = await cogd([
      'poll',
      '-p',
      '*raw.csv',
      '--input-bucket',
      'in-bucket',
      '--output-bucket',
      'out-bucket',
      '-m',
      'lots',
    ]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/-m\/--max-running must be a whole number, got "lots"/);
    const unknown = await cogd(['frobnicate']);
    expect(unknown.exitCode).toBe(2);
    const help = await cogd(['poll', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/--max-running/);
  });

  it('exits 1 with one clear line when the bucket does not exist', async () => {
    const home = await tempDir();
    const args = await baseArgs({ input: 'no-such-bucket-here', output: 'no-such-out' }, home);
    const result = await cogd(['poll', '--wait', ...args]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/cogd: list s3:\/\/no-such-bucket-here failed: NoSuchBucket/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
