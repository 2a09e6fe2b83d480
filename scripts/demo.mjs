#!/usr/bin/env node
// The main job on the embedded defaults, end to end: a local S3 protocol server on loopback (or
// your own endpoint), a few real GeoTIFFs made with GDAL, a manifest with one bad row, and
// `cogd poll --wait` with the local executor. Prints what landed where.
//
//   npm run demo                                   # local S3 server, buckets cogd-demo-in/out
//   npm run demo -- -e https://s3.example.org -a ak.txt -s sk.txt --input-bucket B1 --output-bucket B2
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { makeTiff } from './lib/geotiff.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    's3-endpoint': { type: 'string', short: 'e' },
    'access-key': { type: 'string', short: 'a' },
    'secret-key': { type: 'string', short: 's' },
    'input-bucket': { type: 'string', default: 'cogd-demo-in' },
    'output-bucket': { type: 'string', default: 'cogd-demo-out' },
    home: { type: 'string', default: path.join(root, '.demo') },
  },
});
const work = mkdtempSync(path.join(os.tmpdir(), 'cogd-demo-'));

let server;
let endpoint = values['s3-endpoint'];
let accessKey = values['access-key'];
let secretKey = values['secret-key'];
if (endpoint === undefined) {
  server = spawn(process.execPath, ['--openssl-legacy-provider', path.join(root, 'scripts/s3-server.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve));
  endpoint = JSON.parse(line).endpoint;
  accessKey = path.join(work, 'access.key');
  secretKey = path.join(work, 'secret.key');
  // Key files readable by their owner only, as cogd asks of them (it warns about others).
  writeFileSync(accessKey, 'S3RVER\n', { mode: 0o600 });
  writeFileSync(secretKey, 'S3RVER\n', { mode: 0o600 });
  console.log(`local S3 server (s3rver) on ${endpoint}`);
}

try {
  const client = new S3Client({
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(accessKey && secretKey
      ? {
          credentials: {
            accessKeyId: readFileSync(accessKey, 'utf8').trim(),
            secretAccessKey: readFileSync(secretKey, 'utf8').trim(),
          },
        }
      : {}),
  });
  const input = values['input-bucket'];
  const output = values['output-bucket'];
  for (const bucket of [input, output]) {
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((error) => {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(error.name)) throw error;
    });
  }
  const images = [
    { key: 'imagery/rgb.tif', spec: { width: 1024, height: 1024, bands: 3 } },
    { key: 'imagery/rgbn-uint16.tif', spec: { width: 512, height: 512, bands: 4, type: 'UInt16' } },
    { key: 'imagery/dem-float32.tif', spec: { width: 512, height: 512, bands: 1, type: 'Float32' } },
    { key: 'imagery/gray.tif', spec: { width: 256, height: 256, bands: 1 } },
  ];
  const rows = [];
  for (const { key, spec } of images) {
    const file = await makeTiff(path.join(work, path.basename(key)), spec);
    await client.send(new PutObjectCommand({ Bucket: input, Key: key, Body: readFileSync(file) }));
    rows.push(`${key},${spec.bands}`);
  }
  rows.push('imagery/not-uploaded.tif,3');
  const manifest = `manifests/demo-${Date.now()}-raw.csv`;
  await client.send(new PutObjectCommand({ Bucket: input, Key: manifest, Body: `${rows.join('\n')}\n` }));
  console.log(
    `uploaded ${images.length} GeoTIFFs and s3://${input}/${manifest} (${rows.length} rows, one naming a missing image)\n`,
  );

  const args = [
    'poll',
    '--wait',
    '-p',
    '*raw.csv',
    '--input-bucket',
    input,
    '--output-bucket',
    output,
    '-e',
    endpoint,
    '--home',
    values.home,
    '--retry-delay',
    '1',
  ];
  if (accessKey && secretKey) args.push('-a', accessKey, '-s', secretKey);
  console.log(`$ cogd ${args.join(' ')}`);
  const code = await new Promise((resolve) =>
    spawn(process.execPath, [path.join(root, 'bin/cogd'), ...args], { stdio: 'inherit' }).on('exit', resolve),
  );
  console.log(`(exit code ${code}: 1 because one row failed, as intended)`);
  if (server !== undefined)
    console.log(
      '(the warning about conditional writes is expected: s3rver does not enforce them; Ceph, MinIO and AWS do)',
    );
  console.log('');

  for (const bucket of [output, input]) {
    const listing = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    console.log(`s3://${bucket}:`);
    for (const o of listing.Contents ?? []) console.log(`  ${o.Key}  ${o.Size} bytes`);
  }
  // The STAC item cogd wrote beside one COG (what STAC browsers, TiTiler and QGIS read).
  const item = await client
    .send(new GetObjectCommand({ Bucket: output, Key: 'imagery/rgb.json' }))
    .catch(() => undefined);
  if (item !== undefined) {
    console.log(`\nthe STAC item of imagery/rgb.tif (s3://${output}/imagery/rgb.json):`);
    console.log(await item.Body.transformToString());
  }
  console.log(`\nlogs: ${path.join(values.home, 'logs')}`);
  process.exitCode = code === 0 || code === 1 ? 0 : 1;
} finally {
  server?.kill('SIGTERM');
}
