// Database outage on PostgreSQL, a database that refuses connections: `ALTER DATABASE ...
// ALLOW_CONNECTIONS false` (every new connection fails with SQLSTATE 55000) and every session
// on it terminated (57P01 on the open ones), as an operator does before maintenance. The
// server must answer exactly as for a cut network (helpers/postgres-outage.ts): 503
// STORE_UNAVAILABLE with Retry-After, never 500, never 429 for a valid principal, and recover
// by itself once connections are allowed again.
//
// The test works in a database of its own: refusing connections to the shared `test`
// database would break every other test file running at the same time. It also makes that
// database read-only, as a primary demoted to a standby is after a failover (25006 on writes).
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import assert from 'node:assert/strict';
import type { RunningServer } from '../src/server.ts';
import { FlotillaError } from '../src/core/errors.ts';
import { isUnavailableError, toStoreError } from '../src/store/postgres/errors.ts';
import { call, eventually, runOutageScenario, startOutageServer } from './helpers/postgres-outage.ts';
import { PG_URL, postgresAvailable } from './helpers/postgres.ts';

const available = await postgresAvailable();
const database = `flotilla_out_${randomBytes(5).toString('hex')}`;
let server: RunningServer | undefined;
let created = false;

/** Runs statements on the shared database (never on the one being refused). */
async function admin(...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('PostgreSQL outage: the database refuses connections', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    await admin(`CREATE DATABASE "${database}"`);
    created = true;
    const url = new URL(PG_URL);
    url.pathname = `/${database}`;
    server = await startOutageServer(url.toString());
  });
  after(async () => {
    if (!created) return;
    await admin(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`).catch(() => {});
    await server?.close();
    await admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  });

  it('stays up, refuses honestly (503 with Retry-After, never 500 or 429) while connections are refused, and recovers by itself', { timeout: 60_000 }, async () => {
    await runOutageScenario(server!, {
      async begin() {
        await admin(
          `ALTER DATABASE "${database}" ALLOW_CONNECTIONS false`,
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`,
        );
      },
      async end() {
        await admin(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`);
      },
    });
  });

  it('a database that has become read-only (a standby after a failover) is a 503 for writes, not a 500, and reads go on', { timeout: 30_000 }, async () => {
    const api = (method: string, path: string, body?: unknown) => call(server!, method, `/api/v1${path}`, body);
    assert.equal((await api('POST', '/agents', { name: 'read-only' })).status, 201);
    const existing = await api('POST', '/tasks', { agent: 'read-only', input: 'before read-only' });
    assert.equal(existing.status, 201);
    const terminate = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`;
    await admin(`ALTER DATABASE "${database}" SET default_transaction_read_only = on`, terminate);
    try {
      // The pool's connections were ended; the new ones are read-only.
      await eventually(async () => (await api('POST', '/tasks', { agent: 'read-only', input: 'read-only', idempotencyKey: 'ro-1' })).status !== 201, 10_000, 'writes are refused');
      const refused = await api('POST', '/tasks', { agent: 'read-only', input: 'read-only', idempotencyKey: 'ro-1' });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'STORE_UNAVAILABLE');
      assert.ok(refused.headers.get('retry-after'), 'with Retry-After');
      const read = await api('GET', `/tasks/${existing.body.id}`);
      assert.equal(read.status, 200, 'reads are still served');
    } finally {
      await admin(`ALTER DATABASE "${database}" RESET default_transaction_read_only`, terminate);
    }
    await eventually(async () => {
      const res = await api('POST', '/tasks', { agent: 'read-only', input: 'read-only', idempotencyKey: 'ro-1' });
      return res.status === 201 || res.status === 200;
    }, 10_000, 'writes are accepted again');
  });
});

describe('PostgreSQL errors that mean "unavailable"', () => {
  const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code, severity: 'FATAL' });

  it('are STORE_UNAVAILABLE: connection refused or ended, out of resources, read-only, I/O errors', () => {
    const unavailable = [
      '08000', '08003', '08006', '08001', '08004', // connection exceptions
      '55000', // object_not_in_prerequisite_state: the database does not accept connections
      '57P01', '57P02', '57P03', '57P04', '57P05', // shut down, terminated, starting up, dropped, idle timeout
      '53000', '53100', '53200', '53300', '53400', // insufficient resources, too many connections
      '25006', // read-only transaction: a standby after a failover
      '58000', '58030', // system and I/O errors of the database server
      '55P03', '57014', // lock timeout, statement timeout
    ];
    for (const code of unavailable) {
      assert.equal(isUnavailableError(pgError(code)), true, code);
      const mapped = toStoreError(pgError(code));
      assert.ok(mapped instanceof FlotillaError && mapped.code === 'STORE_UNAVAILABLE', code);
    }
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) assert.equal(isUnavailableError(pgError(code)), true, code);
  });

  it('but a wrong statement, a constraint or a conflict is not', () => {
    for (const code of ['23505', '23503', '42P01', '42601', '22P02', '40001', '40P01', 'XX000', '54000']) {
      assert.equal(isUnavailableError(pgError(code)), false, code);
      assert.ok(!(toStoreError(pgError(code)) instanceof FlotillaError), code);
    }
  });
});
