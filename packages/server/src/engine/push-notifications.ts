// A2A push notifications (decisions.md 82-83): an outbox fed from the event stream and sent
// by the maintenance node, at least once, with backoff. Nothing here runs on the hot path: a
// task's events only add its id to a set in memory (on the node that runs this), and a task
// without push configs costs nothing else; the feed and the sender run in their own loop.
//
// - Feed: the tasks whose events arrived since the last pass (all tasks, on the first pass
//   after this node took the duty, and every FULL_PASS_MS as a safety net) that have configs
//   are read; each config whose task's A2A state differs from the one last queued for it gets
//   a notification queued (the task as the A2A Task, built now), guarded on that last state
//   so two nodes racing queue it once. The final state's notification deletes the config.
// - Sender: due deliveries (the oldest of each config, so a client sees them in order) are
//   POSTed with the body the SDK's serializer for the config's A2A version makes, and the
//   config's authentication as the SDK sends it. A 2xx removes the delivery; anything else is
//   retried with backoff, and given up after `a2aPushMaxAttempts`.

import { StreamResponse, type Task } from '@a2a-js/sdk';
import { V1PushNotificationSerializer, type PushNotificationSerializer } from '@a2a-js/sdk/server';
import { V03PushNotificationSerializer } from '@a2a-js/sdk/compat/v0_3/server';
import { a2aStateFinal, a2aStateOf } from '../core/a2a-status.ts';
import { retryDelay, type RetryPolicy } from '../core/retry-policy.ts';
import type { Json } from '../core/types.ts';
import type { A2aPushConfigRecord, A2aPushDeliveryRecord, A2aPushEnqueueItem } from '../store/store.ts';
import { a2aTaskOf } from './a2a-server/a2a-task.ts';
import type { EngineContext } from './context.ts';

/** A full pass over every config this often: events missed while no node ran the duty. */
const FULL_PASS_MS = 60_000;
/** More changed tasks than this between passes: a full pass instead of remembering each. */
const MAX_DIRTY = 10_000;
const SEND_BATCH = 64;
/** Configs read at a time by a full pass. */
const FULL_PASS_PAGE = 500;
const SEND_TIMEOUT_MS = 5_000;
const PUSH_RETRY: RetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 300_000 };
/** The legacy token header (the SDK's default), used when a config has a token and no authentication. */
const TOKEN_HEADER = 'X-A2A-Notification-Token';

const SERIALIZERS: Record<string, PushNotificationSerializer> = {
  '1.0': new V1PushNotificationSerializer(),
  '0.3': new V03PushNotificationSerializer(),
};

export class PushNotifications {
  #ctx: EngineContext;
  #fetch: typeof fetch;
  #dirty = new Set<string>();
  #fullPassDue = true;
  #fullPassAt = -Infinity;
  /** When deliveries may next be due: now after a queue or a full batch, else the earliest not due yet. */
  #nextCheckAt = -Infinity;
  #unsubscribe: (() => void) | null = null;
  #pageSize: number;

  constructor(params: { ctx: EngineContext; fetch?: typeof fetch; pageSize?: number }) {
    this.#ctx = params.ctx;
    this.#fetch = params.fetch ?? fetch;
    this.#pageSize = params.pageSize ?? FULL_PASS_PAGE;
  }

  /** Starts noting which tasks changed (every committed event reaches every node's bus). */
  start(): void {
    this.#unsubscribe ??= this.#ctx.bus.subscribe((event) => {
      if (event.taskId === null || this.#fullPassDue) return;
      this.#dirty.add(event.taskId);
      if (this.#dirty.size > MAX_DIRTY) {
        this.#dirty.clear();
        this.#fullPassDue = true;
      }
    });
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** This node does not run the duty now: what it noted is another node's to find (full pass). */
  notLeading(): void {
    this.#dirty.clear();
    this.#fullPassDue = true;
    this.#nextCheckAt = -Infinity;
  }

  /** One pass: queue what changed, then send what is due. The maintenance loop calls it on one node. */
  async sweep(): Promise<void> {
    await this.feed();
    await this.send();
  }

  async feed(): Promise<number> {
    const now = this.#ctx.now();
    const full = this.#fullPassDue || now - this.#fullPassAt >= FULL_PASS_MS;
    const ids = [...this.#dirty];
    this.#dirty.clear();
    if (full) {
      this.#fullPassDue = false;
      this.#fullPassAt = now;
      this.#nextCheckAt = -Infinity;
    } else if (ids.length === 0) {
      return 0;
    }
    let queued = 0;
    if (full) {
      // A page at a time: the pass reads every config, and a fleet may hold many.
      let after: { taskId: string; id: string } | null = null;
      for (;;) {
        const page = await this.#ctx.store.a2aPushConfigPage({ after, limit: this.#pageSize });
        queued += await this.#queue(page, now);
        if (page.length < this.#pageSize) break;
        const last = page[page.length - 1]!;
        after = { taskId: last.taskId, id: last.id };
      }
    } else {
      queued = await this.#queue(await this.#ctx.store.a2aPushConfigList({ taskIds: ids }), now);
    }
    if (queued > 0) this.#nextCheckAt = -Infinity;
    return queued;
  }

  /** Queues a notification for each config whose task's A2A state is not the one last queued for it. */
  async #queue(configs: A2aPushConfigRecord[], now: number): Promise<number> {
    if (configs.length === 0) return 0;
    const tasks = new Map((await this.#ctx.store.taskGetMany({ ids: [...new Set(configs.map((c) => c.taskId))] })).map((t) => [t.id, t]));
    const items: A2aPushEnqueueItem[] = [];
    for (const config of configs) {
      const task = tasks.get(config.taskId);
      // Deleted by retention before its end was queued (or never existed): nothing will follow.
      if (task === undefined) {
        await this.#ctx.store.a2aPushConfigDelete({ taskId: config.taskId, id: config.id });
        continue;
      }
      const state = a2aStateOf(task);
      if (state === config.lastState) continue;
      items.push({
        taskId: config.taskId, configId: config.id, expectedState: config.lastState, state, final: a2aStateFinal(state),
        payload: StreamResponse.toJSON({ payload: { $case: 'task', value: a2aTaskOf(task) } }) as Json, nextAt: now, createdAt: now,
      });
    }
    return this.#ctx.store.a2aPushEnqueue({ items });
  }

  async send(): Promise<void> {
    const now = this.#ctx.now();
    if (now < this.#nextCheckAt) return;
    const { deliveries, nextAt } = await this.#ctx.store.a2aPushDue({ now, limit: SEND_BATCH });
    // A delivery behind one of its config's that fails now is due at once: look again next pass.
    this.#nextCheckAt = deliveries.length > 0 ? -Infinity : nextAt ?? Infinity;
    await Promise.all(deliveries.map((d) => this.#deliver(d)));
  }

  async #deliver(d: A2aPushDeliveryRecord): Promise<void> {
    let problem: string | null;
    try {
      const serializer = SERIALIZERS[d.wireVersion] ?? SERIALIZERS['1.0']!;
      const response = StreamResponse.fromJSON(d.payload);
      const task = response.payload?.$case === 'task' ? response.payload.value : undefined;
      const { body, contentType } = serializer.serialize(response, task as Task | undefined);
      const headers: Record<string, string> = { 'content-type': contentType };
      if (d.authScheme !== null && d.authScheme !== '') headers.authorization = `${d.authScheme} ${d.authCredentials ?? ''}`.trim();
      else if (d.token !== null && d.token !== '') headers[TOKEN_HEADER] = d.token;
      // No redirects: a receiver's answer is its own, and a redirect could point anywhere.
      const res = await this.#fetch(d.url, { method: 'POST', body, headers, redirect: 'manual', signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
      await res.body?.cancel().catch(() => {});
      problem = res.ok ? null : `the receiver answered ${res.status}`;
    } catch (err) {
      problem = `not delivered: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`;
    }
    if (problem === null) return this.#ctx.store.a2aPushDone({ id: d.id });
    const attempts = d.attempts + 1;
    const log = { taskId: d.taskId, configId: d.configId, attempts, problem };
    if (attempts >= this.#ctx.config.a2aPushMaxAttempts) {
      this.#ctx.log.warn(log, 'A2A push notification given up');
      return this.#ctx.store.a2aPushDone({ id: d.id });
    }
    const nextAt = this.#ctx.now() + retryDelay(PUSH_RETRY, attempts, this.#ctx.random());
    this.#ctx.log.info(log, 'A2A push notification failed; will retry');
    await this.#ctx.store.a2aPushRetry({ id: d.id, attempts, nextAt, error: problem });
  }
}
