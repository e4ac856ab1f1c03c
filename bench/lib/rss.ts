// A process's memory as the kernel counts it, from /proc/<pid>/status (Linux): VmRSS, the
// resident set now, and VmHWM, its high-water mark since the process started. The peak is
// exact (the kernel keeps it), where polling RSS could miss a short spike. Megabytes are
// decimal (10^6 bytes), the stricter reading of the "250 MB".

import { readFileSync } from 'node:fs';

export interface Memory {
  rssMB: number;
  peakRssMB: number;
}

/** The process's memory; null where /proc/<pid>/status cannot be read (not Linux, or it is gone). */
export function processMemory(pid: number): Memory | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const mb = (field: string) => {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
    if (kb === undefined) throw new Error(`/proc/${pid}/status has no ${field}`);
    return (Number(kb) * 1024) / 1e6;
  };
  return { rssMB: mb('VmRSS'), peakRssMB: mb('VmHWM') };
}

/** The server's peak RSS so far (MB), or null off Linux. */
export function peakRssMB(pid: number): number | null {
  return processMemory(pid)?.peakRssMB ?? null;
}
