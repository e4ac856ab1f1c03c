// The submitting process: one SDK client per server (one, except for W3's several nodes),
// driven by the bench over IPC (bench/lib/link.ts). With several servers the calls go round
// robin over their clients, so the load is spread evenly.
//   single  W1: `count` tasks, one per submit call, at most `inFlight` calls in flight
//           (each of the `inFlight` lanes keeps to one client)
//   bulk    W1: `count` tasks in submitMany calls of `batch`, one call at a time
//   steady  W2: `count` tasks at `rate` per second on a fixed schedule (open loop: a slow
//           call does not delay the next), the wall clock taken just before each call
//           travelling in the input as `t`
// Times are wall-clock ms (bench/lib/clock.ts); every answer lists the ids created.

import type { Flotilla } from '@flotilla/sdk';
import { closeClient, createClient, type ClientTransport } from '../lib/client.ts';
import { sleep, wallNow } from '../lib/clock.ts';
import { makeInput } from '../lib/input.ts';
import { serveParent } from '../lib/link.ts';
import type { SubmitOutcome } from '../lib/protocol.ts';

let clients: Flotilla[] = [];
/** The client for call (or lane) `i`. */
const api = (i: number) => {
  if (clients.length === 0) throw new Error('connect first');
  return clients[i % clients.length]!;
};

async function closeAll(): Promise<void> {
  const closing = clients;
  clients = [];
  await Promise.all(closing.map(closeClient));
}

interface Load {
  agent: string;
  count: number;
  inputBytes: number;
}

async function single({ agent, count, inputBytes, inFlight }: Load & { inFlight: number }): Promise<SubmitOutcome> {
  const inputs = Array.from({ length: count }, (_, i) => makeInput(i, inputBytes));
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const startMs = wallNow();
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, async (_, lane) => {
    while (next < count) {
      const i = next++;
      ids[i] = (await api(lane).tasks.submit({ agent, input: inputs[i]! })).id;
    }
  }));
  return { startMs, endMs: wallNow(), ids, calls: count };
}

async function bulk({ agent, count, inputBytes, batch }: Load & { batch: number }): Promise<SubmitOutcome> {
  const specs = Array.from({ length: count }, (_, i) => ({ agent, input: makeInput(i, inputBytes) }));
  const ids: string[] = [];
  let calls = 0;
  const startMs = wallNow();
  for (let i = 0; i < count; i += batch) {
    const items = await api(calls).tasks.submitMany(specs.slice(i, i + batch));
    calls++;
    for (const item of items) ids.push(item.task.id);
  }
  return { startMs, endMs: wallNow(), ids, calls };
}

async function steady({ agent, count, inputBytes, rate }: Load & { rate: number }): Promise<SubmitOutcome> {
  const ids: string[] = new Array<string>(count);
  const calls: Array<Promise<void>> = [];
  const interval = 1000 / rate;
  let maxLagMs = 0;
  let failure: unknown = null;
  const startMs = wallNow();
  for (let i = 0; i < count; i++) {
    const due = startMs + i * interval;
    const wait = due - wallNow();
    if (wait > 0) await sleep(wait);
    const t = wallNow();
    maxLagMs = Math.max(maxLagMs, t - due);
    calls.push(api(i).tasks.submit({ agent, input: makeInput(i, inputBytes, t) }).then((task) => void (ids[i] = task.id), (err: unknown) => void (failure ??= err)));
    if (failure) break;
  }
  await Promise.all(calls);
  if (failure) throw failure;
  return { startMs, endMs: wallNow(), ids, calls: count, maxLagMs };
}

serveParent({
  connect: async ({ urls, token, transport }: { urls: string[]; token: string; transport: ClientTransport }) => {
    await closeAll();
    clients = urls.map((url) => createClient(url, token, transport));
  },
  single,
  bulk,
  steady,
  disconnect: closeAll,
}, closeAll);
