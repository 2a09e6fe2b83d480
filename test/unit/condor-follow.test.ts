/**
 * Following a job event log from a saved offset, and the test simulator's formats checked against
 * HTCondor's genuine samples (../shared/fixtures/htcondor through COGD_HTCONDOR_FIXTURES; the
 * sample comparisons are skipped with a notice when it is unset).
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseEvents } from '../../src/executors/condor/eventlog.js';
import { EventLogFollower } from '../../src/executors/condor/follower.js';
import { parseQueueTotals, parseSubmitOutput } from '../../src/executors/condor/tools.js';
import { formatEvent as fmt, parseSubmit } from '../fixtures/condor-sim/lib.mjs';
import { ROOT, tempDir } from '../support/helpers.js';

const fixtures = process.env['COGD_HTCONDOR_FIXTURES'];
const haveFixtures = fixtures !== undefined && fixtures !== '';
if (!haveFixtures)
  console.warn(
    'NOTICE: COGD_HTCONDOR_FIXTURES is not set; the simulator is not compared with the genuine HTCondor samples',
  );
const sample = (name: string): string => readFileSync(path.join(fixtures!, name), 'utf8');

describe('EventLogFollower', () => {
  it('returns complete events only, and resumes from a saved offset', async () => {
    const file = path.join(await tempDir(), 'condor.log');
    const follower = new EventLogFollower(file, 0);
    expect(await follower.read()).toEqual({ events: [], next: 0, skipped: [] }); // no log yet

    const submit = fmt(0, 7, 0, 'Job submitted from host: <127.0.0.1:9618>', ['    cogd run 1 batch 1']);
    const held = fmt(12, 7, 0, 'Job was held.', ['Transfer input files failure: «ünïcødé» key', 'Code 13 Subcode 0']);
    await writeFile(file, submit + held.slice(0, held.indexOf('ü') + 1)); // cut inside a multi-byte character
    const first = await follower.read();
    expect(first.events.map((e) => e.code)).toEqual([0]);
    expect(first.next).toBe(Buffer.byteLength(submit));
    follower.advance(first.next);

    await appendFile(file, held.slice(held.indexOf('ü') + 1));
    const second = await follower.read();
    expect(second.events).toMatchObject([
      { code: 12, cluster: 7, reason: 'Transfer input files failure: «ünïcødé» key', holdCode: 13 },
    ]);
    follower.advance(second.next);

    // A new follower (a restarted daemon) from the saved offset sees only what came after.
    await appendFile(file, fmt(13, 7, 0, 'Job was released.', ['via condor_release (by user u)']));
    const resumed = new EventLogFollower(file, second.next);
    expect((await resumed.read()).events.map((e) => e.code)).toEqual([13]);

    // A log shorter than what was read was replaced: an error, never a silent re-read.
    await writeFile(file, submit);
    await expect(resumed.read()).rejects.toThrow(/shorter than the \d+ bytes already read/);
  });

  it.skipIf(!haveFixtures)('reads a genuine log appended in pieces exactly as parsed whole', async () => {
    const text = sample('userlog-dag-nodes-evicted-aborted-2025.log');
    const whole = parseEvents(text).events;
    const file = path.join(await tempDir(), 'nodes.log');
    await writeFile(file, '');
    const follower = new EventLogFollower(file, 0);
    const seen = [];
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; at += 97) {
      await appendFile(file, bytes.subarray(at, at + 97));
      const { events, next } = await follower.read();
      seen.push(...events);
      follower.advance(next);
    }
    expect(seen).toEqual(whole);
    expect(seen.filter((e) => e.code === 5).map((e) => e.termination)).toContainEqual({ normal: true, returnValue: 1 });
    expect(follower.offset).toBe(bytes.length);
  });
});

describe('the HTCondor simulator (test-only) writes what HTCondor writes', () => {
  it('formats events that the parser decodes', () => {
    const text = [
      fmt(0, 101, 0, 'Job submitted from host: <127.0.0.1:9618?addrs=127.0.0.1-9618&noUDP&sock=schedd_sim>', [
        '    cogd run 3 batch 2',
      ]),
      fmt(5, 101, 0, 'Job terminated.', [
        '(1) Normal termination (return value 2)',
        '\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Run Remote Usage',
      ]),
      fmt(12, 101, 1, 'Job was held.', ['Transfer output files failure', 'Code 12 Subcode 0']),
      fmt(9, 101, 1, 'Job was aborted.', ['via condor_rm (by user sim)']),
    ].join('');
    const { events, skipped } = parseEvents(text);
    expect(skipped).toEqual([]);
    expect(events.map((e) => [e.code, e.cluster, e.proc])).toEqual([
      [0, 101, 0],
      [5, 101, 0],
      [12, 101, 1],
      [9, 101, 1],
    ]);
    expect(events[0]!.body).toEqual(['cogd run 3 batch 2']);
    expect(events[1]!.termination).toEqual({ normal: true, returnValue: 2 });
    expect(events[2]).toMatchObject({ reason: 'Transfer output files failure', holdCode: 12, holdSubcode: 0 });
    expect(events[3]!.reason).toBe('via condor_rm (by user sim)');
  });

  it.skipIf(!haveFixtures)('matches the genuine samples line for line in shape', () => {
    const shape = (line: string): string => line.replace(/\d/g, '9').replace(/<[^>]*>/g, '<addr>');
    // Headers: the current ISO style of the 2025 DAG nodes log.
    const genuineHeader = sample('userlog-dag-nodes-evicted-aborted-2025.log').split('\n')[0]!;
    const simHeader = fmt(0, 9229, 0, 'Job submitted from host: <10.0.0.33:9618?addrs=x>', [
      '    DAG Node: provisioningJob',
    ]).split('\n')[0]!;
    expect(shape(simHeader)).toBe(shape(genuineHeader));
    // A submit event with a note: the note line is indented with four spaces, as DAGMan's "DAG Node:".
    const genuineSubmit = sample('userlog-dag-nodes-evicted-aborted-2025.log').split('...\n')[0]!;
    expect(
      shape(fmt(0, 9229, 0, 'Job submitted from host: <10.0.0.33:9618?addrs=x>', ['    DAG Node: provisioningJob'])),
    ).toBe(shape(`${genuineSubmit}...\n`));
    // Held: reason line, then "Code N Subcode M", tab-indented.
    const genuineHeld = sample('userlog-held-released-third-party-fixture.log').split('\n').slice(2, 6).join('\n');
    const simHeld = fmt(12, 12345, 0, 'Job was held.', ['Spooling input data files', 'Code 16 Subcode 0'])
      .trimEnd()
      .split('\n');
    expect(shape(simHeld.join('\n')).replace(/9999-99-99 99:99:99/, 'T')).toBe(
      shape(genuineHeld).replace(/9999-99-99 99:99:99/, 'T'),
    );
    // Terminated: the first body line as in the genuine logs.
    expect(sample('userlog-dag-nodes-evicted-aborted-2025.log')).toContain(
      fmt(5, 1, 0, 'x', ['(1) Normal termination (return value 0)']).split('\n')[1]!,
    );
  });

  it('condor_submit -terse and condor_q print what the readers of the real tools accept', async () => {
    const dir = await tempDir('condor-sim-');
    const items = path.join(dir, 'items');
    await writeFile(items, 'a/x.tif, a/x.tif, a/x.jpg, x\na/y.tif, a/y.tif, a/y.jpg, y\n');
    const sub = path.join(dir, 'job.sub');
    await writeFile(
      sub,
      `universe = container\ncontainer_image = docker://img\nexecutable = /bin/true\narguments = "$Fnx(input_key)"\nlog = ${dir}/condor.log\nsubmit_event_notes = cogd run 1 batch 1\nqueue input_key, cog_key, preview_key, log_name from ${items}\n`,
    );
    const env = { CONDOR_SIM_DIR: dir, CONDOR_SIM_START_MS: '60000' };
    const sim = path.join(ROOT, 'test/fixtures/condor-sim');
    const submitted = await execa(path.join(sim, 'condor_submit'), ['-terse', sub], { env });
    expect(parseSubmitOutput(submitted.stdout).clusters).toEqual([
      { cluster: 101, firstProc: 0, lastProc: 1, jobs: 2 },
    ]);
    const q = await execa(path.join(sim, 'condor_q'), [], { env });
    expect(parseQueueTotals(q.stdout)).toMatchObject({ jobs: 2, idle: 2, running: 0, held: 0 });
    if (haveFixtures) expect(parseQueueTotals(sample('condor_q-empty-queue-totals.txt'))).toMatchObject({ jobs: 0 });
    const rm = await execa(path.join(sim, 'condor_rm'), ['101'], { env });
    expect(rm.stdout).toBe('All jobs in cluster 101 have been marked for removal');
    // The description is refused the way condor_submit refuses it: an unknown command is an error.
    expect(() => parseSubmit('universe = container\nexecutible = /bin/true\nqueue x from f\n')).toThrow(
      /unknown submit command "executible"/,
    );
    // The schedd takes the removed procs out: 2 aborted events, then nothing queued.
    const deadline = Date.now() + 20_000;
    while (
      parseEvents(readFileSync(path.join(dir, 'condor.log'), 'utf8')).events.filter((e) => e.code === 9).length < 2
    ) {
      if (Date.now() > deadline) throw new Error('the simulated schedd never removed the cluster');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(parseQueueTotals((await execa(path.join(sim, 'condor_q'), [], { env })).stdout)).toMatchObject({ jobs: 0 });
  });
});
