import { describe, expect, it } from 'vitest';
import { parseRun, parseTarget } from '../../src/manifest/targets.js';
import { UsageError } from '../../src/errors.js';

describe('targets', () => {
  it('reads runs, jobs, watches and batch names as condor_rm reads its arguments', () => {
    expect(parseTarget('12')).toEqual({ kind: 'run', run: 12, text: '12' });
    expect(parseTarget('12.5')).toEqual({ kind: 'job', run: 12, line: 5, text: '12.5' });
    expect(parseTarget('w3')).toEqual({ kind: 'watch', watch: 3, text: 'w3' });
    expect(parseTarget('W3')).toEqual({ kind: 'watch', watch: 3, text: 'W3' });
    expect(parseTarget('COG-Pipeline-DAG-*raw.csv')).toEqual({
      kind: 'batch',
      name: 'COG-Pipeline-DAG-*raw.csv',
      text: 'COG-Pipeline-DAG-*raw.csv',
    });
    expect(parseTarget(' 7 ')).toMatchObject({ kind: 'run', run: 7 });
  });

  it('refuses what can be none of them, naming it', () => {
    for (const bad of ['', '1.2.3', '.5', '12.']) expect(() => parseTarget(bad)).toThrow(UsageError);
    expect(() => parseTarget('1.2.3')).toThrow(/"1\.2\.3" is not a run, job, watch or batch name/);
  });

  it('takes a run alone where only a run makes sense', () => {
    expect(parseRun('4')).toBe(4);
    expect(() => parseRun('4.1')).toThrow(/"4\.1" is not a run id/);
    expect(() => parseRun('w1')).toThrow(/"w1" is not a run id/);
  });
});
