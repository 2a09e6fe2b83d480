/**
 * Starting programs (GDAL) from a small, long-lived helper process instead of from cogd itself.
 *
 * Why: `fork()` copies the parent's page tables, so its cost grows with the parent's RSS — from a
 * ~170 MB cogd each start cost ~4-5 ms of CPU (mostly in the kernel), plus ~3.5 ms of execa's
 * option handling: ~8 ms per GDAL command, five per image (measured; see the README's Benchmark
 * section). The helper is a bare Node.js process (~45 MB, no modules of ours) that receives each
 * command over its IPC channel and starts it with child_process.spawn — never through a shell —
 * with stdout/stderr appended to files or captured; it answers with the pid once the program runs
 * and with its exit code/signal (and captured output) once it has ended.
 *
 * Semantics kept from starting programs ourselves: a program runs in its own process group when
 * `detached` (the caller kills the group with `process.kill(-pid)`, whoever its parent is), and a
 * crashed cogd leaves it running (the helper exits when its channel closes and never kills what it
 * started: the processes table of the restarted daemon does, see src/daemon/processes.ts). If the
 * helper itself dies, every program it started and not yet reported is killed (its group) and its
 * caller gets an error; the next command starts a new helper.
 *
 * The helper is `node -e <HELPER>` with `cogd-spawner` as its argument (what `ps` and the benchmark
 * see); it does not keep cogd's event loop alive while nothing runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface SpawnRequest {
  command: string;
  args: string[];
  /** The program's whole environment. */
  env: Record<string, string | undefined>;
  /** Its own process group (setsid), so a kill of `-pid` reaches everything it starts. */
  detached?: boolean;
  /** Text written to its stdin (then closed); otherwise stdin is /dev/null. */
  input?: string;
  /** Append stdout to this file. */
  stdoutFile?: string;
  /** Append stderr to this file. */
  stderrFile?: string;
  /** Keep stdout (also appended to `stdoutFile` if given). */
  captureStdout?: boolean;
  /** Keep stderr (instead of a file). */
  captureStderr?: boolean;
}

export interface SpawnEnd {
  /** Undefined when a signal ended it or it never started. */
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** Why it could not start (`spawn gdalinfo ENOENT`), or why its end is unknown (the helper died). */
  error: string | undefined;
}

export interface Spawned {
  /** Undefined when it could not start (then `ended` says why). */
  pid: number | undefined;
  ended: Promise<SpawnEnd>;
}

/** The helper, as plain JavaScript (CommonJS, Node built-ins only); its argv[1] is the marker. */
const HELPER = `
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  const fds = [];
  const reply = (msg) => { if (process.connected) process.send(msg); };
  let child;
  try {
    const out = m.stdoutFile !== undefined && m.captureStdout !== true ? fs.openSync(m.stdoutFile, 'a') : undefined;
    if (out !== undefined) fds.push(out);
    const err = m.stderrFile !== undefined && m.captureStderr !== true ? fs.openSync(m.stderrFile, 'a') : undefined;
    if (err !== undefined) fds.push(err);
    child = spawn(m.command, m.args, {
      env: m.env,
      detached: m.detached === true,
      stdio: [
        m.input !== undefined ? 'pipe' : 'ignore',
        out !== undefined ? out : m.captureStdout === true ? 'pipe' : 'ignore',
        err !== undefined ? err : m.captureStderr === true ? 'pipe' : 'ignore',
      ],
    });
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    reply({ id: m.id, kind: 'end', error: String(e && e.message || e), stdout: '', stderr: '' });
    return;
  }
  for (const fd of fds) fs.closeSync(fd);
  const stdout = [];
  const stderr = [];
  let done = false;
  const end = (msg) => {
    if (done) return;
    done = true;
    const text = Buffer.concat(stdout).toString('utf8');
    if (m.captureStdout === true && m.stdoutFile !== undefined && text !== '') {
      try { fs.appendFileSync(m.stdoutFile, text); } catch {}
    }
    reply({ id: m.id, kind: 'end', stdout: text, stderr: Buffer.concat(stderr).toString('utf8'), ...msg });
  };
  if (child.stdout) child.stdout.on('data', (d) => stdout.push(d));
  if (child.stderr) child.stderr.on('data', (d) => stderr.push(d));
  if (child.stdin) {
    child.stdin.on('error', () => {});
    child.stdin.end(m.input);
  }
  child.on('spawn', () => reply({ id: m.id, kind: 'start', pid: child.pid }));
  child.on('error', (e) => end({ error: e.message }));
  child.on('close', (code, signal) =>
    end({ exitCode: code === null ? undefined : code, signal: signal === null ? undefined : signal }),
  );
});
`;

/** The marker in the helper's command line. */
export const SPAWNER_MARKER = 'cogd-spawner';

interface Waiting {
  started: (pid: number | undefined) => void;
  ended: (end: SpawnEnd) => void;
  pid: number | undefined;
  detached: boolean;
}

interface Message {
  id: number;
  kind: 'start' | 'end';
  pid?: number;
  exitCode?: number;
  signal?: string;
  stdout?: string;
  stderr?: string;
  error?: string;
}

class Spawner {
  private helper: ChildProcess | undefined;
  private next = 1;
  private readonly waiting = new Map<number, Waiting>();

  private start(): ChildProcess {
    const helper = spawn(process.execPath, ['-e', HELPER, SPAWNER_MARKER], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
      env: process.env,
    });
    helper.on('message', (message: Message) => this.receive(message));
    const gone = (why: string): void => {
      if (this.helper !== helper) return;
      this.helper = undefined;
      this.orphaned(why);
    };
    helper.on('error', (error) => gone(`the process spawner failed: ${error.message}`));
    helper.on('exit', (code, signal) => gone(`the process spawner exited (${signal ?? `exit code ${code}`})`));
    this.helper = helper;
    return helper;
  }

  /** The helper died: what it started can no longer be followed, so it is stopped. */
  private orphaned(why: string): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) {
      if (w.pid !== undefined) {
        try {
          process.kill(w.detached ? -w.pid : w.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      w.started(w.pid);
      w.ended({ exitCode: undefined, signal: undefined, stdout: '', stderr: '', error: why });
    }
  }

  private receive(message: Message): void {
    const w = this.waiting.get(message.id);
    if (w === undefined) return;
    if (message.kind === 'start') {
      w.pid = message.pid;
      w.started(message.pid);
      return;
    }
    this.waiting.delete(message.id);
    this.refresh();
    w.started(w.pid);
    w.ended({
      exitCode: message.exitCode,
      signal: message.signal,
      stdout: message.stdout ?? '',
      stderr: message.stderr ?? '',
      error: message.error,
    });
  }

  /** The helper keeps the event loop alive only while something of ours runs. */
  private refresh(): void {
    const helper = this.helper;
    if (helper === undefined) return;
    const channel = helper.channel as { ref(): void; unref(): void } | null | undefined;
    if (this.waiting.size === 0) {
      helper.unref();
      channel?.unref();
    } else {
      helper.ref();
      channel?.ref();
    }
  }

  async run(request: SpawnRequest): Promise<Spawned> {
    const helper = this.helper ?? this.start();
    const id = this.next++;
    let ended!: Promise<SpawnEnd>;
    const pid = await new Promise<number | undefined>((started) => {
      ended = new Promise<SpawnEnd>((resolve) => {
        this.waiting.set(id, { started, ended: resolve, pid: undefined, detached: request.detached === true });
      });
      this.refresh();
      helper.send({ id, ...request }, (error) => {
        if (error === null) return;
        const w = this.waiting.get(id);
        if (w === undefined) return;
        this.waiting.delete(id);
        this.refresh();
        w.started(undefined);
        w.ended({
          exitCode: undefined,
          signal: undefined,
          stdout: '',
          stderr: '',
          error: `the process spawner failed: ${error.message}`,
        });
      });
    });
    return { pid, ended };
  }

  /** The helper's pid (tests, the benchmark); undefined before the first command. */
  pid(): number | undefined {
    return this.helper?.pid;
  }
}

const spawner = new Spawner();

/**
 * Starts `request.command` from the helper process; resolves once it runs (with its pid) or could
 * not start, and `ended` once it has ended.
 */
export function spawnProgram(request: SpawnRequest): Promise<Spawned> {
  return spawner.run(request);
}

/** The helper's pid, if it has been started. */
export function spawnerPid(): number | undefined {
  return spawner.pid();
}
