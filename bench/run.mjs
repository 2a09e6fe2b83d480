#!/usr/bin/env node
// cogd's benchmark. Every ratio is against a baseline measured in the same run, on this machine.
//
//   npm run bench -- [--count 200] [--size 1024] [--rounds 3] [--parts throughput,scale,post,idle,profiles,web]
//
// throughput (interleaved rounds on the same files):
//   1. limit — the gdal_translate commands cogd runs, on local files, xargs -P <cores>
//   2. shell — per image: aws s3 cp down, the two gdal_translates, aws s3 cp up; xargs -P <cores>
//   3. cogd  — cogd poll --wait on a manifest of the same images (local executor)
// 4. scale — a 100,000-row manifest: claim → all jobs planned and stored; peak RSS; status latency;
//            the same manifest executed end to end (images missing: each row fails on one request,
//            so only orchestration is measured; median of --scale-rounds): peak RSS, rows/s, and
//            `cogd status --jobs RUN` (a page) on that run; 1,000,000 rows claimed → planned: time,
//            peak RSS, DB size, status latency
// 5. post  — reconcile 10,000 rows against 20,000 outputs: cogd's method vs the reference tool's
//            (list the whole output bucket for every row, twice; run on a sample, extrapolated)
// 6. idle poll — S3 requests per poll of a bucket of 50,000 unrelated keys; RSS after 1,000 polls vs 10
// 8. web  — the status page's API on a run of 20,000 planned rows: pages, filters, /metrics (median ms)
// 7. profiles — each COG profile on one image of each benchmark kind and on the shared corpus
//    ($COGD_CORPUS, else ../shared/testdata/geotiff): output size vs lzw, time per image, lossless
// 9. groups (only when named: --parts groups) — tiny images on the HTCondor simulator
//    (test/fixtures/condor-sim, CONDOR_SIM_SLOTS = cores): --group-count images of 64², converted with
//    --rows-per-job 1 and --rows-per-job <--group-rows> (default 50): jobs submitted and wall time.
//    The simulator spends almost nothing per job; --group-job-overhead-ms N makes each proc hold its
//    slot N ms before it runs (CONDOR_SIM_JOB_OVERHEAD_MS), a stand-in for a real pool's per-job cost
//    --group-executor slurm runs the same on a throw-away one-node Slurm cluster on loopback instead
//    (scripts/lib/slurm.mjs, without accounting, as many CPUs as cores): real array tasks, each
//    starting Node.js and cogd's task on the node; jobs counted from the run's batch files
// Prints a table; writes bench/results/<date>.json.
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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
    parts: { type: 'string', default: 'throughput,scale,post,idle,profiles,web' },
    'web-rows': { type: 'string', default: '20000' },
    'scale-rows': { type: 'string', default: '100000' },
    'scale-rounds': { type: 'string', default: '3' },
    'scale-plan-rows': { type: 'string', default: '1000000' },
    'post-rows': { type: 'string', default: '10000' },
    'reference-sample': { type: 'string', default: '4' },
    'idle-keys': { type: 'string', default: '50000' },
    'idle-polls': { type: 'string', default: '1000' },
    s3: { type: 'string' },
    'group-count': { type: 'string', default: '2000' },
    'group-rows': { type: 'string', default: '50' },
    'group-job-overhead-ms': { type: 'string', default: '0' },
    'group-executor': { type: 'string', default: 'condor' },
    // throughput: which of limit, shell, cogd to run (shell is slow: leave it out while developing)
    methods: { type: 'string', default: 'limit,shell,cogd' },
  },
});
const parts = new Set(values.parts.split(','));
const count = Number(values.count);
const size = Number(values.size);
const rounds = Number(values.rounds);
const cores = os.availableParallelism();
const work = mkdtempSync(path.join(os.tmpdir(), 'cogd-bench-'));
const dist = (module) => import(path.join(root, 'dist', module));
const { createStorage } = await dist('storage/s3.js');

const now = () => performance.now() / 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quote = (a) => `'${String(a).replace(/'/g, `'\\''`)}'`;
const log = (line) => console.error(line);

/** CPU seconds of a process from /proc: its own, and its reaped children's (GDAL, for cogd). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const tick = 100; // USER_HZ on Linux
  return {
    own: (Number(fields[11]) + Number(fields[12])) / tick,
    children: (Number(fields[13]) + Number(fields[14])) / tick,
  };
}

/** The pids of cogd's process spawner (src/util/spawner.ts) among `pid`'s children. */
function spawnerPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .filter((c) => {
        try {
          return readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0').includes('cogd-spawner');
        } catch {
          return false;
        }
      });
  } catch {
    return [];
  }
}

/**
 * Runs a command; tracks its peak RSS (VmHWM) and CPU time (last sample before exit) from /proc.
 * cogd starts GDAL from a helper process (its spawner): the helper's own CPU is cogd's, what it
 * reaped (GDAL) is GDAL's. A helper already gone was reaped by cogd: its own CPU then sits in cogd's
 * children's and is moved back.
 */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    let peakKb = 0;
    let helperPeakKb = 0;
    let cpu = { own: 0, children: 0, helper: 0 };
    const helpers = new Map(); // pid → last { own, children }
    const timer = setInterval(() => {
      try {
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
        peakKb = Math.max(peakKb, hwm);
        const main = cpuSeconds(child.pid);
        for (const h of spawnerPids(child.pid)) {
          if (!helpers.has(h)) helpers.set(h, { own: 0, children: 0 });
          const hwmHelper = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${h}/status`, 'utf8'))?.[1] ?? 0);
          helperPeakKb = Math.max(helperPeakKb, hwmHelper);
        }
        const total = { own: main.own, children: main.children, helper: 0 };
        for (const [h, c] of helpers) {
          let alive = true;
          try {
            Object.assign(c, cpuSeconds(h));
          } catch {
            alive = false;
          }
          total.own += c.own;
          total.helper += c.own;
          if (alive) total.children += c.children;
          else total.children -= c.own;
        }
        cpu = total;
      } catch {
        /* exited */
      }
    }, 20);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      clearInterval(timer);
      if (code !== 0 && !options.allowFail) reject(new Error(`${command} exited ${code}: ${err.slice(-2000)}`));
      else resolve({ code, out, err, peakKb, helperPeakKb, cpu });
    });
  });
}

/** Runs async work over items with bounded concurrency. */
async function pool(items, concurrency, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

// ---- the S3 server on loopback: Ceph RGW where its binaries are installed (production-like), else
// s3rver; --s3 ceph|s3rver chooses. Either way it shares this machine's cores with GDAL.
const { cephAvailable, startCephRgw } = await import('../scripts/lib/ceph-rgw.mjs');
const s3Kind = values.s3 ?? (cephAvailable() ? 'ceph' : 's3rver');
let endpoint;
let credentials = { accessKey: 'S3RVER', secretKey: 'S3RVER' };
let stopServer;
/** CPU seconds the S3 server has used so far (undefined where it is not one process of ours). */
let serverCpu = () => undefined;
if (s3Kind === 'ceph') {
  log('starting Ceph RGW on loopback …');
  const rgw = await startCephRgw();
  endpoint = rgw.endpoint;
  credentials = { accessKey: rgw.accessKey, secretKey: rgw.secretKey };
  stopServer = () => rgw.stop();
  // Ceph's daemons (mon, osd, radosgw), by the pid files the launcher's configuration names.
  const cephPids = readdirSync(path.join(rgw.dir, 'run'))
    .filter((name) => name.endsWith('.pid'))
    .map((name) => Number.parseInt(readFileSync(path.join(rgw.dir, 'run', name), 'utf8'), 10))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
  if (cephPids.length > 0) serverCpu = () => cephPids.reduce((sum, pid) => sum + cpuSeconds(pid).own, 0);
} else {
  const server = spawn(
    process.execPath,
    ['--openssl-legacy-provider', path.join(root, 'scripts/s3-server.mjs'), '--dir', path.join(work, 's3')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  endpoint = JSON.parse(
    await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve)),
  ).endpoint;
  stopServer = async () => server.kill('SIGTERM');
  serverCpu = () => cpuSeconds(server.pid).own;
}
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: credentials.accessKey, secretAccessKey: credentials.secretKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const ak = path.join(work, 'ak');
const sk = path.join(work, 'sk');
// Owner-only, as cogd asks of key files (it warns about others).
writeFileSync(ak, credentials.accessKey, { mode: 0o600 });
writeFileSync(sk, credentials.secretKey, { mode: 0o600 });
const settings = { endpoint, accessKeyFile: ak, secretKeyFile: sk, region: 'us-east-1' };
const bucket = async (name) => client.send(new CreateBucketCommand({ Bucket: name }));
const putObject = (b, key, body) => client.send(new PutObjectCommand({ Bucket: b, Key: key, Body: body }));
const cogdArgs = (verb, home, pattern, input, output) => [
  path.join(root, 'bin/cogd'),
  verb,
  '-p',
  pattern,
  '--input-bucket',
  input,
  '--output-bucket',
  output,
  '-e',
  endpoint,
  '-a',
  ak,
  '-s',
  sk,
  '--home',
  home,
];

/** COGD_BENCH_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"): for cogd's own process where it converts or executes. */
const nodeFlags = () => (process.env.COGD_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

const results = { date: new Date().toISOString() };

// ---- 1-3: throughput
async function throughput() {
  const { inspect } = await dist('convert/gdal.js');
  const { cogCommand, planCog, DEFAULT_CONVERSION } = await dist('convert/profiles.js');
  const { planPreview, previewCommand, previewVrt } = await dist('convert/preview.js');
  const { StepFiles } = await dist('log/index.js');
  const { outline } = await dist('stac/footprint.js');
  const AWS = '/usr/bin/aws'; // Debian's awscli, not whatever else is first on PATH
  if (!existsSync(AWS) && process.getuid?.() === 0) {
    log("installing Debian's awscli for the shell baseline…");
    execFileSync('apt-get', ['install', '-y', '-qq', 'awscli'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  log(`making ${count} GeoTIFFs of ${size}x${size} …`);
  const imgDir = path.join(work, 'images');
  mkdirSync(imgDir);
  const kinds = [
    { bands: 1, type: 'Byte' },
    { bands: 3, type: 'Byte' },
    { bands: 4, type: 'Byte' },
    { bands: 3, type: 'Byte' },
    { bands: 1, type: 'UInt16' },
  ];
  const images = [];
  for (let i = 0; i < count; i += 1) {
    const kind = kinds[i % kinds.length];
    const name = `img-${String(i).padStart(5, '0')}.tif`;
    await makeTiff(path.join(imgDir, name), {
      width: size,
      height: size,
      bands: kind.bands,
      type: kind.type,
      burn: [i % 200, (i * 7) % 200, (i * 13) % 200, 255],
    });
    images.push({ name, bands: kind.bands, type: kind.type });
  }
  // The exact GDAL command lines cogd runs for each image (from the same rules modules): the
  // inspection with checksums (and statistics where the preview stretches), the COG, the preview
  // (through its VRT where masked), the output's check and the STAC footprint's gdaltransform.
  const files = new StepFiles(work, 'inspect');
  for (const image of images) {
    const file = path.join(imgDir, image.name);
    const statistics = image.type !== 'Byte';
    const info = await inspect(file, files, { statistics, checksum: true });
    const plan = planCog(info, DEFAULT_CONVERSION);
    const look = planPreview(info, DEFAULT_CONVERSION);
    image.inspect = ['-json', ...(statistics ? ['-approx_stats'] : []), '-checksum', 'IN'];
    image.cog = cogCommand(plan, 'IN', 'OUT');
    if (look.masked) {
      image.vrt = path.join(imgDir, image.name.replace(/\.tif$/, '.vrt'));
      writeFileSync(image.vrt, previewVrt(look, info, file));
    }
    image.jpeg = previewCommand(look, look.masked ? image.vrt : 'IN', 'OUT');
    // With STAC items (the default) the check also takes the statistics, and the footprint is one
    // gdaltransform of the COG's outline (src/stac/footprint.ts).
    const stac = DEFAULT_CONVERSION.stac !== false;
    image.check = ['-json', ...(stac ? ['-approx_stats'] : []), ...(plan.lossless ? ['-checksum'] : []), 'OUT'];
    if (stac && info.crs !== undefined) {
      image.outline = path.join(imgDir, image.name.replace(/\.tif$/, '.outline.txt'));
      writeFileSync(
        image.outline,
        `${outline(info.width, info.height)
          .map(([x, y]) => `${x} ${y}`)
          .join('\n')}\n`,
      );
    }
  }
  const command = (tool, args, input, output) =>
    [tool, ...args.map((a) => (a === 'IN' ? input : a === 'OUT' ? output : a))].map(quote).join(' ');
  const translate = (args, input, output) => command('gdal_translate', args, input, output);
  const gdalinfo = (args, input, output) => `${command('gdalinfo', args, input, output)} > /dev/null`;
  await bucket('bench-in');
  await pool(images, 8, (im) => putObject('bench-in', `images/${im.name}`, readFileSync(path.join(imgDir, im.name))));
  const gdalEnv = { ...process.env, GDAL_PAM_ENABLED: 'NO' };
  const xargs = async (name, lines, env) => {
    const list = path.join(work, `${name}.txt`);
    writeFileSync(list, `${lines.join('\n')}\n`);
    const start = now();
    await run('bash', ['-c', `tr '\\n' '\\0' < ${quote(list)} | xargs -0 -P ${cores} -I{} bash -c {}`], { env });
    return now() - start;
  };

  const methods = {
    async limit(round) {
      const out = path.join(work, `limit-${round}`);
      mkdirSync(out);
      const seconds = await xargs(
        `limit-${round}`,
        images.map((im) => {
          const input = path.join(imgDir, im.name);
          const base = path.join(out, im.name.replace(/\.tif$/, ''));
          return [
            gdalinfo(im.inspect, input, ''),
            translate(im.cog, input, `${base}.tif`),
            translate(im.jpeg, input, `${base}.jpg`),
            gdalinfo(im.check, '', `${base}.tif`),
            ...(im.outline === undefined
              ? []
              : [
                  `${command('gdaltransform', ['-t_srs', 'OGC:CRS84', '-output_xy', 'OUT'], '', `${base}.tif`)} < ${quote(im.outline)} > /dev/null`,
                ]),
          ].join(' && ');
        }),
        gdalEnv,
      );
      rmSync(out, { recursive: true, force: true });
      return { seconds };
    },
    async shell(round) {
      if (!existsSync(AWS)) return undefined;
      const target = `bench-shell-${round}`;
      await bucket(target);
      const out = path.join(work, `shell-${round}`);
      mkdirSync(out);
      const aws = `${AWS} --endpoint-url ${endpoint} s3 cp --only-show-errors`;
      const seconds = await xargs(
        `shell-${round}`,
        images.map((im) => {
          const local = path.join(out, im.name);
          const base = local.replace(/\.tif$/, '');
          return [
            `${aws} s3://bench-in/images/${im.name} ${quote(local)}`,
            translate(im.cog, local, `${base}.cog.tif`),
            translate(im.jpeg, local, `${base}.jpg`),
            `${aws} ${quote(`${base}.cog.tif`)} s3://${target}/images/${im.name}`,
            `${aws} ${quote(`${base}.jpg`)} s3://${target}/images/${im.name.replace(/\.tif$/, '.jpg')}`,
            `rm -f ${quote(local)} ${quote(`${base}.cog.tif`)} ${quote(`${base}.jpg`)}`,
          ].join(' && ');
        }),
        {
          ...gdalEnv,
          AWS_ACCESS_KEY_ID: credentials.accessKey,
          AWS_SECRET_ACCESS_KEY: credentials.secretKey,
          AWS_DEFAULT_REGION: 'us-east-1',
        },
      );
      rmSync(out, { recursive: true, force: true });
      return { seconds };
    },
    async cogd(round) {
      const target = `bench-cogd-${round}`;
      await bucket(target);
      await putObject(
        'bench-in',
        `manifests/round${round}-raw.csv`,
        `${images.map((im) => `images/${im.name},${im.bands}`).join('\n')}\n`,
      );
      const home = path.join(work, `home-${round}`);
      mkdirSync(home);
      const start = now();
      const serverBefore = serverCpu();
      const result = await run(process.execPath, [
        ...nodeFlags(),
        ...cogdArgs('poll', home, `manifests/round${round}-raw.csv`, 'bench-in', target),
        '--wait',
      ]);
      const seconds = now() - start;
      const serverAfter = serverCpu();
      const perImage = (cpuS) => `${((1000 * cpuS) / count).toFixed(1)} ms/image`;
      log(
        `  CPU: cogd ${result.cpu.own.toFixed(1)} s = ${perImage(result.cpu.own)} (its spawner ${result.cpu.helper.toFixed(1)} s), GDAL ${result.cpu.children.toFixed(1)} s = ${perImage(result.cpu.children)}, S3 server ${serverAfter === undefined ? '?' : `${(serverAfter - serverBefore).toFixed(1)} s = ${perImage(serverAfter - serverBefore)}`}; ${seconds.toFixed(1)} s wall`,
      );
      if (!/ 0 failed/.test(result.out)) throw new Error(`cogd did not convert everything: ${result.out}`);
      const requests = Number(
        /"requests":(\d+)/.exec(readFileSync(path.join(home, 'logs', 'cogd.log'), 'utf8'))?.[1] ?? NaN,
      );
      rmSync(home, { recursive: true, force: true });
      return {
        seconds,
        peakRssMb: result.peakKb / 1024,
        spawnerPeakRssMb: result.helperPeakKb / 1024,
        requestsPerImage: requests / count,
        cpuSeconds: {
          cogd: result.cpu.own,
          cogdSpawner: result.cpu.helper,
          gdal: result.cpu.children,
          s3Server: serverAfter === undefined ? null : serverAfter - serverBefore,
        },
      };
    },
  };
  const measured = { limit: [], shell: [], cogd: [] };
  const chosen = new Set(values.methods.split(','));
  const order = ['limit', 'shell', 'cogd'].filter((name) => chosen.has(name));
  for (let round = 0; round < rounds; round += 1) {
    // The order rotates so no method always runs first (cold caches) or last.
    for (const name of [...order.slice(round % order.length), ...order.slice(0, round % order.length)]) {
      const r = await methods[name](round);
      if (r === undefined) continue;
      measured[name].push(r);
      log(`round ${round + 1}/${rounds} ${name}: ${(count / r.seconds).toFixed(2)} images/s`);
    }
  }
  const rate = (name) =>
    measured[name].length === 0 ? undefined : count / median(measured[name].map((r) => r.seconds));
  results.throughput = {
    workload: { count, size, rounds },
    imagesPerSecond: { limit: rate('limit'), shell: rate('shell'), cogd: rate('cogd') },
    cogdToLimit: rate('cogd') / rate('limit'),
    cogdToShell: rate('shell') === undefined ? undefined : rate('cogd') / rate('shell'),
    cogdPeakRssMb: median(measured.cogd.map((r) => r.peakRssMb)),
    spawnerPeakRssMb: median(measured.cogd.map((r) => r.spawnerPeakRssMb)),
    s3RequestsPerImage: median(measured.cogd.map((r) => r.requestsPerImage)),
    // Where the machine's CPU went during the median cogd round (seconds; cores × wall available).
    cpuSeconds: (() => {
      const r = [...measured.cogd].sort((a, b) => a.seconds - b.seconds)[Math.floor(measured.cogd.length / 2)];
      return { ...r.cpuSeconds, available: r.seconds * cores };
    })(),
    // CPU milliseconds per image, median of the rounds each (cogd's includes its spawner's).
    cpuMsPerImage: {
      cogd: median(measured.cogd.map((r) => (1000 * r.cpuSeconds.cogd) / count)),
      gdal: median(measured.cogd.map((r) => (1000 * r.cpuSeconds.gdal) / count)),
      s3Server: measured.cogd.some((r) => r.cpuSeconds.s3Server === null)
        ? null
        : median(measured.cogd.map((r) => (1000 * r.cpuSeconds.s3Server) / count)),
    },
  };
}

// ---- 4: scale
/** A manifest of `rows` images that do not exist, in 100 folders. */
async function missingManifest(bucketName, key, rows) {
  const lines = [];
  for (let i = 0; i < rows; i += 1) lines.push(`scale/d${i % 100}/img-${i}.tif,3\n`);
  await putObject(bucketName, key, lines.join(''));
}

/** Median of `cogd ARGS` wall times (ms) over `n` runs. */
async function latency(args, n = 5) {
  const times = [];
  for (let i = 0; i < n; i += 1) {
    const t = now();
    await run(process.execPath, [path.join(root, 'bin/cogd'), ...args]);
    times.push((now() - t) * 1000);
  }
  return median(times);
}

async function scale() {
  const rows = Number(values['scale-rows']);
  await bucket('bench-scale-in');
  await bucket('bench-scale-out');
  await missingManifest('bench-scale-in', 'scale/big-raw.csv', rows);
  const home = path.join(work, 'home-scale');
  mkdirSync(home);
  const start = now();
  const planned = await run(
    process.execPath,
    cogdArgs('poll', home, 'scale/*-raw.csv', 'bench-scale-in', 'bench-scale-out'),
  );
  const seconds = now() - start;
  if (!new RegExp(`${rows} rows planned`).test(planned.out)) throw new Error(`scale: unexpected output ${planned.out}`);
  const statusMs = await latency(['status', '--home', home]);
  results.scale = {
    rows,
    claimToPlannedSeconds: seconds,
    peakRssMb: planned.peakKb / 1024,
    statusMs,
  };
  log(
    `scale: ${rows} rows planned in ${seconds.toFixed(2)} s, peak RSS ${(planned.peakKb / 1024).toFixed(0)} MB, status ${statusMs.toFixed(0)} ms`,
  );

  // Executed end to end: claimed, planned, every job run (and failed: no image exists), posted.
  const rounds = Number(values['scale-rounds']);
  const executions = [];
  let lastHome;
  let runId;
  for (let r = 0; r < rounds; r += 1) {
    const input = `bench-exec-in-${r}`;
    const output = `bench-exec-out-${r}`;
    await bucket(input);
    await bucket(output);
    await missingManifest(input, 'exec/big-raw.csv', rows);
    lastHome = path.join(work, `home-exec-${r}`);
    mkdirSync(lastHome);
    const t = now();
    const executed = await run(
      process.execPath,
      [...nodeFlags(), ...cogdArgs('poll', lastHome, 'exec/*-raw.csv', input, output), '--wait'],
      { allowFail: true },
    );
    const wall = now() - t;
    if (!new RegExp(`${rows} rows, 0 processed, ${rows} failed`).test(executed.out))
      throw new Error(`scale execution: unexpected output ${executed.out.slice(-2000)} ${executed.err.slice(-2000)}`);
    runId = /run (\d+) /.exec(executed.out)?.[1];
    executions.push({ seconds: wall, rowsPerSecond: rows / wall, peakRssMb: executed.peakKb / 1024 });
    log(
      `scale: ${rows} rows executed in ${wall.toFixed(1)} s (${(rows / wall).toFixed(0)} rows/s), peak RSS ${(executed.peakKb / 1024).toFixed(0)} MB`,
    );
  }
  results.scale.execution = {
    rows,
    rounds: executions,
    rowsPerSecond: median(executions.map((e) => e.rowsPerSecond)),
    peakRssMb: median(executions.map((e) => e.peakRssMb)),
    statusJobsMs: await latency(['status', '--jobs', runId ?? '1', '--limit', '100', '--home', lastHome]),
    statusFailedMs: await latency([
      'status',
      '--jobs',
      runId ?? '1',
      '--state',
      'failed',
      '--limit',
      '100',
      '--page',
      String(Math.max(1, Math.floor(rows / 200))),
      '--home',
      lastHome,
    ]),
  };

  // A million rows claimed and planned.
  const million = Number(values['scale-plan-rows']);
  await bucket('bench-plan-in');
  await bucket('bench-plan-out');
  await missingManifest('bench-plan-in', 'plan/huge-raw.csv', million);
  const planHome = path.join(work, 'home-plan');
  mkdirSync(planHome);
  const t = now();
  const plannedMillion = await run(
    process.execPath,
    cogdArgs('poll', planHome, 'plan/*-raw.csv', 'bench-plan-in', 'bench-plan-out'),
  );
  const planSeconds = now() - t;
  if (!new RegExp(`${million} rows planned`).test(plannedMillion.out))
    throw new Error(`scale: unexpected output ${plannedMillion.out}`);
  const dbBytes = ['cogd.db', 'cogd.db-wal']
    .map((f) => path.join(planHome, f))
    .filter((f) => existsSync(f))
    .reduce((sum, f) => sum + statSync(f).size, 0);
  results.scale.million = {
    rows: million,
    claimToPlannedSeconds: planSeconds,
    peakRssMb: plannedMillion.peakKb / 1024,
    dbMb: dbBytes / 2 ** 20,
    statusMs: await latency(['status', '--home', planHome]),
    statusJobsMs: await latency(['status', '--jobs', '--limit', '100', '--home', planHome]),
  };
  log(
    `scale: ${million} rows planned in ${planSeconds.toFixed(1)} s, peak RSS ${(plannedMillion.peakKb / 1024).toFixed(0)} MB, DB ${(dbBytes / 2 ** 20).toFixed(0)} MB`,
  );
}

// ---- 9: groups — tiny images on the HTCondor simulator (or Slurm), one row per job vs --group-rows per job
/** Array tasks a Slurm run submitted, from its batch files (a group is one task). */
function slurmTasks(runDir) {
  const dir = path.join(runDir, 'slurm');
  let tasks = 0;
  for (const name of readdirSync(dir).filter((f) => /^batch-\d+\.json$/.test(f))) {
    const batch = JSON.parse(readFileSync(path.join(dir, name), 'utf8'));
    tasks += batch.groups?.length ?? batch.tasks.length;
  }
  return tasks;
}

async function groups() {
  const images = Number(values['group-count']);
  const perJob = Number(values['group-rows']);
  const executor = values['group-executor'];
  if (executor !== 'condor' && executor !== 'slurm')
    throw new Error(`--group-executor ${executor}: condor (the HTCondor simulator) or slurm`);
  let slurm;
  if (executor === 'slurm') {
    const { slurmAvailable, installSlurm, startSlurm } = await import('../scripts/lib/slurm.mjs');
    if (!slurmAvailable(false)) await installSlurm({ accounting: false, log });
    slurm = await startSlurm({ accounting: false, cpus: cores });
    log(`groups: Slurm cluster ${slurm.cluster} on loopback (${slurm.cpus} CPUs)`);
  }
  try {
    await groupRuns(images, perJob, executor, slurm);
  } finally {
    await slurm?.stop();
  }
}

async function groupRuns(images, perJob, executor, slurm) {
  const sim = path.join(root, 'test/fixtures/condor-sim');
  await bucket('bench-groups-in');
  const tiff = await makeTiff(path.join(work, 'tiny.tif'), { bands: 1 });
  const body = readFileSync(tiff);
  const keys = Array.from({ length: images }, (_, i) => `tiles/t${i}.tif`);
  await pool(keys, 16, (key) => putObject('bench-groups-in', key, body));
  const manifest = `${keys.map((k) => `${k},1`).join('\n')}\n`;
  results.groups = {
    images,
    executor,
    jobOverheadMs: executor === 'condor' ? Number(values['group-job-overhead-ms']) : undefined,
    settings: {},
  };
  for (const rowsPerJob of [1, perJob]) {
    const out = `bench-groups-out-${rowsPerJob}`;
    await bucket(out);
    const key = `groups/r${rowsPerJob}-raw.csv`;
    await putObject('bench-groups-in', key, manifest);
    const home = path.join(work, `home-groups-${rowsPerJob}`);
    const simDir = path.join(work, `condor-sim-${rowsPerJob}`);
    mkdirSync(home);
    mkdirSync(simDir);
    const env =
      executor === 'slurm'
        ? { ...process.env, ...slurm.env }
        : {
            ...process.env,
            PATH: `${sim}:${process.env.PATH}`,
            CONDOR_SIM_DIR: simDir,
            CONDOR_SIM_SLOTS: String(cores),
            CONDOR_SIM_JOB_OVERHEAD_MS: values['group-job-overhead-ms'],
          };
    const executorArgs = executor === 'slurm' ? ['--executor', 'slurm', '--slurm-poll', '2'] : ['--executor', 'condor'];
    const start = now();
    const done = await run(
      process.execPath,
      [
        ...cogdArgs('poll', home, key, 'bench-groups-in', out),
        '--wait',
        ...executorArgs,
        '--rows-per-job',
        String(rowsPerJob),
        '--no-stac',
      ],
      { env },
    );
    const seconds = now() - start;
    if (!new RegExp(`${images} rows, ${images} processed`).test(done.out))
      throw new Error(`groups: unexpected output ${done.out}`);
    const runDir = path.join(
      home,
      'logs',
      readdirSync(path.join(home, 'logs')).find((d) => d.startsWith('run-')),
    );
    const jobs =
      executor === 'slurm'
        ? slurmTasks(runDir)
        : (readFileSync(path.join(runDir, 'condor.log'), 'utf8').match(/^000 \(/gm) ?? []).length;
    results.groups.settings[rowsPerJob] = { jobs, seconds, imagesPerSecond: images / seconds };
    log(`groups: ${images} tiny images, --rows-per-job ${rowsPerJob}: ${jobs} jobs, ${seconds.toFixed(1)} s`);
  }
  const [one, many] = [results.groups.settings[1], results.groups.settings[perJob]];
  results.groups.speedup = one.seconds / many.seconds;
}

// ---- 8: web
async function web() {
  const rows = Number(values['web-rows']);
  await bucket('bench-web-in');
  await bucket('bench-web-out');
  const manifest = Array.from({ length: rows }, (_, i) => `web/d${i % 100}/img-${i}.tif,3`).join('\n');
  await putObject('bench-web-in', 'web/big-raw.csv', `${manifest}\n`);
  const home = path.join(work, 'home-web');
  mkdirSync(home);
  const planned = await run(process.execPath, cogdArgs('poll', home, 'web/*-raw.csv', 'bench-web-in', 'bench-web-out'));
  if (!new RegExp(`${rows} rows planned`).test(planned.out)) throw new Error(`web: unexpected output ${planned.out}`);
  // The daemon's own server on the planned run's DB, in this process; every 10th job failed.
  const { StateDB } = await dist('state/db.js');
  const { startWebServer } = await dist('web/server.js');
  const { Metrics } = await dist('web/metrics.js');
  const db = new StateDB(path.join(home, 'cogd.db'));
  db.transaction(() => {
    for (const job of db.jobs(1)) if (job.line % 10 === 0) db.setJobState(job.id, 'failed', { error: 'bench' });
  });
  const quiet = {
    info() {},
    warn() {},
    error() {},
    debug() {},
    child: () => quiet,
    withFile: () => quiet,
    close: async () => {},
  };
  const server = await startWebServer({
    address: '127.0.0.1:0',
    db,
    home,
    logsDir: path.join(home, 'logs'),
    holder: { pid: process.pid, role: 'daemon' },
    metrics: new Metrics(db),
    alive: () => true,
    log: quiet,
  });
  const last = Math.ceil(rows / 100);
  const urls = {
    'jobs, first page': 'api/runs/1/jobs',
    'jobs, last page': `api/runs/1/jobs?page=${last}`,
    'failed jobs, last page': `api/runs/1/jobs?state=failed&page=${Math.ceil(rows / 1000)}`,
    'the run': 'api/runs/1',
    status: 'api/status',
    metrics: 'metrics',
  };
  const ms = {};
  try {
    for (const [name, url] of Object.entries(urls)) {
      const times = [];
      for (let i = 0; i < 21; i += 1) {
        const t = now();
        const response = await fetch(`${server.url}${url}`);
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`web: ${url} answered ${response.status}`);
        times.push((now() - t) * 1000);
      }
      ms[name] = median(times);
    }
  } finally {
    await server.close();
    db.close();
  }
  results.web = { rows, medianMs: ms };
  log(
    `web: ${Object.entries(ms)
      .map(([n, v]) => `${n} ${v.toFixed(1)} ms`)
      .join(', ')}`,
  );
}

// ---- 5: post
async function post() {
  const rows = Number(values['post-rows']);
  const sample = Number(values['reference-sample']);
  const { existingKeys } = await dist('post/reconcile.js');
  const { minimatch } = await import('minimatch');
  await bucket('bench-post-out');
  const keys = Array.from({ length: rows }, (_, i) => `post/f${i % 10}/img-${i}.tif`);
  const outputs = keys.flatMap((k) => [k, k.replace(/\.tif$/, '.jpg')]);
  log(`post: uploading ${outputs.length} outputs …`);
  await pool(outputs, 32, (key) => putObject('bench-post-out', key, 'x'));

  const measure = async (work) => {
    const storage = await createStorage(settings);
    const start = now();
    const found = await work(storage);
    const out = { seconds: now() - start, requests: storage.requests, found };
    storage.close();
    return out;
  };
  const cogdWay = await measure((storage) => existingKeys(storage, 'bench-post-out', outputs));
  const headWay = await measure(async (storage) => {
    const found = new Set();
    await pool(outputs, 16, async (key) => {
      if ((await storage.head('bench-post-out', key)) !== undefined) found.add(key);
    });
    return found;
  });
  // The reference tool: for every row, list the whole output bucket and glob-match — once for the
  // COG, once for the preview. Too slow to run for every row: a sample, extrapolated.
  const referenceWay = await measure(async (storage) => {
    const found = new Set();
    for (const key of keys.slice(0, sample)) {
      for (const wanted of [key, key.replace(/\.tif$/, '.jpg')]) {
        for await (const object of storage.list('bench-post-out', ''))
          if (minimatch(object.key, wanted)) found.add(object.key);
      }
    }
    return found;
  });
  if (cogdWay.found.size !== outputs.length || headWay.found.size !== outputs.length)
    throw new Error('post: outputs not all found');
  const referencePerRow = { seconds: referenceWay.seconds / sample, requests: referenceWay.requests / sample };
  results.post = {
    rows,
    outputs: outputs.length,
    cogd: {
      method: outputs.length <= 100 ? 'HEAD' : 'one listing per folder',
      seconds: cogdWay.seconds,
      requests: cogdWay.requests,
    },
    headPerOutput: { seconds: headWay.seconds, requests: headWay.requests },
    reference: {
      sampleRows: sample,
      extrapolatedSeconds: referencePerRow.seconds * rows,
      extrapolatedRequests: referencePerRow.requests * rows,
    },
  };
  results.post.speedupVsReference = results.post.reference.extrapolatedSeconds / cogdWay.seconds;
  log(
    `post: cogd ${cogdWay.requests} requests ${cogdWay.seconds.toFixed(2)} s; HEAD each ${headWay.requests} requests ${headWay.seconds.toFixed(2)} s; reference ~${Math.round(results.post.reference.extrapolatedRequests)} requests ~${Math.round(results.post.reference.extrapolatedSeconds)} s`,
  );
}

// ---- 6: idle poll
async function idle() {
  const keysCount = Number(values['idle-keys']);
  const polls = Number(values['idle-polls']);
  await bucket('bench-idle');
  log(`idle: uploading ${keysCount} unrelated keys …`);
  await pool(
    Array.from({ length: keysCount }, (_, i) => `archive/${i % 50}/object-${i}.dat`),
    32,
    (key) => putObject('bench-idle', key, 'x'),
  );
  await putObject('bench-idle', 'incoming/readme.txt', 'not a manifest');
  // The polls go through the daemon's engine (Daemon.poll: resume, list, log) in a child started
  // with the detached daemon's V8 flags; RSS is read after a collection each time.
  const { DAEMON_NODE_FLAGS } = await dist('daemon/node-flags.js');
  const script = path.join(work, 'idle.mjs');
  const idleHome = path.join(work, 'idle-home');
  writeFileSync(
    script,
    `
    const dist = (m) => import(${JSON.stringify(path.join(root, 'dist'))} + '/' + m);
    const { StateDB } = await dist('state/db.js');
    const { Daemon } = await dist('daemon/daemon.js');
    const { createLog } = await dist('log/index.js');
    const { resolveEngine } = await dist('config.js');
    const engine = resolveEngine({ home: ${JSON.stringify(idleHome)} });
    const db = new StateDB(${JSON.stringify(path.join(work, 'idle.db'))});
    const log = createLog({ logDir: ${JSON.stringify(path.join(idleHome, 'logs'))}, consoleLevel: 'silent' });
    const settings = ${JSON.stringify(settings)};
    const watch = db.saveWatch(
      { pattern: 'incoming/*-raw.csv', inputBucket: 'bench-idle', outputBucket: 'bench-idle-out', endpoint: settings.endpoint },
      { accessKeyFile: settings.accessKeyFile, secretKeyFile: settings.secretKeyFile, region: settings.region, schedule: '* * * * *', maxRunning: 1, retries: 0, retryDelayMs: 0, executor: 'local' },
    );
    const daemon = new Daemon(db, log, engine);
    const rss = {};
    const heap = {};
    for (let i = 1; i <= ${polls}; i += 1) {
      const found = await daemon.poll(watch);
      if (found.length !== 0) throw new Error('found a manifest');
      if (i === 10 || i === ${polls}) { global.gc(); rss[i] = process.memoryUsage().rss; heap[i] = process.memoryUsage().heapUsed; }
    }
    console.log(JSON.stringify({ requests: await daemon.requests(), rss, heap }));
    await daemon.close();
    db.close();
    await log.close();
  `,
  );
  const out = JSON.parse(
    (await run(process.execPath, [...DAEMON_NODE_FLAGS, script], { env: { ...process.env } })).out,
  );
  results.idle = {
    keys: keysCount,
    nodeFlags: DAEMON_NODE_FLAGS.join(' '),
    polls,
    requestsPerPoll: out.requests / polls,
    rssAfter10Mb: out.rss[10] / 2 ** 20,
    rssAfterAllMb: out.rss[polls] / 2 ** 20,
    rssGrowth: out.rss[polls] / out.rss[10] - 1,
    // V8's heap in use, after a collection: what a leak would grow.
    heapAfter10Mb: out.heap[10] / 2 ** 20,
    heapAfterAllMb: out.heap[polls] / 2 ** 20,
  };
  log(
    `idle: ${results.idle.requestsPerPoll} requests per poll; RSS ${results.idle.rssAfter10Mb.toFixed(1)} MB after 10 polls, ${results.idle.rssAfterAllMb.toFixed(1)} MB after ${polls}`,
  );
}

// ---- 7: profiles — each COG profile's size, time and losslessness, on local files
async function profiles() {
  const { inspect } = await dist('convert/gdal.js');
  const { cogCommand, planCog, DEFAULT_CONVERSION } = await dist('convert/profiles.js');
  const { StepFiles } = await dist('log/index.js');
  const names = ['lzw', 'deflate', 'zstd', 'webp', 'jpeg', 'lerc', 'auto'];
  const files = new StepFiles(work, 'profiles');
  const out = path.join(work, 'profiles');
  mkdirSync(out, { recursive: true });
  // The benchmark's image kinds at --size, one each, and the shared corpus of real GeoTIFFs.
  const kinds = [
    { bands: 1, type: 'Byte' },
    { bands: 3, type: 'Byte' },
    { bands: 4, type: 'Byte' },
    { bands: 1, type: 'UInt16' },
    { bands: 1, type: 'Float32' },
  ];
  const generated = [];
  for (const [i, kind] of kinds.entries()) {
    const file = path.join(out, `kind-${i}.tif`);
    await makeTiff(file, {
      width: size,
      height: size,
      bands: kind.bands,
      type: kind.type,
      burn: [i * 40, 90, 160, 255],
    });
    generated.push(file);
  }
  const corpusDir = process.env.COGD_CORPUS ?? path.resolve(root, '..', 'shared', 'testdata', 'geotiff');
  const corpus = existsSync(corpusDir)
    ? (await import('node:fs'))
        .readdirSync(corpusDir)
        .filter((f) => /\.tiff?$/i.test(f))
        .map((f) => path.join(corpusDir, f))
    : [];
  results.profiles = { sets: {} };
  for (const [set, inputs] of [
    ['benchmark images', generated],
    ['corpus', corpus],
  ]) {
    if (inputs.length === 0) continue;
    const rows = {};
    for (const name of names)
      rows[name] = { images: 0, unfit: 0, bytes: 0, lzwBytes: 0, seconds: 0, exact: 0, visible: 0 };
    for (const input of inputs) {
      let info;
      try {
        info = await inspect(input, files, { statistics: false, checksum: true });
      } catch {
        continue; // not readable by GDAL: every profile would fail it alike
      }
      const sizes = {};
      for (const name of names) {
        const row = rows[name];
        let plan;
        try {
          plan = planCog(info, { ...DEFAULT_CONVERSION, profile: name, maxZError: name === 'lerc' ? 0 : 0 });
        } catch {
          row.unfit += 1;
          continue;
        }
        const output = path.join(out, `${path.basename(input, path.extname(input))}.${name}.tif`);
        const start = now();
        await run('gdal_translate', cogCommand(plan, input, output), {
          env: { ...process.env, GDAL_PAM_ENABLED: 'NO' },
        });
        const seconds = now() - start;
        const after = JSON.parse(execFileSync('gdalinfo', ['-json', '-checksum', output]).toString());
        const same = (b) => after.bands[b - 1]?.checksum === info.bands[b - 1]?.checksum;
        const all = info.bands.map((_, i) => i + 1);
        sizes[name] = Number(execFileSync('stat', ['-c', '%s', output]).toString());
        row.images += 1;
        row.seconds += seconds;
        if (all.every(same)) row.exact += 1;
        else if (plan.exactBands.length > 0 && plan.exactBands.every(same)) row.visible += 1;
        rmSync(output, { force: true });
      }
      for (const name of names) {
        if (sizes[name] === undefined || sizes.lzw === undefined) continue;
        rows[name].bytes += sizes[name];
        rows[name].lzwBytes += sizes.lzw;
      }
    }
    results.profiles.sets[set] = { inputs: inputs.length, rows };
    log(`profiles: ${set} done`);
  }
}

try {
  if (parts.has('profiles')) await profiles();
  if (parts.has('throughput')) await throughput();
  if (parts.has('scale')) await scale();
  if (parts.has('post')) await post();
  if (parts.has('idle')) await idle();
  if (parts.has('web')) await web();
  if (parts.has('groups')) await groups();
} finally {
  await stopServer();
}

// ---- report
results.machine = {
  cores,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  cpu: os.cpus()[0]?.model,
  node: process.version,
  gdal: execFileSync('gdal_translate', ['--version']).toString().trim(),
  s3: s3Kind === 'ceph' ? 'Ceph RGW on loopback' : 's3rver on loopback',
};
const fmt = (x, digits = 2) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));
const verdict = (ok) => (ok ? 'yes' : 'NO');
const lines = [
  `cogd benchmark — ${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, ${results.machine.cpu}, ${results.machine.gdal}, ${results.machine.s3}`,
  '',
  '| part | measured | target | met |',
  '| --- | --- | --- | --- |',
];
const t = results.throughput;
if (t !== undefined) {
  lines.push(
    `| 1 limit: gdal_translate on local files, xargs -P ${cores} | ${fmt(t.imagesPerSecond.limit)} images/s | baseline | |`,
  );
  lines.push(
    `| 2 shell: aws s3 cp + gdal_translate, xargs -P ${cores} | ${fmt(t.imagesPerSecond.shell)} images/s | baseline | |`,
  );
  lines.push(
    `| 3 cogd poll --wait (${t.workload.count} × ${t.workload.size}², median of ${t.workload.rounds}) | ${fmt(t.imagesPerSecond.cogd)} images/s = ${fmt(t.cogdToLimit)} × limit, ${fmt(t.cogdToShell)} × shell | ≥ 0.90 × limit, ≥ 1.5 × shell | ${verdict(t.cogdToLimit >= 0.9)}, ${verdict(t.cogdToShell >= 1.5)} |`,
  );
  lines.push(
    `|   cogd peak RSS (its spawner's); S3 requests per image | ${fmt(t.cogdPeakRssMb, 0)} MB (${fmt(t.spawnerPeakRssMb, 0)} MB); ${fmt(t.s3RequestsPerImage, 2)} | ≤ 150 MB | ${verdict(t.cogdPeakRssMb <= 150)} |`,
  );
  const m = t.cpuMsPerImage;
  lines.push(
    `|   CPU per image (median of ${t.workload.rounds}): cogd itself (with its spawner); GDAL; S3 server | ${fmt(m.cogd, 1)} ms; ${fmt(m.gdal, 0)} ms; ${m.s3Server === null ? '?' : `${fmt(m.s3Server, 1)} ms`} | cogd ≤ 15 ms | ${verdict(m.cogd <= 15)} |`,
  );
  const c = t.cpuSeconds;
  lines.push(
    `|   CPU seconds in that round: GDAL; cogd itself; S3 server; available (cores × wall) | ${fmt(c.gdal, 1)}; ${fmt(c.cogd, 1)}; ${c.s3Server === null ? '?' : fmt(c.s3Server, 1)}; ${fmt(c.available, 1)} | | |`,
  );
}
const sc = results.scale;
if (sc !== undefined) {
  lines.push(
    `| 4 scale: ${sc.rows} rows claimed → planned | ${fmt(sc.claimToPlannedSeconds)} s, peak RSS ${fmt(sc.peakRssMb, 0)} MB | ≤ 10 s, ≤ 300 MB | ${verdict(sc.claimToPlannedSeconds <= 10)}, ${verdict(sc.peakRssMb <= 300)} |`,
  );
  lines.push(`|   cogd status on that DB | ${fmt(sc.statusMs, 0)} ms | ≤ 300 ms | ${verdict(sc.statusMs <= 300)} |`);
  const ex = sc.execution;
  if (ex !== undefined) {
    lines.push(
      `|   ${ex.rows} rows claimed → planned → executed → posted (images missing; median of ${ex.rounds.length}) | ${fmt(ex.rowsPerSecond, 0)} rows/s, peak RSS ${fmt(ex.peakRssMb, 0)} MB | ≥ 1,000 rows/s, ≤ 300 MB | ${verdict(ex.rowsPerSecond >= 1000)}, ${verdict(ex.peakRssMb <= 300)} |`,
    );
    lines.push(
      `|   cogd status --jobs RUN --limit 100 on that run; --state failed, a middle page | ${fmt(ex.statusJobsMs, 0)} ms; ${fmt(ex.statusFailedMs, 0)} ms | ≤ 300 ms | ${verdict(ex.statusJobsMs <= 300 && ex.statusFailedMs <= 300)} |`,
    );
  }
  const mi = sc.million;
  if (mi !== undefined) {
    lines.push(
      `|   ${mi.rows} rows claimed → planned | ${fmt(mi.claimToPlannedSeconds, 1)} s, peak RSS ${fmt(mi.peakRssMb, 0)} MB, DB ${fmt(mi.dbMb, 0)} MB | measured | |`,
    );
    lines.push(
      `|   cogd status; cogd status --jobs --limit 100 on that DB | ${fmt(mi.statusMs, 0)} ms; ${fmt(mi.statusJobsMs, 0)} ms | measured | |`,
    );
  }
}
const p = results.post;
if (p !== undefined) {
  lines.push(
    `| 5 post: ${p.rows} rows vs ${p.outputs} outputs, cogd (${p.cogd.method}) | ${p.cogd.requests} requests, ${fmt(p.cogd.seconds)} s | ≤ rows/1000 + small constant LISTs | ${verdict(p.cogd.requests <= p.rows / 1000 + 30)} |`,
  );
  lines.push(
    `|   one HEAD per output, 16 at a time | ${p.headPerOutput.requests} requests, ${fmt(p.headPerOutput.seconds)} s | | |`,
  );
  lines.push(
    `|   reference tool (2 full listings per row; ${p.reference.sampleRows}-row sample, extrapolated) | ~${Math.round(p.reference.extrapolatedRequests)} requests, ~${Math.round(p.reference.extrapolatedSeconds)} s = ${fmt(p.speedupVsReference, 0)} × slower than cogd | | |`,
  );
}
const i = results.idle;
if (i !== undefined) {
  lines.push(
    `| 6 idle poll: ${i.keys} unrelated keys, literal prefix | ${fmt(i.requestsPerPoll)} requests per poll | 1 | ${verdict(i.requestsPerPoll <= 1)} |`,
  );
  lines.push(
    `|   RSS after ${i.polls} polls vs 10 | ${fmt(i.rssAfterAllMb, 1)} MB vs ${fmt(i.rssAfter10Mb, 1)} MB (${fmt(i.rssGrowth * 100, 1)}%) | ±10% | ${verdict(Math.abs(i.rssGrowth) <= 0.1)} |`,
  );
  lines.push(
    `|   V8 heap in use after ${i.polls} polls vs 10 | ${fmt(i.heapAfterAllMb, 1)} MB vs ${fmt(i.heapAfter10Mb, 1)} MB | | |`,
  );
}
const w = results.web;
if (w !== undefined) {
  for (const [name, value] of Object.entries(w.medianMs)) {
    lines.push(
      `| 8 web, ${w.rows}-row run: ${name} | ${fmt(value, 1)} ms (median of 21) | ≤ 100 ms | ${verdict(value <= 100)} |`,
    );
  }
}
const g = results.groups;
if (g !== undefined) {
  for (const [rowsPerJob, s] of Object.entries(g.settings)) {
    lines.push(
      `| 9 groups: ${g.images} tiny images ${g.executor === 'slurm' ? 'on Slurm (one node, loopback)' : `on the HTCondor simulator (${g.jobOverheadMs} ms per job)`}, --rows-per-job ${rowsPerJob} | ${s.jobs} jobs submitted, ${fmt(s.seconds, 1)} s (${fmt(s.imagesPerSecond, 1)} images/s) | ${rowsPerJob === '1' ? 'baseline' : 'fewer jobs, faster'} | ${rowsPerJob === '1' ? '' : verdict(s.jobs < g.settings[1].jobs && s.seconds < g.settings[1].seconds)} |`,
    );
  }
}
const pr = results.profiles;
if (pr !== undefined) {
  for (const [set, { inputs, rows }] of Object.entries(pr.sets)) {
    lines.push(
      '',
      `Profiles on the ${set} (${inputs} files; each converted by the profile's own gdal_translate command):`,
      '',
    );
    lines.push(
      '| profile | converted (unfit) | size vs lzw | time per image | lossless |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const [name, r] of Object.entries(rows)) {
      const lossless =
        r.images === 0
          ? 'n/a'
          : r.exact === r.images
            ? 'yes, pixel-identical'
            : r.exact + r.visible === r.images
              ? `visible pixels (${r.visible} with alpha)`
              : `no (${r.images - r.exact - r.visible} of ${r.images} differ)`;
      lines.push(
        `| ${name} | ${r.images} (${r.unfit}) | ${r.lzwBytes === 0 ? 'n/a' : `${fmt((100 * r.bytes) / r.lzwBytes, 0)}%`} | ${r.images === 0 ? 'n/a' : `${fmt((1000 * r.seconds) / r.images, 0)} ms`} | ${lossless} |`,
      );
    }
  }
}
console.log(lines.join('\n'));
const resultsDir = path.join(root, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
// A run of some parts only never overwrites a full run's results.
const allParts = ['throughput', 'scale', 'post', 'idle', 'profiles', 'web'].every((part) => parts.has(part));
const file = path.join(resultsDir, `${results.date.slice(0, 10)}${allParts ? '' : `-${[...parts].join('-')}`}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nresults: ${path.relative(root, file)}`);
rmSync(work, { recursive: true, force: true });
