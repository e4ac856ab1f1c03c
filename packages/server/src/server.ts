// Starts a whole Flotilla server: store, engine, HTTP. Used by `flotilla serve` and by the
// end-to-end tests; signal handling stays in the CLI.

import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { redactUrl, type ServerConfig } from './config/config.ts';
import { adminKeyProblem, generateFirstAdminKey } from './engine/api-keys.ts';
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
  /**
   * Set when this start created the bootstrap admin token (a first start without
   * FLOTILLA_ADMIN_TOKEN); to be shown once, since only its hash is stored. Created last,
   * once the server listens: a start that fails stores no key nobody saw.
   */
  generatedAdminToken: string | null;
  /**
   * One line for the operator when no admin may be able to sign in (no active admin key, or
   * FLOTILLA_ADMIN_TOKEN names a revoked one), saying how to get one; null when all is well.
   */
  adminKeyWarning: string | null;
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
    await engine.start();
    app = await buildApp({ engine, log, state });
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    // Last, so nothing can fail between storing the key and the caller printing its secret.
    const { now, newId } = engine.ctx;
    const generatedAdminToken = config.adminToken === null ? await generateFirstAdminKey({ store, now: now(), newId }) : null;
    const problem = generatedAdminToken === null ? await adminKeyProblem({ store, configured: config.adminToken, now: now() }) : null;
    let closing: Promise<void> | null = null;
    const running: RunningServer = {
      app, engine, store, url, generatedAdminToken,
      adminKeyWarning: problem === null ? null : adminKeyWarning(problem, config.databaseUrl),
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

/** A shell word: quoted when it holds anything a shell would treat specially. */
function shellWord(text: string): string {
  return /^[\w./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

function adminKeyWarning(problem: NonNullable<Awaited<ReturnType<typeof adminKeyProblem>>>, databaseUrl: string): string {
  const db = redactUrl(databaseUrl);
  if (problem.kind === 'configured') {
    return `FLOTILLA_ADMIN_TOKEN names a key that is ${problem.status}, so the server refuses that token; `
      + 'use another admin key, or set FLOTILLA_ADMIN_TOKEN to a new secret (at least 16 characters)';
  }
  // A redacted password would be sent as "***": name the variable instead of the URL.
  const hasPassword = db !== databaseUrl;
  const flag = hasPassword ? '--database "$FLOTILLA_DATABASE_URL" (the server\'s database URL, with its password)' : `--database ${shellWord(db)}`;
  return `no usable admin key in ${db} (${problem.reason}): \`flotilla keys bootstrap ${flag}\` creates one and prints its token, `
    + 'or restart with FLOTILLA_ADMIN_TOKEN set to a new secret (at least 16 characters)';
}
