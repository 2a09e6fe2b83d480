/** Helpers of the Slurm suites: staging manifests, reading results, asking the test clusters. */
import { execa } from 'execa';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { homeId } from '../../src/daemon/home.js';
import { getText, keys, makeTiff, put, putFile } from './helpers.js';

export const SLURM = ['--executor', 'slurm', '--slurm-poll', '2', '--retries', '1'];

/** What cogd and the Slurm client commands need to reach one of the test clusters. */
export const envOf = (slurmConf: string): Record<string, string> => ({ SLURM_CONF: slurmConf });

/** Images and a manifest with rows that convert and rows that fail for different reasons. */
export async function stage(home: string, buckets: { input: string; output: string }): Promise<string[]> {
  await putFile(buckets.input, 'img/gray.tif', await makeTiff(path.join(home, 'gray.tif'), { bands: 1 }));
  await putFile(buckets.input, 'img/rgb.tif', await makeTiff(path.join(home, 'rgb.tif'), { bands: 3 }));
  await putFile(buckets.input, 'img/rgba.tif', await makeTiff(path.join(home, 'rgba.tif'), { bands: 4 }));
  await putFile(buckets.input, 'img/u16.tif', await makeTiff(path.join(home, 'u16.tif'), { bands: 3, type: 'UInt16' }));
  await put(buckets.input, 'img/notatiff.tif', 'this is not an image\n');
  const rows = [
    'img/gray.tif,1',
    'img/rgb.tif,3',
    'img/notatiff.tif,1',
    'img/rgba.tif,4',
    'img/missing.tif,1',
    'img/u16.tif,3',
    'img/bad.tif,many',
  ];
  await put(buckets.input, 'q/m-raw.csv', `${rows.join('\n')}\n`);
  return rows;
}

/** One gray image per name and a manifest `q/m-raw.csv` of them; returns its rows. */
export async function stageGray(
  home: string,
  buckets: { input: string; output: string },
  names: string[],
): Promise<string[]> {
  const rows: string[] = [];
  for (const name of names) {
    await putFile(buckets.input, `img/${name}.tif`, await makeTiff(path.join(home, `${name}.tif`), { bands: 1 }));
    rows.push(`img/${name}.tif,1`);
  }
  await put(buckets.input, 'q/m-raw.csv', `${rows.join('\n')}\n`);
  return rows;
}

/** The processed and failed CSVs of the run (verbatim rows, sorted) and the errors CSV's lines, sorted. */
export async function results(bucket: string): Promise<{ processed: string[]; failed: string[]; errors: string[] }> {
  const all = await keys(bucket, 'q/');
  const text = async (kind: string): Promise<string> => {
    const key = all.find((k) => k.includes(`-${kind}-`));
    return key === undefined ? '' : getText(bucket, key);
  };
  const rows = (t: string): string[] => t.split('\n').filter(Boolean).sort();
  return {
    processed: rows(await text('processed')),
    failed: rows(await text('failed')),
    errors: rows(await text('errors')),
  };
}

export async function runDirOf(home: string): Promise<string> {
  const dir = (await readdir(path.join(home, 'logs'))).find((d) => d.startsWith('run-'));
  if (dir === undefined) throw new Error(`no run directory in ${home}/logs`);
  return path.join(home, 'logs', dir);
}

/** The job names of every batch the home's run 1 submitted (from its batch files). */
export async function jobNames(home: string): Promise<string[]> {
  const files = await readdir(path.join(await runDirOf(home), 'slurm'));
  return files
    .map((f) => /^batch-(\d+)\.json$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .map((n) => `cogd-${homeId(home)}-r1-b${n}`);
}

export interface AcctTask {
  id: string;
  state: string;
  start: number;
  end: number;
  name: string;
}

/** What sacct says of every array task the home's run 1 submitted. */
export async function accounting(home: string, slurmConf: string): Promise<AcctTask[]> {
  const names = await jobNames(home);
  const result = await execa(
    'sacct',
    ['-n', '-X', '-P', `--name=${names.join(',')}`, '--starttime=now-1days', '-o', 'JobID,State,Start,End,JobName'],
    { env: envOf(slurmConf) },
  );
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, state, start, end, name] = line.split('|') as [string, string, string, string, string];
      return { id, state, start: Date.parse(`${start}Z`), end: Date.parse(`${end}Z`), name };
    });
}

/** squeue's lines for the home's run 1 tasks that still wait or run. */
export async function stillQueued(home: string, slurmConf: string): Promise<string[]> {
  const result = await execa(
    'squeue',
    ['-h', '-r', '-t', 'pending,running', '-n', (await jobNames(home)).join(','), '-o', '%i %T'],
    {
      env: envOf(slurmConf),
      reject: false,
    },
  );
  return result.stdout.split('\n').filter(Boolean);
}

/** A directory with a gdal_translate that waits until `gate` exists: put first on the tasks' PATH. */
export async function gatedGdal(dir: string, gate: string): Promise<string> {
  const bin = path.join(dir, 'gated-bin');
  await mkdir(bin, { recursive: true });
  const script = path.join(bin, 'gdal_translate');
  await writeFile(
    script,
    `#!/bin/sh\nwhile [ ! -e '${gate}' ]; do sleep 0.1; done\nexec /usr/bin/gdal_translate "$@"\n`,
  );
  await chmod(script, 0o755);
  return bin;
}
