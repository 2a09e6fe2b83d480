/**
 * The process spawner (src/util/spawner.ts) with real programs: output appended to files or
 * captured, stdin, a program that cannot start, process groups, and what happens to running
 * programs when the helper itself dies.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnerPid, spawnProgram, SPAWNER_MARKER } from '../../src/util/spawner.js';
import { tempDir } from '../support/helpers.js';

/** Running (a zombie waiting for its reaper counts as gone). */
const alive = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
};

describe('the process spawner', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('appends stdout and stderr to files, captures stdout, and reports the exit code', async () => {
    const out = path.join(dir, 'a.out');
    const err = path.join(dir, 'a.err');
    writeFileSync(out, 'before\n');
    const { pid, ended } = await spawnProgram({
      command: process.execPath,
      args: ['-e', 'console.log("to stdout"); console.error("to stderr"); process.exit(3)'],
      env: process.env,
      stdoutFile: out,
      stderrFile: err,
      captureStdout: true,
    });
    expect(pid).toBeGreaterThan(0);
    const end = await ended;
    expect(end).toMatchObject({ exitCode: 3, signal: undefined, stdout: 'to stdout\n', error: undefined });
    expect(readFileSync(out, 'utf8')).toBe('before\nto stdout\n');
    expect(readFileSync(err, 'utf8')).toBe('to stderr\n');
    // The helper is a separate, marked process, not this one.
    const helper = spawnerPid();
    expect(helper).not.toBe(process.pid);
    expect(readFileSync(`/proc/${helper}/cmdline`, 'utf8').split('\0')).toContain(SPAWNER_MARKER);
  });

  it('writes stdin, passes the environment and arguments verbatim (no shell)', async () => {
    const { ended } = await spawnProgram({
      command: process.execPath,
      args: [
        '-e',
        'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify([s,process.env.COGD_X,process.argv[1]])))',
        '$(touch pwned); *',
      ],
      env: { ...process.env, COGD_X: 'value' },
      input: 'line 1\nline 2\n',
      captureStdout: true,
    });
    const end = await ended;
    expect(JSON.parse(end.stdout)).toEqual(['line 1\nline 2\n', 'value', '$(touch pwned); *']);
  });

  it('says why a program could not start', async () => {
    const { pid, ended } = await spawnProgram({ command: 'cogd-no-such-program', args: [], env: process.env });
    expect(pid).toBeUndefined();
    expect((await ended).error).toMatch(/ENOENT/);
  });

  it('starts a detached program in its own process group, killable as a group', async () => {
    const { pid, ended } = await spawnProgram({
      command: 'sh',
      args: ['-c', 'sleep 30 & sleep 30; wait'],
      env: process.env,
      detached: true,
    });
    expect(pid).toBeDefined();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    expect(Number(stat[2])).toBe(pid); // its own process group
    process.kill(-pid!, 'SIGKILL');
    expect(await ended).toMatchObject({ exitCode: undefined, signal: 'SIGKILL' });
  });

  it('kills what it started when the helper dies, and starts a new helper for the next program', async () => {
    const { pid, ended } = await spawnProgram({ command: 'sleep', args: ['30'], env: process.env, detached: true });
    const helper = spawnerPid()!;
    process.kill(helper, 'SIGKILL');
    const end = await ended;
    expect(end.error).toMatch(/spawner exited/);
    for (let i = 0; i < 100 && alive(pid!); i += 1) await sleep(20);
    expect(alive(pid!)).toBe(false);
    const next = await spawnProgram({ command: 'true', args: [], env: process.env });
    expect((await next.ended).exitCode).toBe(0);
    expect(spawnerPid()).not.toBe(helper);
  });
});
