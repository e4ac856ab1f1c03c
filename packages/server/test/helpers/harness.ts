// An in-process Flotilla (real SQLite store in a temp dir, or with `store: 'postgres'` a
// PostgreSQL schema of its own, dropped on close; real engine, Fastify app driven with
// app.inject) with a controllable clock. Background loops are effectively off (hour-
// long intervals): tests call `engine.reaper.sweep()` after `advance(ms)`, so lease,
// timeout and grace behaviour is tested deterministically, without sleeps.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { AgentSpec, LeasedTask, TaskSpec, TaskView } from '@flotilla/sdk';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/config/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { buildApp } from '../../src/http/app.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { postgresAvailable, type TestSchema } from './postgres.ts';

export const TOKEN = 'test-admin-token-0123456789';

export interface ApiResponse<T = any> { status: number; body: T; headers: Record<string, unknown> }

export type Harness = Awaited<ReturnType<typeof harness>>;

export async function harness(opts: {
  config?: Partial<ServerConfig>;
  /** The database: a SQLite file in a temp dir (the default), or a fresh PostgreSQL schema (see postgres.ts). */
  store?: 'sqlite' | 'postgres';
  /** The server's logger (silent by default); a test that checks what is logged passes its own. */
  log?: Logger;
  /** The deferred start's window (10 ms by default), for tests that must act inside it. */
  startWriteDelayMs?: number;
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-test-'));
  let schema: TestSchema | null = null;
  // Loaded only when asked for: most tests never touch PostgreSQL.
  if (opts.store === 'postgres') schema = await (await import('./postgres.ts')).createTestSchema('harness');
  const store = await openStore({ url: schema ? schema.url : join(dir, 'flotilla.db') });
  let offset = 0;
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    adminToken: TOKEN,
    logLevel: 'silent',
    reaperIntervalMs: 3_600_000,
    a2aPushIntervalMs: 3_600_000,
    retentionIntervalMs: 3_600_000,
    webhookIntervalMs: 3_600_000,
    scheduleSweepMs: 3_600_000,
    ...opts.config,
  };
  const log = opts.log ?? pino({ level: 'silent' });
  const engine = new Engine({
    store, config, log, clock: { now: () => Date.now() + offset },
    ...(opts.startWriteDelayMs === undefined ? {} : { startWriteDelayMs: opts.startWriteDelayMs }),
  });
  await engine.start();
  const app = await buildApp({ engine, log });

  async function api<T = any>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const res = await app.inject({
      method: method as 'GET',
      url: url.startsWith('/api/') || url.startsWith('/healthz') || url.startsWith('/readyz') ? url : `/api/v1${url}`,
      headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null, headers: res.headers };
  }

  async function agent(spec: AgentSpec): Promise<void> {
    const res = await api('POST', '/agents', spec);
    if (res.status !== 201) throw new Error(`agent create failed: ${JSON.stringify(res.body)}`);
  }

  async function submit(spec: TaskSpec): Promise<TaskView> {
    const res = await api<TaskView>('POST', '/tasks', spec);
    if (res.status !== 201) throw new Error(`submit failed ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async function register(agentName: string, extra: { site?: string; maxConcurrency?: number; replicaId?: string } = {}): Promise<string> {
    const res = await api('POST', '/workers/register', { agent: agentName, ...extra });
    if (res.status !== 201) throw new Error(`register failed: ${JSON.stringify(res.body)}`);
    return res.body.replica.id as string;
  }

  async function lease(replicaId: string, max = 1, waitMs = 0): Promise<LeasedTask[]> {
    const res = await api('POST', `/workers/${replicaId}/lease`, { max, waitMs });
    if (res.status !== 200) throw new Error(`lease failed ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body.assignments as LeasedTask[];
  }

  async function task(id: string): Promise<TaskView> {
    return (await api<TaskView>('GET', `/tasks/${id}`)).body;
  }

  return {
    dir, store, engine, app, config, api, agent, submit, register, lease, task,
    /** The PostgreSQL schema the store lives in (null on SQLite). */
    schema,
    advance(ms: number) { offset += ms; },
    now: () => engine.ctx.now(),
    /** Listens on 127.0.0.1 (a free port) for real HTTP and WebSocket clients; returns `http://127.0.0.1:PORT`. */
    listen(): Promise<string> {
      return app.listen({ host: '127.0.0.1', port: 0 });
    },
    async close() {
      await app.close();
      await engine.stop();
      await store.close();
      await schema?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `fn` with a harness on `store`, closed afterwards. Without a reachable PostgreSQL a
 * postgres run is skipped (and fails in CI, where PostgreSQL is required).
 */
export async function withHarness(t: TestContext, store: 'sqlite' | 'postgres', fn: (h: Harness) => Promise<void>, opts: Parameters<typeof harness>[0] = {}): Promise<void> {
  if (store === 'postgres' && !(await postgresAvailable())) {
    if (process.env.CI === 'true') assert.fail('PostgreSQL is not reachable (required in CI)');
    return t.skip('PostgreSQL is not reachable');
  }
  const h = await harness({ ...opts, store });
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

/**
 * Makes the engine's calls of the store's `method` (after the first `skip`) wait until
 * `release` (each then goes to the real store, which is untouched), to hold the engine at
 * that point. `inside` resolves when the first held call has arrived; `release` also puts the
 * method back.
 */
export function holdStoreCall(store: Store, method: 'taskCandidates' | 'taskGetMany' | 'taskCreate' | 'taskTransition' | 'assignmentListByReplica', skip = 0): { inside: Promise<void>; release: () => void } {
  const real = store[method];
  let arrived!: () => void;
  const inside = new Promise<void>((resolve) => (arrived = resolve));
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let calls = 0;
  const held = async (params: never): Promise<never> => {
    if (calls++ >= skip) {
      arrived();
      await gate;
    }
    return (real as (p: never) => Promise<never>).call(store, params);
  };
  (store as unknown as Record<string, unknown>)[method] = held;
  return {
    inside,
    release: () => {
      (store as unknown as Record<string, unknown>)[method] = real;
      open();
    },
  };
}
