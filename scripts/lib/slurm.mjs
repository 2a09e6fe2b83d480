/**
 * A throw-away Slurm cluster on loopback, from Debian 12's packages (Slurm 22.05): one controller
 * (slurmctld), one compute node called `localhost` (slurmd) in the partition `debug`, MUNGE with its
 * own key and socket, and — with `accounting` — slurmdbd on a MariaDB of its own, so `sacct` works.
 * Everything lives under one temp directory: the configuration, sockets, state, spool, logs and
 * the database. No cgroups and no systemd (`proctrack/linuxproc`, `task/none`): CPU and memory are
 * not enforced. `stop()` cancels the jobs still queued, then ends exactly the daemons it started
 * (by their pids, never by name) and removes the directory.
 *
 * `installSlurm()` installs what is missing with apt-get (`--no-install-recommends`), with a
 * temporary /usr/sbin/policy-rc.d so the packages' maintainer scripts start no system munged.
 * The measured facts this follows are in ../shared/notes/slurm.md.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, until as waitFor } from './launch.mjs';

const CORE = {
  packages: ['slurmctld', 'slurmd', 'slurm-client', 'munge'],
  binaries: [
    '/usr/sbin/slurmctld',
    '/usr/sbin/slurmd',
    '/usr/sbin/munged',
    '/usr/sbin/mungekey',
    '/usr/bin/sbatch',
    '/usr/bin/squeue',
    '/usr/bin/scontrol',
    '/usr/bin/scancel',
    '/usr/bin/sinfo',
  ],
};
const ACCOUNTING = {
  packages: ['slurmdbd', 'mariadb-server-core', 'mariadb-client-core'],
  binaries: ['/usr/sbin/slurmdbd', '/usr/sbin/mariadbd', '/usr/bin/mariadb-install-db', '/usr/bin/mariadb'],
};

/** The binaries that are missing for a cluster with or without accounting (empty: it can start). */
export function slurmMissing(accounting = false) {
  const needed = [...CORE.binaries, ...(accounting ? ACCOUNTING.binaries : []), '/usr/bin/sacct', '/usr/bin/sacctmgr'];
  return needed.filter((bin) => !existsSync(bin) && (accounting || !/sacct/.test(bin)));
}

/** True when this machine has what the launcher needs. */
export function slurmAvailable(accounting = false) {
  return slurmMissing(accounting).length === 0;
}

/**
 * Installs the missing packages (root only). Returns what it did, or throws with apt-get's words.
 * @param {{ accounting?: boolean, log?: (line: string) => void }} options
 */
export async function installSlurm(options = {}) {
  const accounting = options.accounting ?? false;
  if (slurmAvailable(accounting)) return 'already installed';
  if (process.getuid?.() !== 0) throw new Error('Slurm launcher: installing Slurm needs root (apt-get)');
  const packages = [...CORE.packages, ...(accounting ? ACCOUNTING.packages : [])];
  // The maintainer scripts call invoke-rc.d, which would start a system munged (and slurmd):
  // a policy-rc.d that says "no" stops that — written only where none exists, and removed after.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy)
    await writeFile(policy, "#!/bin/sh\n# written by cogd's Slurm test launcher\nexit 101\n", { mode: 0o755 });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const started = Date.now();
  try {
    options.log?.(`Slurm launcher: apt-get install ${packages.join(' ')}`);
    // Another apt-get may hold the lock (CI images install more at once): wait for it.
    const lock = ['-o', 'DPkg::Lock::Timeout=600'];
    const update = await execa('apt-get', [...lock, 'update', '-qq'], { env, reject: false, all: true });
    if (update.exitCode !== 0)
      options.log?.(`Slurm launcher: apt-get update failed, installing from the cached lists: ${update.all}`);
    const install = await execa('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...packages], {
      env,
      reject: false,
      all: true,
    });
    if (install.exitCode !== 0) throw new Error(`Slurm launcher: apt-get install failed:\n${install.all}`);
  } finally {
    if (ownPolicy) await unlink(policy).catch(() => undefined);
  }
  if (!slurmAvailable(accounting))
    throw new Error(`Slurm launcher: still missing after apt-get: ${slurmMissing(accounting).join(' ')}`);
  return `installed ${packages.join(' ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`;
}

const until = (what, seconds, probe) => waitFor('Slurm launcher', what, seconds, probe, 100);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the cluster. `cpus` is what the node claims to have (more than the machine is fine: jobs
 * are not confined, and the scheduler starts about two jobs per pass and CPU).
 * @param {{ accounting?: boolean, cpus?: number, memoryMb?: number }} options
 */
export async function startSlurm(options = {}) {
  const accounting = options.accounting ?? false;
  const cpus = options.cpus ?? os.cpus().length;
  const memoryMb = options.memoryMb ?? Math.floor(os.totalmem() / 2 ** 20);
  const missing = slurmMissing(accounting);
  if (missing.length > 0) throw new Error(`Slurm launcher: missing ${missing.join(' ')} (installSlurm() adds them)`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cogd-slurm-'));
  // slurmd and the jobs read the configuration and sockets as other users too.
  await chmod(dir, 0o755);
  for (const sub of ['run', 'log', 'state', 'spool', 'etc']) await mkdir(path.join(dir, sub), { recursive: true });
  await mkdir(path.join(dir, 'munge'), { mode: 0o700 });
  const [ctldPort, slurmdPort, dbdPort, dbPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const conf = path.join(dir, 'etc', 'slurm.conf');
  const socket = path.join(dir, 'run', 'munge.socket');
  const env = { ...process.env, SLURM_CONF: conf };
  /** @type {Array<{ name: string, pid: number, done: Promise<unknown> }>} */
  const started = [];

  const accountingLines = accounting
    ? [
        'AccountingStorageType=accounting_storage/slurmdbd',
        'AccountingStorageHost=localhost',
        `AccountingStoragePort=${dbdPort}`,
        '# for accounting_storage/slurmdbd this names the munge socket used towards slurmdbd',
        `AccountingStoragePass=${socket}`,
      ]
    : ['AccountingStorageType=accounting_storage/none'];
  await writeFile(
    conf,
    [
      "# generated by cogd's Slurm test launcher -- throw-away single-node cluster on loopback",
      'ClusterName=ci',
      'SlurmctldHost=localhost(127.0.0.1)',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/run/slurmctld.pid`,
      `SlurmdPidFile=${dir}/run/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerType=sched/backfill',
      'SchedulerParameters=batch_sched_delay=0,bf_interval=1',
      'SlurmdParameters=config_overrides',
      'MpiDefault=none',
      'MailProg=/bin/true',
      'ReturnToService=2',
      'MinJobAge=3600',
      'KillWait=5',
      ...accountingLines,
      'JobAcctGatherType=jobacct_gather/linux',
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${dir}/log/jobcomp.txt`,
      `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memoryMb} State=UNKNOWN`,
      'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  if (accounting) {
    await writeFile(
      path.join(dir, 'etc', 'slurmdbd.conf'),
      [
        'AuthType=auth/munge',
        `AuthInfo=socket=${socket}`,
        'DbdHost=localhost',
        'DbdAddr=127.0.0.1',
        `DbdPort=${dbdPort}`,
        'SlurmUser=root',
        `LogFile=${dir}/log/slurmdbd.log`,
        `PidFile=${dir}/run/slurmdbd.pid`,
        'StorageType=accounting_storage/mysql',
        'StorageHost=127.0.0.1',
        `StoragePort=${dbPort}`,
        'StorageUser=root',
        'StorageLoc=slurm_acct_db',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  }

  /** Starts a daemon in its own session, in the foreground (its pid is the child's). */
  const launch = (name, command, args) => {
    const child = execa(command, args, {
      env,
      detached: true,
      stdin: 'ignore',
      stdout: { file: path.join(dir, 'log', `${name}.stdout`) },
      stderr: { file: path.join(dir, 'log', `${name}.stderr`) },
      reject: false,
      cleanup: false,
    });
    if (child.pid === undefined) throw new Error(`Slurm launcher: ${command} did not start`);
    started.push({ name, pid: child.pid, done: child });
    return child;
  };
  const run = (command, args, timeout = 30_000) => execa(command, args, { env, timeout, reject: false, all: true });

  const jobIds = async () => {
    const queue = await run('squeue', ['-h', '-o', '%A']);
    return queue.exitCode === 0 ? queue.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())) : [];
  };
  const stop = async () => {
    // Jobs first, while the controller still runs: their slurmstepd processes end with them.
    if (started.some((d) => d.name === 'slurmctld') && alive(started.find((d) => d.name === 'slurmctld').pid)) {
      const ids = await jobIds().catch(() => []);
      if (ids.length > 0) {
        await run('scancel', ids);
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline && (await jobIds().catch(() => [])).length > 0) {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    }
    // Then the daemons, last started first.
    for (const daemon of [...started].reverse()) {
      if (alive(daemon.pid)) {
        try {
          process.kill(daemon.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      const deadline = Date.now() + 10_000;
      while (alive(daemon.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      if (alive(daemon.pid)) {
        try {
          process.kill(daemon.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await daemon.done;
    }
    started.length = 0;
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const key = path.join(dir, 'munge', 'munge.key');
    const made = await run('mungekey', ['--create', `--keyfile=${key}`]);
    if (made.exitCode !== 0) throw new Error(`mungekey failed: ${made.all}`);
    launch('munged', 'munged', [
      '--foreground',
      `--key-file=${key}`,
      `--socket=${socket}`,
      `--pid-file=${dir}/run/munged.pid`,
      `--log-file=${dir}/log/munged.log`,
      `--seed-file=${dir}/munge/munged.seed`,
    ]);
    await until('munged', 20, async () => existsSync(socket));
    if (accounting) {
      const db = path.join(dir, 'db');
      const installed = await run(
        'mariadb-install-db',
        [
          '--no-defaults',
          `--datadir=${db}`,
          '--user=root',
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
        ],
        120_000,
      );
      if (installed.exitCode !== 0) throw new Error(`mariadb-install-db failed: ${installed.all}`);
      const dbSocket = path.join(dir, 'run', 'mysqld.sock');
      launch('mariadbd', 'mariadbd', [
        '--no-defaults',
        `--datadir=${db}`,
        '--user=root',
        '--bind-address=127.0.0.1',
        `--port=${dbPort}`,
        `--socket=${dbSocket}`,
        `--pid-file=${dir}/run/mariadbd.pid`,
        `--log-error=${dir}/log/mariadbd.log`,
        '--skip-name-resolve',
        '--innodb-buffer-pool-size=16M',
        '--innodb-log-file-size=16M',
      ]);
      await until(
        'MariaDB',
        60,
        async () =>
          (await run('mariadb', ['--no-defaults', `--socket=${dbSocket}`, '-uroot', '-e', 'SELECT 1'])).exitCode === 0,
      );
      launch('slurmdbd', 'slurmdbd', ['-D']);
      await until('slurmdbd', 60, async () => (await run('sacctmgr', ['-n', '-P', 'list', 'cluster'])).exitCode === 0);
      const cluster = await run('sacctmgr', ['-i', 'add', 'cluster', 'ci']);
      if (cluster.exitCode !== 0 && !/already exists/i.test(cluster.all))
        throw new Error(`sacctmgr add cluster failed: ${cluster.all}`);
    }
    launch('slurmctld', 'slurmctld', ['-D']);
    await until('slurmctld', 30, async () => (await run('scontrol', ['ping'])).stdout.includes('is UP'));
    launch('slurmd', 'slurmd', ['-D', '-N', 'localhost']);
    await until(
      'the node to be idle',
      30,
      async () => (await run('sinfo', ['-h', '-N', '-o', '%t'])).stdout.trim() === 'idle',
    );
    return { dir, conf, env: { SLURM_CONF: conf }, accounting, cpus, partition: 'debug', cluster: 'ci', stop };
  } catch (error) {
    const logs = path.join(dir, 'log');
    const tails = [];
    for (const name of ['munged.log', 'mariadbd.log', 'slurmdbd.log', 'slurmctld.log', 'slurmd.log']) {
      const file = path.join(logs, name);
      if (existsSync(file))
        tails.push(`--- ${name}\n${(await readFile(file, 'utf8')).split('\n').slice(-15).join('\n')}`);
    }
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tails.join('\n')}`);
  }
}

// `node scripts/lib/slurm.mjs install [--accounting]`: what .ci/run calls to install the packages.
if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'install') {
  const accounting = process.argv.includes('--accounting');
  installSlurm({ accounting, log: (line) => console.log(line) }).then(
    (done) => console.log(`Slurm: ${done}`),
    (error) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    },
  );
}
