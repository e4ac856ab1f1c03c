// Chooses the store for a database URL. A `postgres://` URL needs the PostgreSQL store
// (its own issue); anything else is a SQLite file path (or `:memory:`).

import type { Store } from './store.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';

export async function openStore(params: { url: string }): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(params.url)) {
    throw new Error('the PostgreSQL store is not available in this version; use a SQLite file path');
  }
  const path = params.url.startsWith('sqlite:') ? params.url.slice('sqlite:'.length) : params.url;
  const store = await openSqliteStore({ path });
  await store.migrate();
  return store;
}
