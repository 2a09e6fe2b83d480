/**
 * The HTCondor worker's STAC facts: what it leaves beside its outputs must give cogd the item the
 * local executor makes of the same COG — the same gdalinfo facts, the same outline through
 * gdaltransform (so the same footprint), the same decision whether the image is georeferenced, the
 * same lineage — and the sizes and SHA-256 of the bytes HTCondor then uploads. cogd refuses facts
 * that are missing, incomplete, or describe other objects than the bucket holds.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspect, inspectRaw } from '../../src/convert/gdal.js';
import { DEFAULT_CONVERSION, planCog } from '../../src/convert/profiles.js';
import {
  classPlan,
  renderWorker,
  TEMPLATES_DIR,
  WORKER_FACTS,
  type ImageClass,
} from '../../src/executors/condor/render.js';
import { checkBringsFacts, factsFiles, publishItem, stacSubmitFields } from '../../src/executors/condor/stac.js';
import type { JobSpec } from '../../src/executors/types.js';
import { isPermanent } from '../../src/errors.js';
import { StepFiles } from '../../src/log/index.js';
import { footprint, footprintOfRing, outline, parseTransformed } from '../../src/stac/footprint.js';
import { rasterFacts } from '../../src/stac/gdalinfo.js';
import type { StacItem } from '../../src/stac/types.js';
import type { ConversionSettings } from '../../src/types.js';
import { featureTiff } from '../support/images.js';
import { tempDir } from '../support/helpers.js';

const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** Runs the worker rendered for `settings` on a copy of `file` in a fresh sandbox. */
async function runWorker(file: string, settings: ConversionSettings = DEFAULT_CONVERSION): Promise<string> {
  const sandbox = await tempDir('cogd-sandbox-');
  await writeFile(path.join(sandbox, 'worker.sh'), await renderWorker(settings));
  await copyFile(file, path.join(sandbox, 'input.tif'));
  const run = await execa('bash', ['worker.sh', 'input.tif'], { cwd: sandbox, reject: false });
  expect(run.exitCode, run.stderr).toBe(0);
  return sandbox;
}

/** Images placed on the Earth every way rasterFacts tells apart, and not at all. */
async function images(dir: string): Promise<Array<[string, string]>> {
  const plain = path.join(dir, 'plain.tif');
  await execa('gdal_create', ['-of', 'GTiff', '-outsize', '60', '40', '-bands', '1', '-burn', '7', plain]);
  const derived = async (name: string, args: string[]): Promise<[string, string]> => {
    const file = path.join(dir, `${name}.tif`);
    await execa('gdal_translate', ['-q', ...args, plain, file]);
    return [name, file];
  };
  const gcps = ['-gcp', '0', '0', '500000', '4500000', '-gcp', '60', '0', '506000', '4500000'];
  gcps.push('-gcp', '0', '40', '500000', '4496000');
  return [
    ['utm', await featureTiff(dir, 'u16-nodata')],
    ['rgb', await featureTiff(dir, 'rgb')],
    ['none', plain],
    await derived('gcps with a CRS', ['-a_srs', 'EPSG:32618', ...gcps]),
    await derived('gcps without a CRS', gcps),
    await derived('geotransform without a CRS', ['-a_ullr', '0', '40', '60', '0']),
    await derived('across the antimeridian', ['-a_srs', 'EPSG:4326', '-a_ullr', '179.5', '10', '180.5', '9']),
  ];
}

describe("the condor worker's STAC facts", () => {
  it('give the footprint, raster facts and lineage the local executor reads of the same COG', async () => {
    const dir = await tempDir();
    for (const [name, file] of await images(dir)) {
      const sandbox = await runWorker(file);
      const cog = path.join(sandbox, 'cog.tif');
      const files = new StepFiles(sandbox, 'local');
      const local = await inspectRaw(cog, files, { statistics: true });
      const worker = await readFile(path.join(sandbox, WORKER_FACTS.gdalinfo), 'utf8');
      const raster = rasterFacts(local.json);
      expect(rasterFacts(worker), name).toEqual(raster);
      // Georeferenced alike, and the same footprint.
      const transformed = await readFile(path.join(sandbox, WORKER_FACTS.footprint), 'utf8');
      expect(transformed === '', name).toBe(raster.georeferencing === null);
      if (raster.georeferencing !== null) {
        const where = await footprint(cog, local.json, { env: { GDAL_PAM_ENABLED: 'NO' } });
        expect(footprintOfRing(parseTransformed(transformed)), name).toEqual(where);
      }
      // The sums of the bytes HTCondor will upload; the plan the lineage names.
      const facts = await readFile(path.join(sandbox, WORKER_FACTS.facts), 'utf8');
      for (const out of ['cog.tif', 'preview.jpg']) {
        const bytes = (await readFile(path.join(sandbox, out))).length;
        expect(facts, `${name}: ${out}`).toContain(`file ${out} ${bytes} ${await sha256(path.join(sandbox, out))}\n`);
      }
      const said = (key: string): string => new RegExp(`^${key} (.*)$`, 'm').exec(facts)?.[1] ?? '';
      const plan = planCog(await inspect(file, files, { statistics: true }), DEFAULT_CONVERSION);
      const followed = classPlan(DEFAULT_CONVERSION, plan.profile, said('class') as ImageClass);
      expect(said('profile'), name).toBe(plan.profile);
      expect(followed?.options, name).toEqual(plan.options);
      expect(said('gdal')).toBe((await execa('gdal_translate', ['--version'])).stdout.trim());
      expect(Date.now() - Date.parse(said('converted'))).toBeLessThan(60_000);
    }
  });

  it("draws outline()'s points, number for number", async () => {
    const script = await renderWorker(DEFAULT_CONVERSION);
    for (const [w, h] of [
      [1, 1],
      [7, 3],
      [600, 400],
      [10980, 10980],
      [3, 100001],
    ] as const) {
      const sandbox = await tempDir();
      await writeFile(path.join(sandbox, 'worker.sh'), script);
      // The worker's settings line, its number formatting and outline(), and nothing else of it.
      const pick = "/^stac=/p; /^JS_NUMBER='/,/^'$/p; /^outline() {/,/^}/p";
      const drawn = await execa('bash', ['-c', 'eval "$(sed -n "$1" worker.sh)"; outline', 'bash', pick], {
        cwd: sandbox,
        input: `size ${w} ${h}\n`,
      });
      expect(drawn.stdout, `${w} x ${h}`).toBe(
        outline(w, h)
          .map(([x, y]) => `${x} ${y}`)
          .join('\n'),
      );
    }
  });

  it('are not made with --no-stac', async () => {
    const dir = await tempDir();
    const sandbox = await runWorker(await featureTiff(dir, 'rgb'), { ...DEFAULT_CONVERSION, stac: false });
    expect((await readdir(sandbox)).sort()).toEqual(['cog.tif', 'input.tif', 'preview.jpg', 'worker.sh']);
  });
});

describe('an item from the facts', () => {
  /** A job of run dir `runDir` whose facts come from a worker run; its objects as `sizes` says. */
  async function setup(sizes?: [number, number]): Promise<{ job: JobSpec; runDir: string; puts: string[] }> {
    const dir = await tempDir();
    const sandbox = await runWorker(await featureTiff(dir, 'u16-nodata'));
    const runDir = path.join(dir, 'run');
    await mkdir(path.join(runDir, 'condor', 'facts'), { recursive: true });
    const files = factsFiles(runDir, 'scene');
    for (const name of ['gdalinfo', 'footprint', 'facts'] as const)
      await copyFile(path.join(sandbox, WORKER_FACTS[name]), files[name]);
    const real = [
      (await readFile(path.join(sandbox, 'cog.tif'))).length,
      (await readFile(path.join(sandbox, 'preview.jpg'))).length,
    ];
    const [cogSize, previewSize] = sizes ?? real;
    const puts: string[] = [];
    const storage = {
      head: (_bucket: string, key: string) =>
        Promise.resolve({ key, etag: '', lastModified: '', size: key.endsWith('.tif') ? cogSize : previewSize }),
      put: (_bucket: string, _key: string, body: string) => Promise.resolve(void puts.push(body)),
    };
    const job = {
      jobId: 1,
      runId: 1,
      cogKey: 'utm/scene.tif',
      previewKey: 'utm/scene.jpg',
      outputBucket: 'cogs',
      conversion: DEFAULT_CONVERSION,
      storage,
      files: new StepFiles(runDir, 'scene'),
    } as unknown as JobSpec;
    return { job, runDir, puts };
  }

  it('is the item buildItem makes, with the checksums the worker recorded', async () => {
    const { job, runDir, puts } = await setup();
    const output = await publishItem(job, runDir);
    const item = JSON.parse(puts[0]!) as StacItem;
    expect(output.item).toEqual({ key: 'utm/scene.json', bbox: item.bbox, datetime: item.properties.datetime });
    const facts = await readFile(factsFiles(runDir, 'scene').facts, 'utf8');
    const sum = / (\w{64})$/m.exec(facts.split('\n').find((l) => l.startsWith('file cog.tif'))!)?.[1];
    expect(item.assets['data']?.['file:checksum']).toBe(`1220${sum}`);
    expect(item.properties['proj:epsg']).toBe(32618);
    expect(item.properties['processing:lineage']).toMatch(/profile lzw, creation options COMPRESS=LZW/);
  });

  it('is refused when a fact is missing or malformed, or the objects are not what the worker made', async () => {
    const { job, runDir } = await setup([5, 7]);
    await expect(publishItem(job, runDir)).rejects.toThrow(/utm\/scene\.tif holds 5 bytes, the worker made \d+ bytes/);
    const ok = await setup();
    const files = factsFiles(ok.runDir, 'scene');
    await writeFile(files.footprint, '');
    await expect(publishItem(ok.job, ok.runDir)).rejects.toThrow(/is empty, but the COG is georeferenced/);
    await writeFile(files.footprint, '-75 40\n');
    await expect(publishItem(ok.job, ok.runDir)).rejects.toThrow(/has 1 points of the 81 of the outline/);
    await writeFile(files.gdalinfo, '{"truncated": ');
    await expect(publishItem(ok.job, ok.runDir)).rejects.toThrow(/gdalinfo\.json is no gdalinfo -json document/);
    await writeFile(files.facts, 'profile lzw\n');
    await expect(publishItem(ok.job, ok.runDir)).rejects.toThrow(/facts\.txt lack the profile/);
    await rm(files.facts);
    await expect(publishItem(ok.job, ok.runDir)).rejects.toThrow(/facts\.txt cannot be read/);
    expect(ok.puts).toEqual([]);
  });
});

describe('a submit template', () => {
  it('must bring the facts back when the run writes items; a row fails at once, saying what to add', async () => {
    const shipped = await readFile(path.join(TEMPLATES_DIR, 'cog.sub'), 'utf8');
    const on = stacSubmitFields('/home/u/cogd/logs/run-1', true);
    const off = stacSubmitFields('/home/u/cogd/logs/run-1', false);
    expect(() => checkBringsFacts(shipped, on)).not.toThrow();
    // An older copy of the template, made before items existed.
    const old = shipped.replace('{{stac_outputs}}', '').replace('{{stac_remaps}}', '');
    expect(old).not.toBe(shipped);
    expect(() => checkBringsFacts(old, off)).not.toThrow();
    let thrown: unknown;
    try {
      checkBringsFacts(old, on);
    } catch (error) {
      thrown = error;
    }
    expect(isPermanent(thrown)).toBe(true);
    expect(String(thrown)).toMatch(/does not bring the STAC facts back/);
    expect(() => checkBringsFacts(shipped.replace('{{stac_remaps}}', ''), on)).toThrow(/STAC facts/);
    // A run directory transfer_output_remaps cannot carry is refused for good, too.
    expect(() => stacSubmitFields('/home/my files/logs/run-1', true)).toThrow(/white space/);
    expect(stacSubmitFields('/home/my files/logs/run-1', false)).toEqual(off);
  });
});
