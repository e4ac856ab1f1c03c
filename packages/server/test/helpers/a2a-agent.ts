// Starts the test A2A agent (test/fixtures/a2a-agents/agent.ts) as a real process on
// 127.0.0.1, port 0, and reads what it received.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const AGENT = fileURLToPath(new URL('../fixtures/a2a-agents/agent.ts', import.meta.url));

export interface A2aAgentProcess {
  url: string;
  /** Every message the agent received: its id, the A2A task it went to, its input as JSON text, its metadata. */
  seen(): Promise<Array<{ messageId: string; taskId: string; text: string; metadata: Record<string, unknown> }>>;
  /** How often its card was asked for, and served (after `--card-delay-ms`). */
  cards(): Promise<{ asked: number; served: number }>;
  /** The A2A task ids it was asked to cancel (tasks/cancel). */
  canceled(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startA2aAgent(kind: string, extra: string[] = []): Promise<A2aAgentProcess> {
  const proc = spawn(process.execPath, [AGENT, '--kind', kind, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a2a agent (${kind}) did not start in 30 s: ${out}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`a2a agent (${kind}) exited with ${code}: ${out}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async seen() {
      return (await (await fetch(`${url}/seen`)).json()).seen;
    },
    async cards() {
      return (await (await fetch(`${url}/seen`)).json()).cards;
    },
    async canceled() {
      return (await (await fetch(`${url}/seen`)).json()).canceled;
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Waits for `check` to return a value (not undefined/false), up to `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
