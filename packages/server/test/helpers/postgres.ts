// PostgreSQL for tests: each test file works in its own schema and drops it afterwards.
// Unreachable PostgreSQL skips the file locally, and fails it in CI (CI=true), where the
// multi-node tests must run.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.FLOTILLA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL is required in CI and is not reachable at ${PG_URL}: ${(err as Error).message}`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export interface TestSchema {
  name: string;
  /** The Flotilla database URL for this schema. */
  url: string;
  drop(): Promise<void>;
}

export async function createTestSchema(prefix: string, base = PG_URL): Promise<TestSchema> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${name}"`);
  await admin.end();
  const url = new URL(base);
  url.searchParams.set('schema', name);
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      // Connections of killed servers may linger a moment; they hold no locks we need.
      await c.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      await c.end();
    },
  };
}
