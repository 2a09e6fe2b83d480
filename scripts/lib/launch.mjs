/**
 * What the test launchers (Ceph RGW, Slurm) share: a free loopback port, and waiting for a daemon
 * to answer.
 */
import net from 'node:net';

/** A TCP port free on 127.0.0.1 now. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Calls `probe` every `everyMs` until it answers true; throws, naming `launcher` and `what`, after `seconds`. */
export async function until(launcher, what, seconds, probe, everyMs) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${launcher}: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
