/**
 * The HTCondor executor's rendering: the execute-node worker (bash + GDAL) must convert exactly as
 * the local executor does — checked by running it here on real images under several watch settings
 * and comparing its GDAL command lines, its preview VRT, its failures and its verdicts on the output
 * with the ones the rules modules give — and the submit description must be made of documented
 * submit commands and keep manifest keys out of its syntax.
 */
import { execa } from 'execa';
import pLimit from 'p-limit';
import { readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCog } from '../../src/convert/cog-check.js';
import { differences } from '../../src/convert/fidelity.js';
import { inspect } from '../../src/convert/gdal.js';
import { planPreview, previewCommand, previewVrt } from '../../src/convert/preview.js';
import {
  cogCommand,
  DEFAULT_CONVERSION,
  planCog,
  wantsChecksum,
  type ConcreteProfile,
} from '../../src/convert/profiles.js';
import { checkLimits, DEFAULT_LIMITS } from '../../src/convert/rules.js';
import { readTiffHeader } from '../../src/convert/tiff-header.js';
import { PermanentError } from '../../src/errors.js';
import { condorS3Url } from '../../src/executors/condor/executor.js';
import {
  classPlan,
  condorUnsafeKey,
  itemLine,
  renderSubmit,
  renderWorker,
  TEMPLATES_DIR,
  WORKER_FACTS,
  type ImageClass,
} from '../../src/executors/condor/render.js';
import { stacSubmitFields } from '../../src/executors/condor/stac.js';
import { StepFiles } from '../../src/log/index.js';
import type { ConversionSettings } from '../../src/types.js';
import { DOCUMENTED_COMMANDS } from '../fixtures/condor-sim/lib.mjs';
import { featureTiff, type Feature } from '../support/images.js';
import { makeTiff, ROOT, tempDir, validateCog } from '../support/helpers.js';

/** What the local executor does with an image (src/executors/local.ts, transform), up to converting. */
type LocalPlan =
  | { reason: string }
  | {
      cog: string[];
      preview: string[];
      vrt: string | undefined;
      exactBands: number[];
      lossless: boolean;
      alphaToMask: boolean;
      identical: string;
      /** What the STAC item's lineage names: the profile and its creation options. */
      plan: { profile: string; options: ReadonlyArray<readonly [string, string]> };
    };

async function localPlan(
  file: string,
  settings: ConversionSettings,
  dir: string,
): Promise<LocalPlan & { info?: Awaited<ReturnType<typeof inspect>> }> {
  try {
    const header = await readTiffHeader(file).catch(() => undefined);
    if (header !== undefined) checkLimits(header, DEFAULT_LIMITS);
    const statistics = header === undefined || header.bands.some((b) => b.type !== 'Byte');
    const info = await inspect(file, new StepFiles(dir, 'inspect'), { statistics, checksum: wantsChecksum(settings) });
    checkLimits(info, DEFAULT_LIMITS);
    const plan = planCog(info, settings);
    const look = planPreview(info, settings);
    const n = info.bands.length;
    return {
      info,
      cog: cogCommand(plan, 'input.tif', 'cog.tif'),
      preview: previewCommand(look, look.masked ? 'preview.vrt' : 'input.tif', 'preview.jpg'),
      vrt: look.masked ? previewVrt(look, info, 'input.tif') : undefined,
      exactBands: plan.exactBands,
      lossless: plan.lossless,
      alphaToMask: plan.profile === 'jpeg',
      plan: { profile: plan.profile, options: plan.options },
      identical:
        plan.exactBands.length === n
          ? ', pixels identical'
          : plan.exactBands.length > 0
            ? ', visible pixels identical'
            : '',
    };
  } catch (error) {
    if (error instanceof PermanentError) return { reason: error.message };
    throw error;
  }
}

/** Runs a rendered worker on a copy of `file` in a fresh sandbox, as HTCondor would. */
async function runWorker(
  worker: string,
  file: string,
  env: Record<string, string> = {},
): Promise<{ sandbox: string; exitCode: number; stderr: string; translates: string[][] }> {
  const sandbox = await tempDir('cogd-sandbox-');
  await copyFile(file, path.join(sandbox, 'input.tif'));
  const run = await execa('bash', [worker, 'input.tif'], { cwd: sandbox, reject: false, env });
  const stderr = run.stderr;
  // The worker logs each translate's arguments as bash words: bash reads them back.
  const lines = stderr
    .split('\n')
    .filter((l) => l.startsWith('cogd-worker: gdal_translate '))
    .map((l) => l.slice('cogd-worker: gdal_translate '.length));
  const translates = await Promise.all(
    lines.map(async (line) => {
      const { stdout } = await execa('bash', ['-c', 'eval "set -- $1"; printf "%s\\0" "$@"', 'words', line]);
      return stdout.split('\0').slice(0, -1);
    }),
  );
  return { sandbox, exitCode: run.exitCode ?? -1, stderr, translates };
}

/** A directory with a gdal_translate that adds `flags` when it writes a COG (put it first on PATH). */
async function fakeTranslate(dir: string, name: string, flags: string): Promise<string> {
  const bin = path.join(dir, `fake-${name}`);
  await mkdir(bin);
  const script = `#!/bin/sh\ncase " $* " in *" -of COG "*) exec /usr/bin/gdal_translate ${flags} "$@" ;; esac\nexec /usr/bin/gdal_translate "$@"\n`;
  await writeFile(path.join(bin, 'gdal_translate'), script, { mode: 0o755 });
  return bin;
}

/** The worker's last own line: the reason cogd reports. */
const lastWord = (stderr: string): string | undefined =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('cogd-worker: '))
    .at(-1);

/** A VRT with its source paths left out (the worker's may be relative to the VRT). */
const anySource = (vrt: string): string =>
  vrt.replace(/<SourceFilename relativeToVRT="[01]">[^<]*<\/SourceFilename>/g, '<SourceFilename/>');

const SETTINGS: Array<[string, Partial<ConversionSettings>]> = [
  ['default', {}],
  ['auto', { profile: 'auto' }],
  ['webp', { profile: 'webp' }],
  ['jpeg', { profile: 'jpeg' }],
  ['lerc, --max-z-error 0.5', { profile: 'lerc', maxZError: 0.5 }],
  ['zstd, --co LEVEL=15', { profile: 'zstd', creationOptions: ['LEVEL=15'] }],
  ['--preview-background #ff0000', { previewBackground: '#ff0000' }],
  ['--preview-max-size 100', { previewMaxSize: 100 }],
];

const FEATURES: Feature[] = ['bgr', 'rgb', 'rgba', 'u16-nodata', 'i16', 'f32-nodata', 'palette', 'bit1', 'rgb-nodata'];

describe('the condor worker', () => {
  // About 180 worker runs on real GDAL, each with its STAC facts (the default): over a minute on two idle
  // cores, several times that on a loaded machine, so a budget of its own.
  it(
    "applies the local executor's rules, generated from the same modules: plans, failures, gate and fidelity",
    {
      timeout: 600_000,
    },
    async () => {
      const dir = await tempDir();
      const inputs: Array<{ name: string; file: string }> = [];
      for (const kind of FEATURES) inputs.push({ name: kind, file: await featureTiff(dir, kind) });
      const cases = [
        { name: 'gray', spec: { bands: 1 } },
        { name: 'gray-alpha', spec: { bands: 2 } },
        { name: 'three', spec: { bands: 3 } },
        { name: 'four', spec: { bands: 4 } },
        { name: 'five', spec: { bands: 5 } },
        { name: 'u16', spec: { bands: 3, type: 'UInt16' as const } },
        { name: 'i16', spec: { bands: 1, type: 'Int16' as const } },
        { name: 'f32', spec: { bands: 1, type: 'Float32' as const } },
      ];
      for (const c of cases)
        inputs.push({ name: `makeTiff ${c.name}`, file: await makeTiff(path.join(dir, `${c.name}.tif`), c.spec) });
      // A type no preview can show: both refuse it with the same reason.
      const cint16 = path.join(dir, 'cint16.tif');
      await execa('gdal_translate', ['-q', '-ot', 'CInt16', path.join(dir, 'gray.tif'), cint16]);
      inputs.push({ name: 'cint16', file: cint16 });
      const corpus = process.env['COGD_CORPUS'];
      for (const name of corpus
        ? readdirSync(corpus).filter((f) => f.startsWith('palette-') || f.includes('uint16'))
        : []) {
        inputs.push({ name, file: path.join(corpus!, name) });
      }

      const outcomes: string[] = [];
      const limit = pLimit(2);
      for (const [label, overrides] of SETTINGS) {
        const settings: ConversionSettings = { ...DEFAULT_CONVERSION, ...overrides };
        const worker = path.join(dir, `worker-${outcomes.length}.sh`);
        const script = await renderWorker(settings);
        expect(script).not.toMatch(/@@/);
        await writeFile(worker, script, { mode: 0o755 });
        outcomes.push(
          ...(await Promise.all(
            inputs.map(({ name, file }) =>
              limit(async () => {
                const what = `${label} / ${name}`;
                const run = await runWorker(worker, file);
                const local = await localPlan(path.join(run.sandbox, 'input.tif'), settings, run.sandbox);
                if ('reason' in local) {
                  expect(run.exitCode, `${what}: ${run.stderr}`).toBe(2);
                  expect(lastWord(run.stderr), what).toBe(`cogd-worker: ${local.reason}`);
                  return 'refused';
                }
                // The same GDAL commands, argument for argument, and the same preview VRT.
                expect(run.translates[0], `${what}: ${run.stderr}`).toEqual(local.cog);
                expect(run.translates[1], `${what}: ${run.stderr}`).toEqual(local.preview);
                if (local.vrt !== undefined)
                  expect(anySource(await readFile(path.join(run.sandbox, 'preview.vrt'), 'utf8')), what).toBe(
                    anySource(local.vrt),
                  );
                // The same verdict on what came out: the gate, then fidelity in the same words.
                const cog = path.join(run.sandbox, 'cog.tif');
                const gate = await checkCog(cog);
                const output = await inspect(cog, new StepFiles(run.sandbox, 'output'), {
                  statistics: false,
                  checksum: local.lossless,
                });
                const changed = differences(local.info!, output, {
                  exactBands: local.exactBands,
                  alphaToMask: local.alphaToMask,
                });
                if (!gate.ok) {
                  expect(run.exitCode, `${what}: ${run.stderr}`).toBe(2);
                  expect(lastWord(run.stderr), what).toMatch(
                    /^cogd-worker: the output is not a cloud optimized GeoTIFF: /,
                  );
                  return 'not a COG';
                }
                if (changed.length > 0) {
                  expect(run.exitCode, `${what}: ${run.stderr}`).toBe(2);
                  expect(lastWord(run.stderr), what).toBe(
                    `cogd-worker: the COG does not keep the input's ${changed.join('; ')}`,
                  );
                  return 'unfaithful';
                }
                expect(run.exitCode, `${what}: ${run.stderr}`).toBe(0);
                expect(lastWord(run.stderr), what).toBe(
                  `cogd-worker: checked: a valid COG, faithful to the input${local.identical}`,
                );
                const validation = await validateCog(cog);
                expect(validation.ok, `${what}: ${validation.output}`).toBe(true);
                // The profile and image class it records for the STAC item's lineage give the
                // local executor's plan (the footprint and gdalinfo facts: condor-stac.test.ts).
                const facts = await readFile(path.join(run.sandbox, WORKER_FACTS.facts), 'utf8');
                const said = (key: string): string => new RegExp(`^${key} (.*)$`, 'm').exec(facts)?.[1] ?? '';
                const lineage = classPlan(settings, said('profile') as ConcreteProfile, said('class') as ImageClass);
                expect({ profile: lineage?.profile, options: lineage?.options }, what).toEqual(local.plan);
                return 'converted';
              }),
            ),
          )),
        );
      }
      // Most cases convert; the profiles refuse what they cannot hold (webp, jpeg, lerc on some images).
      expect(outcomes.filter((o) => o === 'converted').length).toBeGreaterThan(outcomes.length / 2);
      expect(outcomes).toContain('refused');
    },
  );

  it("fails when its output is no COG, with the gate's reason", async () => {
    const dir = await tempDir();
    const worker = path.join(dir, 'cog-worker.sh');
    await writeFile(worker, await renderWorker(DEFAULT_CONVERSION), { mode: 0o755 });
    // A gdal_translate that writes a striped GeoTIFF without overviews when asked for a COG.
    const env = { PATH: `${path.join(ROOT, 'test/fixtures/noncog-gdal')}:${process.env['PATH'] ?? ''}` };
    const run = await runWorker(worker, await featureTiff(dir, 'rgb'), env);
    expect(run.exitCode, run.stderr).toBe(2);
    expect(lastWord(run.stderr)).toBe(
      'cogd-worker: the output is not a cloud optimized GeoTIFF: the main image (600 x 400) is not tiled (it is stored in strips); ' +
        'the image is 600 x 400 but has no overviews; GDAL does not read it as a COG (its IMAGE_STRUCTURE metadata has no LAYOUT)',
    );
  });

  it("fails when its COG does not keep the input, naming what was lost in the local executor's words", async () => {
    const dir = await tempDir();
    const worker = path.join(dir, 'cog-worker.sh');
    await writeFile(worker, await renderWorker(DEFAULT_CONVERSION), { mode: 0o755 });
    // A gdal_translate that drops the nodata value.
    const dropsNodata = await fakeTranslate(dir, 'drops-nodata', '-a_nodata none');
    const run = await runWorker(worker, await featureTiff(dir, 'u16-nodata'), {
      PATH: `${dropsNodata}:${process.env['PATH'] ?? ''}`,
    });
    expect(run.exitCode, run.stderr).toBe(2);
    expect(lastWord(run.stderr)).toBe("cogd-worker: the COG does not keep the input's band 1 nodata 0 became none");

    // Other losses, each said as differences() says it of the same files.
    const rgb = await featureTiff(dir, 'rgb');
    const losses: Array<[string, string]> = [
      ['crs', '-a_srs EPSG:4326'],
      ['geotransform', '-a_ullr 0 400 600 0'],
      ['gcps', '-gcp 0 0 500000 4500000 -gcp 600 0 506000 4500000 -gcp 0 400 500000 4496000'],
      ['bands', '-b 1 -b 2'],
      ['pixels', '-scale 0 255 255 0'],
      ['colour', '-colorinterp_1 gray'],
      ['alpha', '-b 1 -b 2 -b 3 -b 3 -colorinterp_4 alpha'],
    ];
    for (const [name, flags] of losses) {
      const bin = await fakeTranslate(dir, name, flags);
      const lossy = await runWorker(worker, rgb, { PATH: `${bin}:${process.env['PATH'] ?? ''}` });
      const files = new StepFiles(lossy.sandbox, 'check');
      const [input, output] = [
        await inspect(path.join(lossy.sandbox, 'input.tif'), files, { statistics: false, checksum: true }),
        await inspect(path.join(lossy.sandbox, 'cog.tif'), files, { statistics: false, checksum: true }),
      ];
      const changed = differences(input, output, { exactBands: [1, 2, 3] });
      expect(changed.length, name).toBeGreaterThan(0);
      expect(lossy.exitCode, `${name}: ${lossy.stderr}`).toBe(2);
      expect(lastWord(lossy.stderr), name).toBe(`cogd-worker: the COG does not keep the input's ${changed.join('; ')}`);
    }
  });

  it('keeps --co values data, never shell syntax', async () => {
    const value = `a b'c"$(touch pwned)\`x\`;\\`;
    const script = await renderWorker({ ...DEFAULT_CONVERSION, creationOptions: [`NOTE=${value}`] });
    const dir = await tempDir();
    const { stdout } = await execa(
      'bash',
      ['-c', `eval "$(sed -n '/^cog_options() {/,/^}/p')"; cog_options lzw/integer; printf '%s\\n' "\${cog[@]}"`],
      { input: script, cwd: dir },
    );
    expect(stdout.split('\n')).toContain(`NOTE=${value}`);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fails with a reason on a file that is not a TIFF', async () => {
    const sandbox = await tempDir('cogd-sandbox-');
    const worker = path.join(sandbox, 'cog-worker.sh');
    await writeFile(worker, await renderWorker(DEFAULT_CONVERSION), { mode: 0o755 });
    await writeFile(path.join(sandbox, 'input.tif'), 'not an image\n');
    const run = await execa('bash', [worker, 'input.tif'], { cwd: sandbox, reject: false });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/cogd-worker: not a readable TIFF: input\.tif/);
  });
});

// The submit commands of HTCondor's condor_submit manual page that the simulator accepts (one list), and queue.
const DOCUMENTED = new Set([...DOCUMENTED_COMMANDS, 'queue']);

const FIELDS = {
  container_image: 'docker://ghcr.io/osgeo/gdal:ubuntu-small-3.6.4',
  worker: '/home/u/cogd/logs/run-20261121-101500/cog-worker.sh',
  access_key_file: '/home/u/.s3/access.key',
  secret_key_file: '/home/u/.s3/secret.key',
  input_url: 's3://s3.example.org/raw-imagery',
  output_url: 's3://s3.example.org/cogs',
  run_dir: '/home/u/cogd/logs/run-20261121-101500',
  event_log: '/home/u/cogd/logs/run-20261121-101500/condor.log',
  batch_name: 'COG-Pipeline-DAG-*raw.csv',
  request_cpus: '1',
  request_memory: '1GB',
  request_disk: '2GB',
  job_timeout: '1800',
  max_holds: '5',
  release_base: '60',
  release_splay: '60',
  items_file: '/home/u/cogd/logs/run-20261121-101500/condor/batch-1.items',
  submit_notes: 'cogd run 7 batch 1',
  ...stacSubmitFields('/home/u/cogd/logs/run-20261121-101500', true),
};

describe('the submit description', () => {
  it('renders from the template, with documented commands only', async () => {
    const template = await readFile(`${TEMPLATES_DIR}cog.sub`, 'utf8');
    const rendered = renderSubmit(template, FIELDS);
    expect(rendered).not.toMatch(/\{\{/);
    const commands = rendered
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'))
      .map((l) => /^([A-Za-z_+.]+)/.exec(l)![1]!);
    expect(commands.filter((c) => !DOCUMENTED.has(c))).toEqual([]);
    expect(rendered).toMatch(
      /^transfer_output_remaps {2}= "cog\.tif = s3:\/\/s3\.example\.org\/cogs\/\$\(cog_key\); preview\.jpg = s3:\/\/s3\.example\.org\/cogs\/\$\(preview_key\); cog\.gdalinfo\.json = \/home\/u\/cogd\/logs\/run-20261121-101500\/condor\/facts\/\$\(log_name\)\.gdalinfo\.json; /m,
    );
    expect(rendered).toMatchSnapshot();
    // Without STAC items, the outputs alone.
    const plain = renderSubmit(template, { ...FIELDS, ...stacSubmitFields(FIELDS.run_dir, false) });
    expect(plain).toMatch(/^transfer_output_files {3}= cog\.tif, preview\.jpg$/m);
    expect(plain).toMatch(
      /^transfer_output_remaps {2}= "cog\.tif = s3:\/\/s3\.example\.org\/cogs\/\$\(cog_key\); preview\.jpg = s3:\/\/s3\.example\.org\/cogs\/\$\(preview_key\)"$/m,
    );
    expect(rendered).toMatch(
      /^queue input_key, cog_key, preview_key, log_name from \/home\/u\/cogd\/logs\/run-20261121-101500\/condor\/batch-1\.items$/m,
    );
    expect(rendered).toMatch(/^batch_name {14}= COG-Pipeline-DAG-\*raw\.csv$/m);
    const fixtures = process.env['COGD_HTCONDOR_FIXTURES'];
    if (fixtures !== undefined && fixtures !== '') {
      const samples = readdirSync(fixtures)
        .filter((f) => f.endsWith('.sub'))
        .map((f) => readFileSync(path.join(fixtures, f), 'utf8'))
        .join('\n');
      for (const c of [
        'universe',
        'container_image',
        'executable',
        'should_transfer_files',
        'when_to_transfer_output',
        'aws_access_key_id_file',
        'aws_secret_access_key_file',
        'transfer_input_files',
        'transfer_output_remaps',
        'request_cpus',
        'request_memory',
        'request_disk',
        'periodic_release',
        'periodic_remove',
      ]) {
        expect(samples, c).toMatch(new RegExp(`^${c}\\s*=`, 'm'));
      }
    }
  });

  it('refuses values that could add a command, and unknown fields', async () => {
    const template = await readFile(`${TEMPLATES_DIR}cog.sub`, 'utf8');
    expect(() => renderSubmit(template, { ...FIELDS, batch_name: 'x\nexecutable = /bin/evil' })).toThrow(
      /may not contain a newline/,
    );
    expect(() => renderSubmit(template, { ...FIELDS, input_url: 's3://h/b" ; x="' })).toThrow(/double quote/);
    const missing: Record<string, string> = { ...FIELDS };
    delete missing['batch_name'];
    expect(() => renderSubmit(template, missing)).toThrow(/unknown field \{\{batch_name\}\}/);
  });

  it("names S3 objects the way HTCondor's S3 transfer reads them", () => {
    expect(condorS3Url({ endpoint: 'https://s3.example.org', region: 'us-east-1' }, 'cogs')).toBe(
      's3://s3.example.org/cogs',
    );
    expect(condorS3Url({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' }, 'raw')).toBe(
      's3://127.0.0.1:7480/raw',
    );
    // AWS itself: the region-specific virtual-host form (see submit-s3-transfer-aws-keys.sub).
    expect(condorS3Url({ region: 'eu-west-1' }, 'raw')).toBe('s3://raw.s3.eu-west-1.amazonaws.com');
    const fixtures = process.env['COGD_HTCONDOR_FIXTURES'];
    if (fixtures !== undefined && fixtures !== '') {
      const sample = readFileSync(path.join(fixtures, 'submit-s3-transfer-aws-keys.sub'), 'utf8');
      expect(sample).toContain('s3://<bucket-name>.s3.<region>.amazonaws.com/<key-or-file>');
    } else {
      console.log('COGD_HTCONDOR_FIXTURES is unset: the S3 URL form is not compared with the genuine sample');
    }
  });

  it('keeps manifest keys out of the submit syntax', () => {
    for (const key of ['a,b.tif', 'a b.tif', 'a"b.tif', 'x$(y).tif', 'a=b.tif', 'a;b.tif', 'line\nbreak.tif']) {
      expect(condorUnsafeKey(key), key).toMatch(/HTCondor item data cannot carry safely/);
    }
    expect(condorUnsafeKey('imagery/2026/tile_01-02+v3.tif')).toBeUndefined();
    expect(itemLine({ inputKey: 'a/x.tif', cogKey: 'a/x.tif', previewKey: 'a/x.jpg', logName: 'x' })).toBe(
      'a/x.tif, a/x.tif, a/x.jpg, x',
    );
    expect(() => itemLine({ inputKey: 'a,x.tif', cogKey: 'a,x.tif', previewKey: 'a,x.jpg', logName: 'x' })).toThrow(
      /cannot carry safely/,
    );
  });
});
