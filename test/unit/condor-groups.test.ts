/**
 * `--rows-per-job` on HTCondor, the parts without a pool: the per-group blocks cogd adds to a
 * batch's submit description, and the simulator's reading of several `queue` statements (as
 * HTCondor's genuine samples write them: `queue`, `queue 1`, `Queue`) into one cluster.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupBlocks } from '../../src/executors/condor/groups.js';
import { parseSubmitOutput } from '../../src/executors/condor/tools.js';
import type { Waiter } from '../../src/executors/batch.js';
import type { JobSpec } from '../../src/executors/types.js';
import { parseSubmit } from '../fixtures/condor-sim/lib.mjs';
import { ROOT, tempDir } from '../support/helpers.js';

const fixtures = process.env['COGD_HTCONDOR_FIXTURES'];
const haveFixtures = fixtures !== undefined && fixtures !== '';

/** A row as groupBlocks reads it: its job id, input key and log name. */
function row(jobId: number, imageKey: string): Waiter {
  const name = path.posix.basename(imageKey).replace(/\.tif$/, '');
  return {
    job: { jobId, imageKey, files: { name } } as unknown as JobSpec,
    resolve: () => undefined,
    reject: () => undefined,
  };
}

describe('HTCondor groups', () => {
  it('adds one block per group: its inputs from S3 (a missing one left out), its output directory, a queue', () => {
    const groups = [[row(1, 'img/a.tif'), row(2, 'img/b.tif')], [row(3, 'x/c.tif')]];
    const { blocks, rowsFiles } = groupBlocks(
      '/home/logs/run-1',
      4,
      groups,
      's3://h:9/in',
      '/w/cog-worker.sh',
      new Set([2]),
    );
    expect(blocks.match(/^queue$/gm)?.length).toBe(2);
    expect(blocks).toContain(
      'transfer_input_files    = /w/cog-worker.sh, /home/logs/run-1/condor/groups/batch-4.0.rows, s3://h:9/in/img/a.tif\n',
    );
    expect(blocks).toContain('transfer_output_files   = batch-4.1\n');
    expect(blocks).toContain('output                  = /home/logs/run-1/condor/groups/batch-4.1.out\n');
    expect(rowsFiles).toEqual([
      ['/home/logs/run-1/condor/groups/batch-4.0.rows', 'a.tif a\n- b\n'],
      ['/home/logs/run-1/condor/groups/batch-4.1.rows', 'c.tif c\n'],
    ]);
    // Keys HTCondor's lists cannot carry are refused, as for one row per job; so is such a home.
    expect(() => groupBlocks('/h', 1, [[row(1, 'img/a,b.tif')]], 's3://h/in', '/w/x.sh', new Set())).toThrow(/","/);
    expect(() => groupBlocks('/my home', 1, [[row(1, 'img/a.tif')]], 's3://h/in', '/w/x.sh', new Set())).toThrow(
      /white space/,
    );
  });

  it('the simulator reads several queue statements as HTCondor does: one cluster, procs numbered on', async () => {
    const parsed = parseSubmit(
      'universe = vanilla\nexecutable = /bin/true\narguments = a\nqueue\narguments = b\nqueue 2\nlog = x.log\nQueue\n',
    );
    expect(parsed.queues.map((q) => [q.commands.get('arguments'), 'count' in q.queue ? q.queue.count : 0])).toEqual([
      ['a', 1],
      ['b', 2],
      ['b', 1],
    ]);
    expect(parsed.queues[2]!.commands.get('log')).toBe('x.log');
    expect(parsed.queues[0]!.commands.has('log')).toBe(false);
    if (haveFixtures) {
      // The queue statements of HTCondor's own samples that are not item data.
      for (const name of [
        'submit-container-universe.sub',
        'submit-max-retries.sub',
        'submit-periodic-release-always-held.sub',
      ]) {
        const line = readFileSync(path.join(fixtures, name), 'utf8')
          .split('\n')
          .find((l) => /^queue\b/i.test(l))!;
        expect(parseSubmit(`executable = /bin/true\n${line}\n`).queues.length, name).toBe(1);
      }
    }
    const dir = await tempDir('condor-sim-');
    const sub = path.join(dir, 'job.sub');
    await writeFile(
      sub,
      `executable = /bin/true\nlog = ${dir}/condor.log\narguments = one\nqueue\narguments = two\nqueue\n`,
    );
    const env = { CONDOR_SIM_DIR: dir, CONDOR_SIM_START_MS: '60000' };
    const sim = path.join(ROOT, 'test/fixtures/condor-sim');
    const submitted = await execa(path.join(sim, 'condor_submit'), ['-terse', sub], { env });
    expect(parseSubmitOutput(submitted.stdout).clusters).toEqual([
      { cluster: 101, firstProc: 0, lastProc: 1, jobs: 2 },
    ]);
    await execa(path.join(sim, 'condor_rm'), ['101'], { env });
  });
});
