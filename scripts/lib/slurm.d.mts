export interface SlurmCluster {
  /** The directory holding everything the cluster has (removed by stop()). */
  dir: string;
  /** Its slurm.conf: SLURM_CONF for every client command. */
  conf: string;
  env: { SLURM_CONF: string };
  accounting: boolean;
  cpus: number;
  partition: string;
  cluster: string;
  stop(): Promise<void>;
}
/** The binaries that are missing for a cluster with or without accounting (empty: it can start). */
export function slurmMissing(accounting?: boolean): string[];
export function slurmAvailable(accounting?: boolean): boolean;
/** Installs the missing Debian packages (root only). */
export function installSlurm(options?: { accounting?: boolean; log?: (line: string) => void }): Promise<string>;
/** Starts a throw-away one-node cluster on loopback; stop() ends exactly what it started. */
export function startSlurm(options?: { accounting?: boolean; cpus?: number; memoryMb?: number }): Promise<SlurmCluster>;
