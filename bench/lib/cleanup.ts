// Everything the bench starts is registered here and torn down on every way out: normal
// end, a failure, SIGINT/SIGTERM. Child processes are killed (SIGKILL if a graceful stop
// did not already end them); cleanup steps (drop the database, remove the temp dir) run
// newest first.

import type { ChildProcess } from 'node:child_process';

const processes = new Set<ChildProcess>();
const steps: Array<() => Promise<void> | void> = [];
let cleaning: Promise<void> | null = null;

export function trackProcess(proc: ChildProcess): void {
  processes.add(proc);
  proc.once('exit', () => processes.delete(proc));
}

/** Registers a cleanup step; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(step: () => Promise<void> | void): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    await step();
  };
  steps.push(once);
  return async () => {
    const i = steps.indexOf(once);
    if (i >= 0) steps.splice(i, 1);
    await once();
  };
}

function killAll(): void {
  for (const proc of processes) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    killAll();
    while (steps.length > 0) {
      const step = steps.pop()!;
      try {
        await step();
      } catch (err) {
        console.error(`bench cleanup: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}

let installed = false;
let signalled = false;

/** True once SIGINT/SIGTERM started the cleanup (errors after that are its echo). */
export function interrupted(): boolean {
  return signalled;
}

/** SIGINT/SIGTERM: clean up, then exit 130/143. A plain exit still kills the children. */
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      signalled = true;
      console.error(`\nbench: ${signal}, cleaning up`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
  process.once('exit', killAll);
}
