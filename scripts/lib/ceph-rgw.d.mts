export interface CephRgw {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  dir: string;
  stop(): Promise<void>;
}
/** True when this machine has the binaries the launcher needs (Debian: ceph-mon ceph-osd radosgw ceph-common). */
export function cephAvailable(): boolean;
/** Starts a throw-away Ceph RGW on loopback; stop() ends exactly what it started. */
export function startCephRgw(): Promise<CephRgw>;
