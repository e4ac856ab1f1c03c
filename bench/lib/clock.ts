// One clock for every bench process: wall time in milliseconds with sub-millisecond
// precision. performance.now() alone is per process; performance.timeOrigin anchors it to
// the system clock, so timestamps taken in different processes on one machine compare.
// (Date.now() is whole milliseconds: on average 0.5 ms behind this clock.)

export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
