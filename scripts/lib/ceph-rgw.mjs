/**
 * A throw-away Ceph RADOS Gateway on loopback, from Debian 12's packages (ceph-mon, ceph-osd,
 * radosgw, ceph-common): one mon, one memstore OSD (objects in RAM), no cephx, radosgw on
 * 127.0.0.1, everything under one temp directory. `stop()` ends exactly the daemons it started
 * (by their pid files, never by name) and removes the directory.
 */
import { execa } from 'execa';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, until as waitFor } from './launch.mjs';

/** True when this machine has the binaries the launcher needs. */
export function cephAvailable() {
  return [
    '/usr/bin/ceph-mon',
    '/usr/bin/ceph-osd',
    '/usr/bin/radosgw',
    '/usr/bin/ceph',
    '/usr/bin/radosgw-admin',
    '/usr/bin/monmaptool',
  ].every((bin) => existsSync(bin));
}

const until = (what, seconds, probe) => waitFor('Ceph RGW launcher', what, seconds, probe, 250);

/** @returns {Promise<{ endpoint: string, accessKey: string, secretKey: string, dir: string, stop(): Promise<void> }>} */
export async function startCephRgw() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cogd-ceph-'));
  const conf = path.join(dir, 'ceph.conf');
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  for (const sub of ['mon', 'osd', 'run', 'log', 'rgw']) await mkdir(path.join(dir, sub), { recursive: true });
  await writeFile(
    conf,
    `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = ${dir}/run
pid file = ${dir}/run/$cluster-$name.pid
admin socket = ${dir}/run/$cluster-$name.asok
log file = ${dir}/log/$cluster-$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 1
[mon]
mon data = ${dir}/mon/$cluster-$id
[osd]
osd data = ${dir}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 4294967296
[client.rgw.s3]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
auth client required = none
ms mon client mode = crc
`,
  );
  const run = (command, args) => execa(command, ['-c', conf, ...args], { timeout: 60_000 });
  const stop = async () => {
    const runDir = path.join(dir, 'run');
    const pids = [];
    for (const name of existsSync(runDir) ? await readdir(runDir) : []) {
      if (!name.endsWith('.pid')) continue;
      const pid = Number.parseInt(await readFile(path.join(runDir, name), 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0) pids.push(pid);
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + 10_000;
    for (const pid of pids) {
      for (;;) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        if (Date.now() > deadline) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await execa('monmaptool', [
      '--create',
      '--fsid',
      fsid,
      '--addv',
      'a',
      `[v2:127.0.0.1:${monPort}]`,
      path.join(dir, 'monmap'),
    ]);
    await run('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')]);
    await run('ceph-mon', ['-i', 'a']);
    await until(
      'the monitor',
      30,
      async () => (await run('ceph', ['--connect-timeout', '5', 'mon', 'stat'])).exitCode === 0,
    );
    const osdUuid = randomUUID();
    const osdId = (await run('ceph', ['osd', 'new', osdUuid])).stdout.trim();
    await mkdir(path.join(dir, 'osd', `ceph-${osdId}`), { recursive: true });
    await run('ceph-osd', ['-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
    await run('ceph-osd', ['-i', osdId]);
    await until('the OSD', 60, async () => /osd\.\d+ up/.test((await run('ceph', ['osd', 'dump'])).stdout));
    await run('radosgw', ['-n', 'client.rgw.s3']);
    await until('radosgw', 120, async () => (await fetch(`http://127.0.0.1:${rgwPort}/`)).status < 500);
    const accessKey = `COGD${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretKey = randomBytes(24).toString('base64url');
    await run('radosgw-admin', [
      'user',
      'create',
      '--uid=cogd-test',
      '--display-name=cogd test',
      `--access-key=${accessKey}`,
      `--secret=${secretKey}`,
    ]);
    return { endpoint: `http://127.0.0.1:${rgwPort}`, accessKey, secretKey, dir, stop };
  } catch (error) {
    const logs = existsSync(path.join(dir, 'log')) ? await readdir(path.join(dir, 'log')) : [];
    const tails = await Promise.all(
      logs.map(
        async (name) =>
          `--- ${name}\n${(await readFile(path.join(dir, 'log', name), 'utf8')).split('\n').slice(-15).join('\n')}`,
      ),
    );
    await stop();
    throw new Error(`${error.message}\n${tails.join('\n')}`);
  }
}
