// W3's idle fleet: many connected clients that cost the server while the measured load runs,
// driven by the bench over IPC (bench/lib/link.ts).
//   workers      `count` SDK workers (createWorker, WebSocket, one slot each) registered for
//                an agent that gets no tasks: each holds a socket and heartbeats
//   subscribers  `count` live event streams (GET /api/v1/events?after=<the newest seq>,
//                Server-Sent Events, every event from then on), each on its own connection;
//                resolves once every stream is open.
//                Raw HTTP rather than the SDK's stream: a subscriber only counts the events it
//                receives, so this process takes as little CPU as it can from the server on
//                the same machine
//   stats        what is connected now, the events each subscriber has received, and any
//                task an idle worker was handed (there must be none)
// When the bench goes this process exits at once: the operating system closes the sockets.

import http from 'node:http';
import { createWorker, type FlotillaWorker } from '@flotilla/sdk';
import { serveParent } from '../lib/link.ts';
import type { FleetStats } from '../lib/protocol.ts';

/** Workers registering at once: enough to connect a thousand in seconds, few enough not to be a storm. */
const CONNECTING = 50;
/** A received event's second line (its first is `id: <seq>`). */
const EVENT_LINE = '\nevent: ';

interface Subscriber {
  events: number;
  open: boolean;
}

const workers: FlotillaWorker[] = [];
const subscribers: Subscriber[] = [];
let tasksHandled = 0;

async function startWorkers({ url, token, agent, count }: { url: string; token: string; agent: string; count: number }): Promise<{ seconds: number }> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(CONNECTING, count) }, async () => {
    while (next < count) {
      next++;
      const worker = createWorker({
        url, token, agent, concurrency: 1,
        handler: () => {
          tasksHandled++;
          return null;
        },
      });
      workers.push(worker);
      await worker.start();
    }
  }));
  return { seconds: (performance.now() - t0) / 1000 };
}

function subscribe(url: string, token: string, after: number): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/api/v1/events?after=${after}`, { agent: false, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`event stream: HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      const sub: Subscriber = { events: 0, open: true };
      // The tail of the previous chunk, shorter than EVENT_LINE: a line split across two
      // chunks is counted once.
      let carry = '';
      res.on('data', (chunk: string) => {
        const text = carry + chunk;
        for (let at = text.indexOf(EVENT_LINE); at >= 0; at = text.indexOf(EVENT_LINE, at + 1)) sub.events++;
        carry = text.slice(-(EVENT_LINE.length - 1));
      });
      res.on('close', () => (sub.open = false));
      resolve(sub);
    });
    req.on('error', reject);
  });
}

async function startSubscribers({ url, token, count, after }: { url: string; token: string; count: number; after: number }): Promise<{ seconds: number }> {
  const t0 = performance.now();
  subscribers.push(...await Promise.all(Array.from({ length: count }, () => subscribe(url, token, after))));
  return { seconds: (performance.now() - t0) / 1000 };
}

function stats(): FleetStats {
  const events = subscribers.map((s) => s.events);
  return {
    workers: workers.length,
    workersRegistered: workers.filter((w) => w.replicaId !== null).length,
    subscribers: subscribers.length,
    subscribersOpen: subscribers.filter((s) => s.open).length,
    eventsPerSubscriber: events.length === 0 ? null : { min: Math.min(...events), max: Math.max(...events) },
    tasksHandled,
  };
}

serveParent({ workers: startWorkers, subscribers: startSubscribers, stats });
