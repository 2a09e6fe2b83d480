#!/usr/bin/env node
// cogd's benchmark: throughput against the physical limit of this machine and against the shell
// script a user would write instead, measured in one run, interleaved, on the same files.
//
//   npm run bench -- [--count 200] [--size 1024] [--rounds 3]
//
// 1. limit — the gdal_translate commands cogd runs, on local files, with xargs -P <cores>
// 2. shell — per image: aws s3 cp down, the two gdal_translates, aws s3 cp up; xargs -P <cores>
// 3. cogd  — cogd poll --wait on a manifest of the same images (local executor)
// Prints images/second (median over rounds), cogd/limit and cogd/shell, cogd's peak RSS and S3
// requests per image; writes bench/results/<date>.json.
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { makeTiff } from '../scripts/lib/geotiff.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '200' },
    size: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
  },
});
const count = Number(values.count);
const size = Number(values.size);
const rounds = Number(values.rounds);
const cores = os.availableParallelism();
const work = mkdtempSync(path.join(os.tmpdir(), 'cogd-bench-'));
const { inspect } = await import(path.join(root, 'dist/convert/gdal.js'));
const { cogArgs, jpegArgs, needsStatistics } = await import(path.join(root, 'dist/convert/rules.js'));
const { StepFiles } = await import(path.join(root, 'dist/log/index.js'));

const AWS = '/usr/bin/aws'; // Debian's awscli, not whatever else is first on PATH
if (!existsSync(AWS) && process.getuid?.() === 0) {
  console.error('installing Debian\'s awscli for the shell baseline…');
  execFileSync('apt-get', ['install', '-y', '-qq', 'awscli'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

const now = () => performance.now() / 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    let peakKb = 0;
    const timer = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peakKb = Math.max(peakKb, hwm);
      } catch { /* exited */ }
    }, 50);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      clearInterval(timer);
      if (code !== 0 && !options.allowFail) reject(new Error(`${command} exited ${code}: ${err.slice(-2000)}`));
      else resolve({ code, out, err, peakKb });
    });
  });
}

// ---- workload
console.error(`making ${count} GeoTIFFs of ${size}x${size} in ${work} …`);
const imgDir = path.join(work, 'images');
mkdirSync(imgDir);
const kinds = [
  { bands: 1, type: 'Byte' }, { bands: 3, type: 'Byte' }, { bands: 4, type: 'Byte' }, { bands: 3, type: 'Byte' }, { bands: 1, type: 'UInt16' },
];
const images = [];
for (let i = 0; i < count; i += 1) {
  const kind = kinds[i % kinds.length];
  const name = `img-${String(i).padStart(5, '0')}.tif`;
  await makeTiff(path.join(imgDir, name), { width: size, height: size, bands: kind.bands, type: kind.type, burn: [i % 200, (i * 7) % 200, (i * 13) % 200, 255] });
  images.push({ name, bands: kind.bands });
}

// The exact gdal_translate command lines cogd runs for each image (from the same rules module).
const files = new StepFiles(work, 'inspect');
const scriptsDir = path.join(work, 'scripts');
mkdirSync(scriptsDir);
for (const image of images) {
  const file = path.join(imgDir, image.name);
  let info = await inspect(file, files, { statistics: false });
  if (needsStatistics(info)) info = await inspect(file, files, { statistics: true });
  image.cog = cogArgs('IN', 'OUT.tif');
  image.jpeg = jpegArgs(info, 'IN', 'OUT.jpg');
}
const quote = (a) => `'${a.replace(/'/g, `'\\''`)}'`;
const translate = (args, input, output) => ['gdal_translate', ...args.map((a) => (a === 'IN' ? input : a.startsWith('OUT') ? output : a))].map(quote).join(' ');

// ---- S3 server
const server = spawn(process.execPath, ['--openssl-legacy-provider', path.join(root, 'scripts/s3-server.mjs'), '--dir', path.join(work, 's3')], { stdio: ['ignore', 'pipe', 'inherit'] });
const endpoint = JSON.parse(await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve))).endpoint;
const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
writeFileSync(path.join(work, 'ak'), 'S3RVER');
writeFileSync(path.join(work, 'sk'), 'S3RVER');
await client.send(new CreateBucketCommand({ Bucket: 'bench-in' }));
for (const image of images) {
  await client.send(new PutObjectCommand({ Bucket: 'bench-in', Key: `images/${image.name}`, Body: readFileSync(path.join(imgDir, image.name)) }));
}

const env = { ...process.env, GDAL_PAM_ENABLED: 'NO' };

async function limit(round) {
  const out = path.join(work, `limit-${round}`);
  mkdirSync(out);
  const lines = images.map((im) => {
    const input = path.join(imgDir, im.name);
    const base = path.join(out, im.name.replace(/\.tif$/, ''));
    return `${translate(im.cog, input, `${base}.tif`)} && ${translate(im.jpeg, input, `${base}.jpg`)}`;
  });
  const list = path.join(work, `limit-${round}.txt`);
  writeFileSync(list, `${lines.join('\n')}\n`);
  const start = now();
  await run('bash', ['-c', `tr '\\n' '\\0' < ${quote(list)} | xargs -0 -P ${cores} -I{} bash -c {}`], { env });
  const seconds = now() - start;
  rmSync(out, { recursive: true, force: true });
  return { seconds };
}

async function shell(round) {
  if (!existsSync(AWS)) return undefined;
  const bucket = `bench-shell-${round}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const out = path.join(work, `shell-${round}`);
  mkdirSync(out);
  const aws = `${AWS} --endpoint-url ${endpoint} s3 cp --only-show-errors`;
  const lines = images.map((im) => {
    const local = path.join(out, im.name);
    const base = local.replace(/\.tif$/, '');
    return [
      `${aws} s3://bench-in/images/${im.name} ${quote(local)}`,
      translate(im.cog, local, `${base}.cog.tif`),
      translate(im.jpeg, local, `${base}.jpg`),
      `${aws} ${quote(`${base}.cog.tif`)} s3://${bucket}/images/${im.name}`,
      `${aws} ${quote(`${base}.jpg`)} s3://${bucket}/images/${im.name.replace(/\.tif$/, '.jpg')}`,
      `rm -f ${quote(local)} ${quote(`${base}.cog.tif`)} ${quote(`${base}.jpg`)}`,
    ].join(' && ');
  });
  const list = path.join(work, `shell-${round}.txt`);
  writeFileSync(list, `${lines.join('\n')}\n`);
  const start = now();
  await run('bash', ['-c', `tr '\\n' '\\0' < ${quote(list)} | xargs -0 -P ${cores} -I{} bash -c {}`], {
    env: { ...env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_DEFAULT_REGION: 'us-east-1' },
  });
  const seconds = now() - start;
  rmSync(out, { recursive: true, force: true });
  return { seconds };
}

async function cogd(round) {
  const bucket = `bench-cogd-${round}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const manifest = images.map((im) => `images/${im.name},${im.bands}`).join('\n');
  await client.send(new PutObjectCommand({ Bucket: 'bench-in', Key: `manifests/round${round}-raw.csv`, Body: `${manifest}\n` }));
  const home = path.join(work, `home-${round}`);
  mkdirSync(home);
  const start = now();
  const result = await run(process.execPath, [
    path.join(root, 'bin/cogd'), 'poll', '--wait', '-p', `manifests/round${round}-raw.csv`, '--input-bucket', 'bench-in',
    '--output-bucket', bucket, '-e', endpoint, '-a', path.join(work, 'ak'), '-s', path.join(work, 'sk'), '--home', home,
  ]);
  const seconds = now() - start;
  if (!/ 0 failed/.test(result.out)) throw new Error(`cogd did not convert everything: ${result.out}`);
  const log = readFileSync(path.join(home, 'logs', 'cogd.log'), 'utf8');
  const requests = Number(/"requests":(\d+)/.exec(log)?.[1] ?? NaN);
  rmSync(home, { recursive: true, force: true });
  return { seconds, peakRssMb: result.peakKb / 1024, requestsPerImage: requests / count };
}

// ---- interleaved rounds (the order rotates so no method always runs on a warm or cold cache)
const results = { limit: [], shell: [], cogd: [] };
const methods = { limit, shell, cogd };
const order = ['limit', 'shell', 'cogd'];
for (let round = 0; round < rounds; round += 1) {
  const rotated = [...order.slice(round % 3), ...order.slice(0, round % 3)];
  for (const name of rotated) {
    const r = await methods[name](round);
    if (r !== undefined) {
      results[name].push(r);
      console.error(`round ${round + 1}/${rounds} ${name}: ${(count / r.seconds).toFixed(2)} images/s`);
    }
  }
}
server.kill('SIGTERM');

const rate = (name) => (results[name].length === 0 ? undefined : count / median(results[name].map((r) => r.seconds)));
const limitRate = rate('limit');
const shellRate = rate('shell');
const cogdRate = rate('cogd');
const summary = {
  date: new Date().toISOString(),
  machine: { cores, memoryGiB: Math.round(os.totalmem() / 2 ** 30), cpu: os.cpus()[0]?.model, node: process.version, gdal: execFileSync('gdal_translate', ['--version']).toString().trim() },
  workload: { count, size, rounds },
  imagesPerSecond: { limit: limitRate, shell: shellRate, cogd: cogdRate },
  ratios: { cogdToLimit: cogdRate / limitRate, cogdToShell: shellRate === undefined ? undefined : cogdRate / shellRate },
  cogd: {
    peakRssMb: median(results.cogd.map((r) => r.peakRssMb)),
    s3RequestsPerImage: median(results.cogd.map((r) => r.requestsPerImage)),
  },
  notMeasuredYet: ['scale (100k-row manifest)', 'post reconcile vs reference', 'idle poll'],
};

const fmt = (x, digits = 2) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));
console.log(`\ncogd benchmark — ${count} images of ${size}x${size}, ${rounds} interleaved rounds, ${cores} cores, medians`);
console.log('| part | images/s | ratio |');
console.log('| --- | --- | --- |');
console.log(`| limit (gdal_translate, local files, xargs -P ${cores}) | ${fmt(limitRate)} | 1.00 |`);
console.log(`| shell (aws s3 cp + gdal_translate, xargs -P ${cores}) | ${fmt(shellRate)} | ${fmt(shellRate === undefined ? undefined : shellRate / limitRate)} |`);
console.log(`| cogd poll --wait | ${fmt(cogdRate)} | ${fmt(cogdRate / limitRate)} of limit, ${fmt(summary.ratios.cogdToShell)} of shell |`);
console.log(`\ncogd peak RSS ${fmt(summary.cogd.peakRssMb, 1)} MB; S3 requests per image ${fmt(summary.cogd.s3RequestsPerImage, 2)}`);
console.log(`not measured yet: ${summary.notMeasuredYet.join('; ')}`);

const resultsDir = path.join(root, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `${summary.date.slice(0, 10)}.json`);
writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
console.log(`results: ${path.relative(root, file)}`);
rmSync(work, { recursive: true, force: true });

