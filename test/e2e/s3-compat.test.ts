/**
 * What differs between S3 implementations, on the test server of this run (Ceph RGW in CI, s3rver
 * for quick local runs), and safe claims when two cogd installations watch one bucket.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Upload } from '@aws-sdk/lib-storage';
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { bucket as checkBucketName } from '../../src/config/parse.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createStorage, type Storage } from '../../src/storage/s3.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import {
  baseArgs,
  cogd,
  endpoint,
  freshBuckets,
  getText,
  keyFiles,
  keys,
  makeTiff,
  put,
  putFile,
  s3,
  s3Kind,
  tempDir,
} from '../support/helpers.js';

const onCeph = s3Kind() === 'ceph';
if (!onCeph)
  console.warn('NOTICE: the S3 test server is s3rver; the Ceph-only checks are skipped (COGD_TEST_S3=ceph runs them)');

async function storageFor(dir: string, options: Parameters<typeof createStorage>[1] = {}): Promise<Storage> {
  const { access, secret } = await keyFiles(dir);
  return createStorage(
    { endpoint: endpoint(), accessKeyFile: access, secretKeyFile: secret, region: 'us-east-1' },
    options,
  );
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let proxy: FaultProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

describe('storage across S3 implementations', () => {
  it('uploads a file stream with a known length (RGW answers 411 to aws-chunked streams)', async () => {
    const dir = await tempDir();
    const { output } = await freshBuckets();
    const storage = await storageFor(dir);
    const file = path.join(dir, 'stream.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    await writeFile(file, data);
    // The upload hashes the bytes it sends (the STAC checksum): no second read of the file.
    expect(await storage.uploadFile(output, 'a/stream.bin', file, 'application/octet-stream')).toEqual({
      size: data.length,
      sha256: sha(data),
    });
    // Verified by the answer's ETag (the MD5 of the bytes sent): one request, no HEAD.
    expect(storage.requests).toBe(1);
    await storage.download(output, 'a/stream.bin', path.join(dir, 'back.bin'));
    expect(sha(await readFile(path.join(dir, 'back.bin')))).toBe(sha(data));
    storage.close();
  });

  it('round-trips an output over the multipart threshold, verified by HEAD (RGW completes with an empty ETag)', async () => {
    const dir = await tempDir();
    const { output } = await freshBuckets();
    const storage = await storageFor(dir, { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    const file = path.join(dir, 'big.bin');
    const data = Buffer.from(Array.from({ length: 12 * 1024 * 1024 }, (_, i) => (i * 31) % 251));
    await writeFile(file, data);
    expect(await storage.uploadFile(output, 'big/cog.tif', file, 'image/tiff')).toEqual({
      size: data.length,
      sha256: sha(data),
    });
    const head = await s3().send(new HeadObjectCommand({ Bucket: output, Key: 'big/cog.tif' }));
    expect(head.ContentLength).toBe(data.length);
    if (onCeph) expect(head.ETag).toMatch(/-3"$/); // three parts (s3rver's multipart ETag is a plain MD5)
    await storage.download(output, 'big/cog.tif', path.join(dir, 'back.bin'));
    expect(sha(await readFile(path.join(dir, 'back.bin')))).toBe(sha(data));
    storage.close();
  });

  it.runIf(onCeph)('RGW: CompleteMultipartUpload answers with an empty ETag, which cogd does not rely on', async () => {
    const { output } = await freshBuckets();
    const done = await new Upload({
      client: s3(),
      params: { Bucket: output, Key: 'probe.bin', Body: Buffer.alloc(6 * 1024 * 1024, 1) },
      partSize: 5 * 1024 * 1024,
    }).done();
    expect(done.ETag ?? '').toBe('');
    const head = await s3().send(new HeadObjectCommand({ Bucket: output, Key: 'probe.bin' }));
    expect(head.ETag).toMatch(/-2"$/);
  });

  it('rejects bucket names S3 would refuse, before any request (exit 2)', async () => {
    const home = await tempDir();
    const result = await cogd([
      'poll',
      '-p',
      '*raw.csv',
      '--input-bucket',
      'Upper_Case',
      '--output-bucket',
      'out-bucket',
      '-e',
      endpoint(),
      '--home',
      home,
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--input-bucket "Upper_Case" is not a valid bucket name/);
  });

  it.runIf(onCeph)('RGW: refuses exactly the bucket names cogd refuses at the command line', async () => {
    const names = ['b1', 'Upper-Case', 'under_score', 'a..b', `ok-${Date.now()}`];
    for (const name of names) {
      const rgw = await s3()
        .send(new CreateBucketCommand({ Bucket: name }))
        .then(
          () => 'created',
          (error: unknown) => (error instanceof Error ? error.name : String(error)),
        );
      const cogdAccepts = (() => {
        try {
          checkBucketName(name, '--input-bucket');
          return true;
        } catch {
          return false;
        }
      })();
      expect(rgw === 'created', `${name}: RGW ${rgw}`).toBe(cogdAccepts);
      if (!cogdAccepts) expect(rgw, name).toBe('InvalidBucketName');
    }
  });

  it('fails at once, without retries, on a permanent S3 error', async () => {
    const storage = await storageFor(await tempDir());
    await expect(storage.probe('no-such-bucket-cogd')).rejects.toMatchObject({
      code: 'NoSuchBucket',
      name: 'PermanentError',
    });
    await expect(
      storage.download('no-such-bucket-cogd', 'x.tif', path.join(await tempDir(), 'x.tif')),
    ).rejects.toMatchObject({ code: 'NoSuchBucket' });
    expect(storage.requests).toBe(2); // one request each: no retries
    storage.close();
  });

  it('knows whether the endpoint enforces conditional creates', async () => {
    const { input } = await freshBuckets();
    const storage = await storageFor(await tempDir());
    expect(await storage.probeConditionalWrites(input)).toBe(onCeph); // RGW enforces If-None-Match; s3rver ignores it
    expect(await storage.putIfAbsent(input, 'k', 'one', 'text/plain')).toBe(true);
    expect(await storage.putIfAbsent(input, 'k', 'two', 'text/plain')).toBe(!onCeph);
    expect(await getText(input, 'k')).toBe(onCeph ? 'one' : 'two');
    expect(await keys(input)).toEqual(['k']); // the probe cleans up after itself
    storage.close();
  });

  it('warns, in the log and in cogd status, when claims are not safe across daemons', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    await put(buckets.input, 'x-raw.csv', 'img.tif,1\n');
    // An endpoint that says yes to every conditional create of the probe: it enforces nothing.
    proxy = await startFaultProxy({
      target: endpoint(),
      rate: 0,
      rule: (method, url) => (method === 'PUT' && url.includes('.cogd/probe-') ? 'fake-ok' : undefined),
    });
    const args = (await baseArgs(buckets, home)).map((a, i, all) => (all[i - 1] === '-e' ? proxy!.endpoint : a));
    const result = await cogd(['poll', '--wait', ...args]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toMatch(
      /does not enforce conditional writes \(If-None-Match\): only one cogd daemon may watch this bucket/,
    );
    const status = await cogd(['status', '--home', home]);
    expect(status.stdout).toMatch(
      /watch w1: s3:\/\/in-\S+ does not enforce conditional writes; only one cogd daemon may watch this bucket/,
    );
  });
});

describe.runIf(onCeph)('two cogd installations on one bucket (RGW)', () => {
  it('claims each of 20 manifests exactly once, split between the two', async () => {
    const buckets = await freshBuckets();
    const homes = [await tempDir('cogd-home-a-'), await tempDir('cogd-home-b-')];
    const images = 4;
    for (let i = 0; i < images; i += 1) {
      await putFile(buckets.input, `img/${i}.tif`, await makeTiff(path.join(homes[0]!, `${i}.tif`), { bands: 1 }));
    }
    const manifests = Array.from({ length: 20 }, (_, m) => `queue/m${String(m).padStart(2, '0')}-raw.csv`);
    // Each manifest lists its own copy key of one image, so every conversion is attributable.
    await Promise.all(
      manifests.map(async (key, m) => {
        const image = `copies/${m}.tif`;
        await putFile(buckets.input, image, path.join(homes[0]!, `${m % images}.tif`));
        await put(buckets.input, key, `${image},1\n`);
      }),
    );
    try {
      const starts = await Promise.all(
        homes.map(async (home) => cogd(['start', ...(await baseArgs(buckets, home)), '--schedule', '*/1 * * * * *'])),
      );
      for (const s of starts) expect(s.exitCode, s.stderr).toBe(0);
      const deadline = Date.now() + 120_000;
      let processed: string[] = [];
      while (Date.now() < deadline) {
        processed = (await keys(buckets.input, 'queue/')).filter((k) => k.includes('-processed-'));
        if (processed.length >= 20) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await new Promise((resolve) => setTimeout(resolve, 2000)); // would a second claim show up?
      const all = await keys(buckets.input, 'queue/');
      expect(all.filter((k) => k.includes('-processed-')).length).toBe(20);
      expect(all.filter((k) => /-(failed|processing)-|raw\.csv$/.test(k))).toEqual([]);
      for (const key of manifests) {
        const base = key.replace('raw.csv', '');
        expect(all.filter((k) => k.startsWith(`${base}processed-`)).length, key).toBe(1);
      }
      const statuses = await Promise.all(
        homes.map(
          async (home) =>
            JSON.parse((await cogd(['status', '--json', '--home', home])).stdout) as {
              runs: Array<{ state: string; counts: { done: number } }>;
              watches: Array<{ conditionalWrites: boolean }>;
            },
        ),
      );
      const runs = statuses.map((s) => s.runs.length);
      expect(runs[0]! + runs[1]!).toBe(20); // every manifest claimed once, by one of them
      expect(Math.min(...runs)).toBeGreaterThan(0); // and both took part
      expect(statuses.flatMap((s) => s.runs).every((r) => r.state === 'done' && r.counts.done === 1)).toBe(true);
      expect(statuses.map((s) => s.watches[0]?.conditionalWrites)).toEqual([true, true]);
      expect((await keys(buckets.output, 'copies/')).length).toBe(40);
    } finally {
      for (const home of homes) await cogd(['stop', '--home', home]);
    }
  });
});
