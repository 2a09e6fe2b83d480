/**
 * HTCondor's formats read back, on the genuine samples in ../shared/fixtures/htcondor (read in
 * place through COGD_HTCONDOR_FIXTURES; skipped with a notice when unset). Each assertion checks a
 * decoded value, not just that parsing did not throw.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEvents } from '../../src/executors/condor/eventlog.js';
import { parseQueueTotals, parseSubmitOutput } from '../../src/executors/condor/tools.js';

const dir = process.env['COGD_HTCONDOR_FIXTURES'];
if (dir === undefined || dir === '')
  console.warn(
    'NOTICE: COGD_HTCONDOR_FIXTURES is not set; the HTCondor sample suite is skipped (CI sets it to ../shared/fixtures/htcondor)',
  );
const read = (name: string): string => readFileSync(path.join(dir!, name), 'utf8');
const log = (name: string) => {
  const text = read(name);
  const result = parseEvents(text);
  return { ...result, bytes: Buffer.byteLength(text) };
};
const codes = (events: Array<{ code: number }>): number[] => events.map((e) => e.code);

describe('event log parser (incremental)', () => {
  it('keeps a half-written event for the next read and resumes at the offset', () => {
    const whole =
      '000 (001.000.000) 2026-11-21 10:00:00 Job submitted from host: <127.0.0.1:9618>\n...\n012 (001.000.000) 2026-11-21 10:00:05 Job was held.\n\tTransfer input files failure\n\tCode 13 Subcode 2\n...\n';
    const cut = whole.indexOf('\tCode 13');
    const first = parseEvents(whole.slice(0, cut));
    expect(codes(first.events)).toEqual([0]);
    expect(first.consumed).toBe(whole.indexOf('012'));
    const rest = parseEvents(whole.slice(first.consumed));
    expect(rest.events).toMatchObject([
      { code: 12, cluster: 1, proc: 0, reason: 'Transfer input files failure', holdCode: 13, holdSubcode: 2 },
    ]);
    expect(first.consumed + rest.consumed).toBe(Buffer.byteLength(whole));
  });

  it('counts bytes, not characters, in its offsets', () => {
    const text =
      '000 (002.000.000) 2026-11-21 10:00:00 Job submitted from host: <127.0.0.1:9618>\n\tDAG Node: ünïcødé\n...\n';
    expect(parseEvents(text).consumed).toBe(Buffer.byteLength(text));
  });
});

describe.skipIf(dir === undefined || dir === '')('genuine HTCondor samples', () => {
  it('reads every job event log completely', () => {
    const logs = readdirSync(dir!).filter((name) => name.startsWith('userlog-'));
    expect(logs.length).toBe(11);
    for (const name of logs) {
      const { events, consumed, bytes, skipped } = log(name);
      expect(events.length, name).toBeGreaterThan(0);
      expect(consumed, name).toBe(bytes);
      expect(skipped, name).toEqual([]);
    }
  });

  it('abnormal termination by signal 11, then an abort, then a normal end', () => {
    const { events } = log('userlog-abnormal-signal11-aborted.log');
    expect(codes(events)).toEqual([0, 1, 5, 0, 1, 9, 5]);
    expect(events[0]).toMatchObject({
      cluster: 180158,
      proc: 0,
      subproc: 0,
      time: '03/10 16:40:06',
      body: ['DAG Node: A'],
    });
    expect(events[2]!.termination).toEqual({ normal: false, signal: 11 });
    expect(events[5]).toMatchObject({ cluster: 180158, reason: 'Job was aborted by the user.' });
    expect(events[6]).toMatchObject({ cluster: 180159, termination: { normal: true, returnValue: 0 } });
  });

  it('a hold with its reason and code, then the release', () => {
    const { events } = log('userlog-held-released-third-party-fixture.log');
    expect(codes(events)).toEqual([0, 12, 13, 1, 6, 5]);
    expect(events[1]).toMatchObject({
      cluster: 12345,
      time: '2024-09-15 10:23:45',
      description: 'Job was held.',
      reason: 'Spooling input data files',
      holdCode: 16,
      holdSubcode: 0,
    });
    expect(events[2]).toMatchObject({ description: 'Job was released.', reason: 'Data files spooled' });
    expect(events[5]!.termination).toEqual({ normal: true, returnValue: 0 });
  });

  it('DAG nodes with a non-zero return value, an eviction and an abort (ISO dates)', () => {
    const { events } = log('userlog-dag-nodes-evicted-aborted-2025.log');
    const returns = events.filter((e) => e.code === 5).map((e) => e.termination);
    expect(returns).toContainEqual({ normal: true, returnValue: 1 });
    expect(returns.filter((r) => r?.normal === true && r.returnValue === 0).length).toBe(4);
    expect(events.filter((e) => e.code === 4).length).toBe(1);
    const aborted = events.find((e) => e.code === 9)!;
    expect(aborted.description).toBe('Job was aborted.');
    expect(aborted.time).toMatch(/^2025-02-13 /);
  });

  it('the DAGMan job itself failing with return value 1', () => {
    const { events } = log('userlog-dagman-job-return-value-1.log');
    expect(codes(events)).toEqual([0, 1, 5]);
    expect(events[2]!.termination).toEqual({ normal: true, returnValue: 1 });
  });

  it('file transfer events and a starter warning (bodies indented with spaces)', () => {
    const { events } = log('userlog-file-transfer-040-osg-2024.log');
    expect(events.filter((e) => e.code === 40).length).toBe(4);
    expect(events.some((e) => e.code === 21)).toBe(true);
    const end = events.find((e) => e.code === 5)!;
    expect(end).toMatchObject({ cluster: 271101, termination: { normal: true, returnValue: 0 } });
    expect(end.body).toContain('Job terminated of its own accord at 2024-08-02T20:45:19Z with exit-code 0.');
  });

  it('a job flapping between execute and shadow exception (irregular indentation)', () => {
    const { events } = log('userlog-shadow-exception-007.log');
    expect(codes(events)).toEqual([1, 7, 1, 7]);
    expect(events[1]!.reason).toBe('Error from slot1_2@bat: FATAL:    executable file not found in $PATH');
    expect(events[3]!.reason).toBe('Shadow exception!');
  });

  it('the quick-start log, a POST script event, job ad events and a submit warning', () => {
    expect(codes(log('userlog-imagesize-terminated-quickstart.log').events)).toEqual([0, 1, 6, 5]);
    expect(log('userlog-dag-post-script-016.log').events.filter((e) => e.code === 16).length).toBe(1);
    const jobad = log('userlog-jobad-028-old-format.log').events;
    expect(codes(jobad)).toEqual([0, 28, 0, 28]);
    expect(jobad[1]!.body.length).toBeGreaterThan(3);
    const [submit] = log('userlog-submit-with-warning.log').events;
    expect(submit!.code).toBe(0);
    expect(submit!.body.some((line) => line.includes('WARNING'))).toBe(true);
  });

  it('the legacy stress log: every event type, empty hold bodies, ids of -1', () => {
    const { events } = log('userlog-legacy-all-event-types-stress.log');
    expect(events.length).toBe(851);
    for (const code of [...Array.from({ length: 21 }, (_, i) => i), 22, 23, 24])
      expect(
        events.some((e) => e.code === code),
        `event ${code}`,
      ).toBe(true);
    expect(events.some((e) => e.cluster === -1 && e.proc === -1 && e.subproc === -1)).toBe(true);
    const held = events.filter((e) => e.code === 12);
    expect(held.length).toBe(48);
    expect(held.some((e) => e.body.length === 0 && e.reason === undefined)).toBe(true);
  });

  it('condor_submit output: clusters and warnings', () => {
    expect(parseSubmitOutput(read('condor_submit-output.txt'))).toEqual({
      clusters: [{ cluster: 6, firstProc: 0, lastProc: 0, jobs: 1 }],
      messages: [],
    });
    const warned = parseSubmitOutput(read('condor_submit-output-with-warning.txt'));
    expect(warned.clusters).toEqual([{ cluster: 452, firstProc: 0, lastProc: 0, jobs: 1 }]);
    expect(warned.messages.length).toBe(2);
    expect(parseSubmitOutput(read('condor_submit_dag-output.txt')).clusters).toEqual([
      { cluster: 61, firstProc: 0, lastProc: 0, jobs: 1 },
    ]);
    expect(parseSubmitOutput('1234.0 - 1234.499\n').clusters).toEqual([
      { cluster: 1234, firstProc: 0, lastProc: 499, jobs: 500 },
    ]);
  });

  it('condor_q totals in both formats', () => {
    expect(parseQueueTotals(read('condor_q-default-batch-hold-column.txt'))).toEqual({
      jobs: 2388,
      completed: 0,
      removed: 1,
      idle: 58,
      running: 2276,
      held: 53,
      suspended: 0,
    });
    expect(parseQueueTotals(read('condor_q-empty-queue-totals.txt'))).toEqual({
      jobs: 0,
      completed: 0,
      removed: 0,
      idle: 0,
      running: 0,
      held: 0,
      suspended: 0,
    });
    expect(parseQueueTotals(read('condor_q-nobatch.txt'))).toEqual({
      jobs: 14,
      completed: 0,
      removed: 0,
      idle: 4,
      running: 8,
      held: 2,
      suspended: 0,
    });
    expect(parseQueueTotals(read('condor_q-batch-held-cmd-batchname.txt'))?.held).toBe(1);
    expect(parseQueueTotals(read('condor_q-format-clusterid-procid.txt'))).toBeUndefined();
  });
});
