/**
 * What this process may use of the machine: CPUs and memory, as the scheduler and the cgroup
 * (containers, Kubernetes limits) allow; Node itself looks at neither cgroup limit.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

/**
 * CPUs this process may really use: the smaller of what the scheduler allows
 * (`availableParallelism`, which honours affinity masks) and the cgroup CPU quota.
 */
export function availableCores(): number {
  let cores = availableParallelism();
  const quota = cgroupCpuQuota();
  if (quota !== null) cores = Math.min(cores, Math.max(1, Math.floor(quota)));
  return Math.max(1, cores);
}

/** cgroup v2 `cpu.max` ("quota period" or "max period"), else cgroup v1 cfs files; null when unlimited or absent. */
function cgroupCpuQuota(): number | null {
  const v2 = readText('/sys/fs/cgroup/cpu.max');
  if (v2 !== null) {
    const [quota, period] = v2.trim().split(/\s+/);
    if (quota === 'max') return null;
    const q = Number(quota);
    const p = Number(period);
    return q > 0 && p > 0 ? q / p : null;
  }
  const q = Number(readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const p = Number(readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return q > 0 && p > 0 ? q / p : null;
}

let memoryBytes: number | null = null;

/**
 * Physical memory, or the cgroup (container) limit when lower: what the process can have before the
 * OOM killer. Read once: image requests check against it, and it does not change while we run.
 */
export function machineMemoryBytes(): number {
  if (memoryBytes !== null) return memoryBytes;
  let bytes = totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    // "max" (v2) is NaN; v1 writes a huge number for "no limit"; a missing file is the other cgroup version.
    const limit = Number(readText(file)?.trim());
    if (Number.isFinite(limit) && limit > 0) bytes = Math.min(bytes, limit);
  }
  memoryBytes = bytes;
  return bytes;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
