import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CONSOLE_FAILURES_PER_RUN, createLog } from '../../src/log/index.js';
import { tempDir } from '../support/helpers.js';

describe('stderr shows a run’s first failed jobs, the files every one', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('prints the first failures of each run, then one line saying where the rest are', async () => {
    const dir = await tempDir();
    const printed: string[] = [];
    // winston's Console transport writes to console._stderr (process.stderr, or vitest's stand-in).
    const stderr = (console as unknown as { _stderr?: NodeJS.WriteStream })._stderr ?? process.stderr;
    vi.spyOn(stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed.push(String(chunk));
      return true;
    });
    const log = createLog({ logDir: dir, consoleLevel: 'warn' });
    const run1 = log.child({ run: 1 });
    const run2 = log.child({ run: 2 });
    const limit = CONSOLE_FAILURES_PER_RUN;
    for (let job = 1; job <= limit + 5; job += 1) run1.warn('Job:Failed', { job, reason: `reason ${job}` });
    run2.warn('Job:Failed', { job: 100, reason: 'reason 100' });
    // Other warnings of the run are not counted or dropped.
    run1.warn('Job:BandMismatch', { key: 'a.tif' });
    await log.close();
    vi.restoreAllMocks();

    const lines = printed.join('').split('\n').filter(Boolean);
    const shown1 = lines.filter((l) => l.includes('Job:Failed') && l.includes('run=1 '));
    expect(shown1.map((l) => /job=(\d+)/.exec(l)?.[1])).toEqual(Array.from({ length: limit }, (_, i) => String(i + 1)));
    const more = lines.filter((l) => l.includes('Run:MoreFailed'));
    expect(more).toHaveLength(1);
    expect(more[0]).toContain('run=1 ');
    expect(more[0]).toContain('cogd status --jobs 1 --state failed');
    expect(more[0]).not.toContain('reason');
    expect(lines.filter((l) => l.includes('run=2 '))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('Job:BandMismatch'))).toHaveLength(1);

    // cogd.log keeps every failure, the one stderr turned into a summary included.
    const file = (await readFile(path.join(dir, 'cogd.log'), 'utf8')).trim().split('\n');
    const failed = file.map((l) => JSON.parse(l) as { message: string; job?: number; reason?: string });
    const jobs = failed.filter((e) => e.message === 'Job:Failed').map((e) => e.job);
    expect(jobs).toEqual([...Array.from({ length: limit + 5 }, (_, i) => i + 1), 100]);
    expect(failed.find((e) => e.job === limit + 1)?.reason).toBe(`reason ${limit + 1}`);
    expect(failed.some((e) => e.message === 'Run:MoreFailed')).toBe(false);
  });
});
