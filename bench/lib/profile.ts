// `--profile DIR`: every process the bench starts (server, submitter, worker) writes a V8
// CPU profile into DIR/<name>/ when it exits. Node refuses --cpu-prof in NODE_OPTIONS, so
// the flags go on each spawned command line.

let profileDir: string | null = null;

export function setProfileDir(dir: string | undefined): void {
  profileDir = dir ?? null;
}

/** Node flags for a process named `name` (empty unless profiling). */
export function profileFlags(name: string): string[] {
  return profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}/${name}`];
}
