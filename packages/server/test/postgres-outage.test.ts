// Database outage on PostgreSQL, a cut network: the server stays up, /readyz says not ready,
// submits, reads, worker reports and WebSocket upgrades get 503 STORE_UNAVAILABLE with
// Retry-After (never a false 201, never a 500, never a 429 for a valid principal), and
// everything recovers by itself when the database returns, with no accepted task lost and no
// worker report dropped (helpers/postgres-outage.ts). The outage is a cut TCP proxy between
// this server and the shared PostgreSQL, so other tests are not disturbed. The other kind of
// outage, a database that refuses connections, is postgres-outage-refused.test.ts.
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.ts';
import { runOutageScenario, startOutageServer } from './helpers/postgres-outage.ts';
import { createTestSchema, PG_URL, postgresAvailable, type TestSchema } from './helpers/postgres.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

const available = await postgresAvailable();
let proxy: TcpProxy;
let schema: TestSchema;
let server: RunningServer;

describe('PostgreSQL outage: a cut network', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    const target = new URL(PG_URL);
    proxy = await new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }).start();
    const viaProxy = new URL(PG_URL);
    viaProxy.port = String(proxy.port);
    schema = await createTestSchema('flotilla_out', viaProxy.toString());
    server = await startOutageServer(schema.url);
  });
  after(async () => {
    proxy?.restore();
    await server?.close();
    await proxy?.close();
    await schema?.drop();
  });

  it('stays up, refuses honestly (503 with Retry-After, never 429) while the network is cut, and recovers by itself', { timeout: 60_000 }, async () => {
    await runOutageScenario(server, {
      // Every open connection (pool, LISTEN, leadership) is reset, and new ones are refused.
      async begin() { proxy.cut(); },
      async end() { proxy.restore(); },
    });
  });
});
