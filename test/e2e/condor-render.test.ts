/**
 * The HTCondor executor's rendering: the execute-node worker (bash + GDAL) must convert exactly as
 * the local executor does — checked by running it here on real images and comparing its GDAL
 * command lines with the ones the rules module gives — and the submit description must be made of
 * documented submit commands and keep manifest keys out of its syntax.
 */
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspect } from '../../src/convert/gdal.js';
import { jpegArgs, needsStatistics } from '../../src/convert/rules.js';
import { condorS3Url } from '../../src/executors/condor/executor.js';
import { condorUnsafeKey, itemLine, renderSubmit, renderWorker, TEMPLATES_DIR } from '../../src/executors/condor/render.js';
import { StepFiles } from '../../src/log/index.js';
import { DOCUMENTED_COMMANDS } from '../fixtures/condor-sim/lib.mjs';
import { gdalinfo, makeTiff, tempDir } from '../support/helpers.js';

/** The preview command the local executor would run for `file`, with input/output stripped. */
async function localPreviewArgs(file: string, dir: string): Promise<string[]> {
  const files = new StepFiles(dir, 'inspect');
  let info = await inspect(file, files, { statistics: false });
  if (needsStatistics(info)) info = await inspect(file, files, { statistics: true });
  return jpegArgs(info, 'IN', 'OUT').filter((a) => a !== 'IN' && a !== 'OUT');
}

/** Equal, with numbers compared to 1e-9 relative (bash prints %.17g, JavaScript shortest round-trip). */
function sameArgs(actual: string[], expected: string[]): boolean {
  return actual.length === expected.length && actual.every((a, i) => {
    const e = expected[i]!;
    if (a === e) return true;
    const [x, y] = [Number(a), Number(e)];
    return Number.isFinite(x) && Number.isFinite(y) && Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y));
  });
}

describe('the condor worker', () => {
  it('applies the local executor\'s rules, generated from the same module', async () => {
    const dir = await tempDir();
    const worker = path.join(dir, 'cog-worker.sh');
    await writeFile(worker, await renderWorker(), { mode: 0o755 });
    expect(await readFile(worker, 'utf8')).not.toMatch(/@@/);
    const cases = [
      { name: 'gray', spec: { bands: 1 } },
      { name: 'gray-alpha', spec: { bands: 2 } },
      { name: 'rgb', spec: { bands: 3 } },
      { name: 'rgba', spec: { bands: 4 } },
      { name: 'five', spec: { bands: 5 } },
      { name: 'u16', spec: { bands: 3, type: 'UInt16' as const } },
      { name: 'i16', spec: { bands: 1, type: 'Int16' as const } },
      { name: 'f32', spec: { bands: 1, type: 'Float32' as const } },
    ];
    const inputs = await Promise.all(cases.map(async (c) => ({ name: c.name, file: await makeTiff(path.join(dir, `${c.name}.tif`), c.spec) })));
    const corpus = process.env['COGD_CORPUS'];
    for (const name of corpus ? readdirSync(corpus).filter((f) => f.startsWith('palette-') || f.includes('uint16')) : []) {
      inputs.push({ name, file: path.join(corpus!, name) });
    }
    for (const { name, file } of inputs) {
      const sandbox = await tempDir('cogd-sandbox-');
      await copyFile(file, path.join(sandbox, 'input.tif'));
      const run = await execa('bash', [worker, 'input.tif'], { cwd: sandbox, reject: false });
      expect(run.exitCode, `${name}: ${run.stderr}`).toBe(0);
      const jpegLine = run.stderr.split('\n').find((l) => l.includes('-of JPEG'))!;
      const workerArgs = jpegLine.replace(/^cogd-worker: gdal_translate /, '').split(' ').filter((a) => a !== 'input.tif' && a !== 'preview.jpg');
      const expected = await localPreviewArgs(path.join(sandbox, 'input.tif'), sandbox);
      expect(sameArgs(workerArgs, expected), `${name}: worker ${workerArgs.join(' ')} / local ${expected.join(' ')}`).toBe(true);
      expect(run.stderr).toContain('gdal_translate -q -of COG -co COMPRESS=LZW input.tif cog.tif');
      expect((await gdalinfo(path.join(sandbox, 'cog.tif'))).metadata?.['IMAGE_STRUCTURE']?.['LAYOUT'], name).toBe('COG');
      expect([1, 3], name).toContain((await gdalinfo(path.join(sandbox, 'preview.jpg'))).bands.length);
    }
  });

  it('fails with a reason on a file that is not a TIFF', async () => {
    const sandbox = await tempDir('cogd-sandbox-');
    const worker = path.join(sandbox, 'cog-worker.sh');
    await writeFile(worker, await renderWorker(), { mode: 0o755 });
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
};

describe('the submit description', () => {
  it('renders from the template, with documented commands only', async () => {
    const template = await readFile(`${TEMPLATES_DIR}cog.sub`, 'utf8');
    const rendered = renderSubmit(template, FIELDS);
    expect(rendered).not.toMatch(/\{\{/);
    const commands = rendered.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => /^([A-Za-z_+.]+)/.exec(l)![1]!);
    expect(commands.filter((c) => !DOCUMENTED.has(c))).toEqual([]);
    expect(rendered).toMatch(/^transfer_output_remaps {2}= "cog\.tif = s3:\/\/s3\.example\.org\/cogs\/\$\(cog_key\); preview\.jpg = s3:\/\/s3\.example\.org\/cogs\/\$\(preview_key\)"$/m);
    expect(rendered).toMatchSnapshot();
    expect(rendered).toMatch(/^queue input_key, cog_key, preview_key, log_name from \/home\/u\/cogd\/logs\/run-20261121-101500\/condor\/batch-1\.items$/m);
    expect(rendered).toMatch(/^batch_name {14}= COG-Pipeline-DAG-\*raw\.csv$/m);
    const fixtures = process.env['COGD_HTCONDOR_FIXTURES'];
    if (fixtures !== undefined && fixtures !== '') {
      const samples = readdirSync(fixtures).filter((f) => f.endsWith('.sub')).map((f) => readFileSync(path.join(fixtures, f), 'utf8')).join('\n');
      for (const c of ['universe', 'container_image', 'executable', 'should_transfer_files', 'when_to_transfer_output', 'aws_access_key_id_file', 'aws_secret_access_key_file', 'transfer_input_files', 'transfer_output_remaps', 'request_cpus', 'request_memory', 'request_disk', 'periodic_release', 'periodic_remove']) {
        expect(samples, c).toMatch(new RegExp(`^${c}\\s*=`, 'm'));
      }
    }
  });

  it('refuses values that could add a command, and unknown fields', async () => {
    const template = await readFile(`${TEMPLATES_DIR}cog.sub`, 'utf8');
    expect(() => renderSubmit(template, { ...FIELDS, batch_name: 'x\nexecutable = /bin/evil' })).toThrow(/may not contain a newline/);
    expect(() => renderSubmit(template, { ...FIELDS, input_url: 's3://h/b" ; x="' })).toThrow(/double quote/);
    const missing: Record<string, string> = { ...FIELDS };
    delete missing['batch_name'];
    expect(() => renderSubmit(template, missing)).toThrow(/unknown field \{\{batch_name\}\}/);
  });

  it('names S3 objects the way HTCondor\'s S3 transfer reads them', () => {
    expect(condorS3Url({ endpoint: 'https://s3.example.org', region: 'us-east-1' }, 'cogs')).toBe('s3://s3.example.org/cogs');
    expect(condorS3Url({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' }, 'raw')).toBe('s3://127.0.0.1:7480/raw');
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
    expect(itemLine({ inputKey: 'a/x.tif', cogKey: 'a/x.tif', previewKey: 'a/x.jpg', logName: 'x' })).toBe('a/x.tif, a/x.tif, a/x.jpg, x');
    expect(() => itemLine({ inputKey: 'a,x.tif', cogKey: 'a,x.tif', previewKey: 'a,x.jpg', logName: 'x' })).toThrow(/cannot carry safely/);
  });
});
