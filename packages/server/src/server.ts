// Starts a whole Flotilla server: store, engine, HTTP. Used by `flotilla serve` and by the
// end-to-end tests; signal handling stays in the CLI.

import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from './config/config.ts';
import { Engine } from './engine/engine.ts';
import { buildApp, type AppState } from './http/app.ts';
import { createLogger } from './logging.ts';
import { openStore } from './store/open-store.ts';
import type { Store } from './store/store.ts';

export interface RunningServer {
  app: FastifyInstance;
  engine: Engine;
  store: Store;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Set when this start created the bootstrap admin token; shown once, never stored. */
  generatedAdminToken: string | null;
  close(): Promise<void>;
}

// Secrets never reach the log, wherever they appear (logging.ts).
export { createLogger };

export async function startServer(params: { config: ServerConfig; log?: Logger; store?: Store }): Promise<RunningServer> {
  const { config } = params;
  const log = params.log ?? createLogger(config);
  const store = params.store ?? await openStore({ url: config.databaseUrl });
  const engine = new Engine({ store, config, log });
  const state: AppState = { shuttingDown: false };
  let app: FastifyInstance | null = null;
  try {
    const { generatedAdminToken } = await engine.start();
    app = await buildApp({ engine, log, state });
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    let closing: Promise<void> | null = null;
    const running: RunningServer = {
      app, engine, store, url, generatedAdminToken,
      close: () => (closing ??= (async () => {
        state.shuttingDown = true;
        await app!.close();
        await engine.stop();
        await store.close();
      })()),
    };
    return running;
  } catch (err) {
    await app?.close().catch(() => {});
    await engine.stop().catch(() => {});
    if (!params.store) await store.close().catch(() => {});
    throw err;
  }
}
