// Parent side of a bench process (bench/processes/*.ts): forked with an IPC channel, it
// answers requests `{ id, op, args }` with `{ id, ok, value | error }` (see link.ts).
// Every child is registered for cleanup; it also exits by itself when the parent goes.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackProcess } from './cleanup.ts';
import { wallNow } from './clock.ts';
import { profileFlags } from './profile.ts';
import type { Reply } from './link.ts';

export class BenchChild {
  readonly name: string;
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  #stderr = '';

  private constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.#proc = proc;
    proc.stderr!.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-10_000);
      process.stderr.write(`[${name}] ${d.toString()}`);
    });
    proc.on('message', (m: Reply) => {
      const w = this.#waiting.get(m.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    this.#exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
      for (const w of this.#waiting.values()) w.reject(new Error(`${name} exited (${code ?? signal}) during a request:\n${this.#stderr}`));
      this.#waiting.clear();
      resolve();
    }));
  }

  get pid(): number {
    return this.#proc.pid!;
  }

  /** Forks bench/processes/<file>.ts and waits until it is ready to take requests. */
  static async start(file: string, name = file): Promise<BenchChild> {
    const path = fileURLToPath(new URL(`../processes/${file}.ts`, import.meta.url));
    const proc = fork(path, [], { execPath: process.execPath, execArgv: [...process.execArgv, ...profileFlags(name)], stdio: ['ignore', 'inherit', 'pipe', 'ipc'], serialization: 'advanced' });
    trackProcess(proc);
    const child = new BenchChild(name, proc);
    await child.request('ping', {});
    return child;
  }

  request<T>(op: string, args: unknown): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#proc.send({ id, op, args });
    });
  }

  /**
   * The child's clock minus ours (ms), from the exchange with the shortest round trip
   * (error at most half of it, returned as `uncertaintyMs`).
   */
  async clockOffset(rounds = 20): Promise<{ offsetMs: number; uncertaintyMs: number }> {
    let best = { offsetMs: 0, uncertaintyMs: Infinity };
    for (let i = 0; i < rounds; i++) {
      const t0 = wallNow();
      const now = await this.request<number>('clock', {});
      const t1 = wallNow();
      if ((t1 - t0) / 2 < best.uncertaintyMs) best = { offsetMs: now - (t0 + t1) / 2, uncertaintyMs: (t1 - t0) / 2 };
    }
    return best;
  }

  /** Asks the child to exit; kills it if it has not within 5 s. */
  async close(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    if (this.#proc.connected) this.#proc.disconnect();
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(timer);
  }
}
