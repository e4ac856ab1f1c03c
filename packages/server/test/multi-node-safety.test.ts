// The safety net under LISTEN/NOTIFY: a node that misses a notification (here: it receives
// none at all) still dispatches work another node created, within a tick or two.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DEFAULT_CONFIG } from '../src/config/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { SYSTEM_PRINCIPAL } from '../src/core/permissions.ts';
import { newTask } from '../src/store/conformance/harness.ts';
import { parsePostgresUrl } from '../src/store/open-store.ts';
import { openPostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { Store } from '../src/store/store.ts';
import { TOKEN } from './helpers/harness.ts';
import { createTestSchema, postgresAvailable, type TestSchema } from './helpers/postgres.ts';

const available = await postgresAvailable();
let schema: TestSchema;
const stores: Store[] = [];
let engine: Engine;

describe('missed notifications', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    schema = await createTestSchema('flotilla_safety');
  });
  after(async () => {
    await engine?.stop();
    await Promise.all(stores.map((s) => s.close()));
    await schema?.drop();
  });

  it('a node that hears no signal still dispatches work created by another node', { timeout: 20_000 }, async () => {
    const { url, schema: name } = parsePostgresUrl(schema.url);
    const own = await openPostgresStore({ url, schema: name });
    const other = await openPostgresStore({ url, schema: name });
    stores.push(own, other);
    // This node's store drops every signal: as if each NOTIFY were lost.
    const deaf = new Proxy(own, {
      get(target, prop) {
        if (prop === 'signalSubscribe') return async () => async () => {};
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    engine = new Engine({ store: deaf, config: { ...DEFAULT_CONFIG, adminToken: TOKEN, reaperIntervalMs: 200 }, log: pino({ level: 'silent' }) });
    await engine.start();
    await engine.agents.create(SYSTEM_PRINCIPAL, { name: 'quiet' });
    const { replica } = await engine.workers.register(SYSTEM_PRINCIPAL, { agent: 'quiet' });
    const started = Date.now();
    const leasing = engine.workers.lease(SYSTEM_PRINCIPAL, { replicaId: replica.id, max: 1, waitMs: 8_000, signal: new AbortController().signal, isConnected: () => true });
    await new Promise((r) => setTimeout(r, 300));
    const task = newTask({ agent: 'quiet', runAt: Date.now() });
    await other.taskCreate({ tasks: [{ task, events: [] }] }); // another node's submit: no local wake
    const leased = await leasing;
    assert.equal(leased[0]?.task.id, task.id, 'dispatched without any signal');
    assert.ok(Date.now() - started < 3_000, `within a couple of ticks (${Date.now() - started} ms)`);
  });
});
