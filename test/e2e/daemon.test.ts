/** `cogd poll` without --wait, resumed by a later `poll --wait`; `cogd start --foreground` until SIGTERM. */
import { execa } from 'execa';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import {
  baseArgs,
  CLI,
  cogd,
  freshBuckets,
  getText,
  keys,
  makeTiff,
  put,
  putFile,
  resultKeyOf,
  ROOT,
  tempDir,
} from '../support/helpers.js';

describe('runs across processes', () => {
  it('a run claimed by one poll is executed by the next', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 3 }));
    await put(buckets.input, 'm-raw.csv', 'img.tif,3\n');
    const first = await cogd(['poll', ...(await baseArgs(buckets, home))]);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toMatch(/run 1 .*m-raw\.csv: claimed, 1 rows planned/);
    expect(await keys(buckets.output)).toEqual([]);
    expect((await keys(buckets.input)).filter((k) => k.includes('processing')).length).toBe(1);

    const second = await cogd(['poll', '--wait', ...(await baseArgs(buckets, home))]);
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toMatch(/run 1 .*m-raw\.csv: 1 rows, 1 processed, 0 failed/);
    expect(await keys(buckets.output)).toEqual(['collection.json', 'img.jpg', 'img.json', 'img.tif']);
    expect(await getText(buckets.input, (await resultKeyOf(buckets.input, 'm-', 'processed'))!)).toBe('img.tif,3\n');
  });

  it('start --foreground polls at start, converts, and stops cleanly on SIGTERM', async () => {
    const home = await tempDir();
    const buckets = await freshBuckets();
    await putFile(buckets.input, 'img.tif', await makeTiff(path.join(home, 'img.tif'), { bands: 1 }));
    await put(buckets.input, 'm-raw.csv', 'img.tif,1\n');
    const child = execa(
      'node',
      [CLI, 'start', '--foreground', '--schedule', '0 0 1 1 *', ...(await baseArgs(buckets, home))],
      {
        cwd: ROOT,
        reject: false,
        env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      },
    );
    const lines: string[] = [];
    const reader = readline.createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no run summary; stdout so far: ${lines.join('\n')}`)), 60_000);
      reader.on('line', (line) => {
        lines.push(line);
        if (/1 rows, 1 processed, 0 failed/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(lines[0]).toMatch(/watch 1 COG-Pipeline-Crondor-\*raw\.csv: polling s3:\/\/in-/);
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(await keys(buckets.output)).toEqual(['collection.json', 'img.jpg', 'img.json', 'img.tif']);
  });
});
