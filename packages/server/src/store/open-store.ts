// Chooses the store for a database URL:
//   postgres://user@host:5432/db[?schema=name]  → the PostgreSQL store (multi-node); the
//       optional `schema` parameter keeps Flotilla's tables in their own schema (default public)
//   anything else                               → a SQLite file path (or `:memory:`), `sqlite:` prefix optional
// The PostgreSQL driver is loaded only when a PostgreSQL URL is given.

import type { Store } from './store.ts';

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** Splits Flotilla's own `schema` parameter off a PostgreSQL URL. */
export function parsePostgresUrl(url: string): { url: string; schema: string } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.searchParams.delete('schema');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`schema "${schema}" must be a plain identifier (letters, digits, underscore)`);
  }
  return { url: parsed.toString(), schema };
}

/**
 * Opens the store for a URL. Both stores apply pending migrations as they open (under a lock
 * on PostgreSQL, so several servers starting at once are safe), so an opened store is ready.
 */
export async function openStore(params: { url: string; applicationName?: string }): Promise<Store> {
  if (isPostgresUrl(params.url)) {
    const { openPostgresStore } = await import('./postgres/postgres-store.ts');
    const { url, schema } = parsePostgresUrl(params.url);
    return openPostgresStore({ url, schema, applicationName: params.applicationName ?? 'flotilla' });
  }
  const { openSqliteStore } = await import('./sqlite/sqlite-store.ts');
  return openSqliteStore({ path: sqlitePath(params.url) });
}

/** The file a SQLite URL names (`sqlite:` prefix optional). */
export function sqlitePath(url: string): string {
  return url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
}
