/**
 * V8 flags of the detached daemon, and its memory policy. It idles between polls for months, so
 * its memory must stay flat. Measured over 1,000 polls that found nothing (`npm run bench -- --parts
 * idle`, which polls through the daemon's engine with exactly these flags): with Node's defaults RSS
 * grew 52% while the heap in use stayed at 10-11 MB — V8 grows its young generation up to 16 MB per
 * semi-space, parallel GC threads keep their own malloc arenas, and old-space garbage waits for a
 * major GC that a quiet process rarely needs. So: a 2 MB semi-space, GC on the main thread, and a
 * full collection after a poll that leaves nothing running (a few ms every poll interval).
 */
import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--single-threaded-gc', '--expose-gc'];

/**
 * The daemon's flags this Node.js's V8 still knows (`node --v8-options`): a flag a newer V8 dropped
 * would stop the daemon from starting at all, where without it the daemon only idles less lean.
 */
export function supportedDaemonFlags(node = process.execPath): { flags: string[]; dropped: string[] } {
  let known: string;
  try {
    known = execFileSync(node, ['--v8-options'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
  } catch {
    return { flags: [], dropped: [...DAEMON_NODE_FLAGS] };
  }
  const names = new Set([...known.matchAll(/^\s+(--[\w-]+)/gm)].map((m) => m[1]));
  const flags = DAEMON_NODE_FLAGS.filter((flag) => names.has(flag.split('=')[0]));
  return { flags, dropped: DAEMON_NODE_FLAGS.filter((flag) => !flags.includes(flag)) };
}

/**
 * The collector: the one `--expose-gc` provides (the daemon), else one exposed at run time for
 * processes started without the flag (`cogd poll --wait`, which plans and executes big runs too);
 * undefined where V8 refuses both.
 */
let gc: (() => void) | undefined | null = null;
function collector(): (() => void) | undefined {
  if (gc !== null) return gc;
  gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const exposed: unknown = runInNewContext('gc');
      if (typeof exposed === 'function') gc = exposed as () => void;
    } catch {
      gc = undefined;
    }
  }
  return gc;
}

/** Collects garbage now if this process may. Call when it has gone quiet, or after a big plan. */
export function collectWhileIdle(): void {
  collector()?.();
}
