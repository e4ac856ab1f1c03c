// A fresh PostgreSQL database per run, created and dropped through the admin URL
// (FLOTILLA_BENCH_DATABASE_URL, default the local server's `postgres` database).

import pg from 'pg';

export const PG_ADMIN_URL = process.env.FLOTILLA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let counter = 0;

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates an empty database; returns its URL and how to drop it (connections are ended by force). */
export async function createDatabase(): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `flotilla_bench_${process.pid}_${Date.now()}_${counter++}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = async (): Promise<void> => {
    // BENCH_KEEP_DB=1 keeps each run's database for reading afterwards (its events say when
    // each task was created, dispatched and finished); drop it by hand.
    if (process.env.BENCH_KEEP_DB) {
      console.error(`kept ${name}`);
      return;
    }
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  };
  return { name, url: url.toString(), drop };
}

/** `PostgreSQL 15.x ...` and the settings that decide durability. */
export async function postgresInfo(): Promise<{ version: string; synchronousCommit: string; fsync: string }> {
  return admin(async (c) => {
    const version = (await c.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
    const synchronousCommit = (await c.query<{ s: string }>('SHOW synchronous_commit')).rows[0]!.s;
    const fsync = (await c.query<{ s: string }>('SHOW fsync')).rows[0]!.s;
    return { version, synchronousCommit, fsync };
  });
}
