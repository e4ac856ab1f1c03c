// CPU time a process has used (all its threads, user + system), from /proc/<pid>/stat
// (Linux): what a phase cost the server, and what the load processes took from the same
// cores. In clock ticks of 1/100 s (USER_HZ, 100 on every Linux architecture Node runs on).

import { readFileSync } from 'node:fs';

const USER_HZ = 100;

/** CPU seconds so far; null where /proc/<pid>/stat cannot be read. */
function cpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** A CPU meter over several processes: `stop()` gives each one's CPU seconds since `start`. */
export function cpuMeter(pids: Record<string, number>): { stop(): Record<string, number | null> } {
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return {
    stop: () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => {
      const from = start[name];
      const to = cpuSeconds(pid);
      return [name, from === null || from === undefined || to === null ? null : to - from];
    })),
  };
}
