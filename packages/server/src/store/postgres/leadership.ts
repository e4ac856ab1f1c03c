// Maintenance leadership with session-level advisory locks. One dedicated session per store
// holds a lock per duty it leads (`pg_try_advisory_lock`, keyed on schema and duty name).
// PostgreSQL releases a session's locks when the session ends, however it ends: a process
// that dies, or whose connection is cut, loses its leadership, and a peer's next call gets it.
//
// Held duties are remembered, so asking again does not stack the lock (session advisory locks
// are re-entrant and would need as many unlocks). Asking again costs one round trip on the
// session: it proves the session, and with it the lock, is still alive. When the session is
// lost, every duty it held is forgotten at once; the next call opens a new session and tries
// again (and fails while a peer holds the lock, as it should).

import type pg from 'pg';
import { isUnavailableError, storeClosed, toStoreError } from './errors.ts';

const CHECK_TIMEOUT_MS = 5_000;

export class Leadership {
  readonly #newClient: () => pg.Client;
  readonly #key: (name: string) => string;
  #client: pg.Client | null = null;
  readonly #held = new Set<string>();
  /** Calls run one at a time on the session (node-postgres runs one query at a time anyway). */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(params: { newClient: () => pg.Client; key: (name: string) => string }) {
    this.#newClient = params.newClient;
    this.#key = params.key;
  }

  /** True while this store holds `name`, acquiring it if it is free. */
  acquire(name: string): Promise<boolean> {
    const next = this.#queue.then(() => this.#acquire(name));
    this.#queue = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    this.#drop();
  }

  async #acquire(name: string): Promise<boolean> {
    if (this.#closed) throw storeClosed();
    const existing = this.#client !== null;
    try {
      return await this.#try(name);
    } catch (err) {
      // Whatever went wrong, the session can no longer vouch for the locks: give them all up.
      this.#drop();
      if (!existing || !isUnavailableError(err)) throw toStoreError(err);
    }
    // An existing session was lost, unnoticed until now: one more try, on a fresh session.
    try {
      return await this.#try(name);
    } catch (err) {
      this.#drop();
      throw toStoreError(err);
    }
  }

  async #try(name: string): Promise<boolean> {
    const client = await this.#session();
    if (this.#held.has(name)) {
      await withTimeout(client.query('SELECT 1'), CHECK_TIMEOUT_MS);
      return true;
    }
    const result = await withTimeout(
      client.query({ text: 'SELECT pg_try_advisory_lock($1::bigint) AS acquired', values: [this.#key(name)] }),
      CHECK_TIMEOUT_MS,
    );
    const acquired = (result.rows[0] as { acquired?: unknown } | undefined)?.acquired === true;
    if (acquired) this.#held.add(name);
    return acquired;
  }

  async #session(): Promise<pg.Client> {
    if (this.#client !== null) return this.#client;
    const client = this.#newClient();
    // Registered before connecting: a session lost at any time drops every duty it held.
    client.on('error', () => this.#lostSession(client));
    client.on('end', () => this.#lostSession(client));
    try {
      await client.connect();
    } catch (err) {
      void client.end().catch(() => {});
      throw err;
    }
    this.#client = client;
    return client;
  }

  #lostSession(client: pg.Client): void {
    if (client === this.#client) this.#drop();
  }

  /** Ends the session (releasing its locks, if it still has any) and forgets every duty. */
  #drop(): void {
    const client = this.#client;
    this.#client = null;
    this.#held.clear();
    if (client !== null) void client.end().catch(() => {});
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Connection terminated: the leadership session did not answer')), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
