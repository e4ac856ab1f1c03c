// Secrets never appear in logs, error answers or events: tokens in headers, in bodies and in
// error messages, database passwords, fields named like secrets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type ServerConfig } from '../src/config/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { buildApp } from '../src/http/app.ts';
import { createLogger, SecretScrubber } from '../src/logging.ts';
import { openStore } from '../src/store/open-store.ts';
import { TOKEN } from './helpers/harness.ts';
import { startServerProcess } from './helpers/server-process.ts';

const WRONG = 'flt_WrongGuessWrongGuessWrongGuess0123';
const IN_BODY = 'body-secret-value-0123456789';
const DB_PASSWORD = 's3cret-db-pw';

describe('secrets in logs', () => {
  it('tokens in headers, bodies and errors reach neither the log, nor an answer, nor an event', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-redact-'));
    let output = '';
    const config: ServerConfig = { ...DEFAULT_CONFIG, adminToken: TOKEN, logLevel: 'trace', reaperIntervalMs: 3_600_000, retentionIntervalMs: 3_600_000 };
    const log = createLogger(config, { write: (line: string) => { output += line; } });
    const store = await openStore({ url: join(dir, 'f.db') });
    const engine = new Engine({ store, config, log });
    await engine.start();
    const app = await buildApp({ engine, log });
    const answers: string[] = [];
    const call = async (method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: object) => {
      const res = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
      answers.push(JSON.stringify(res.headers) + res.body);
      return res;
    };
    try {
      assert.equal((await call('GET', '/api/v1/agents', { authorization: `Bearer ${TOKEN}` })).statusCode, 200);
      assert.equal((await call('POST', '/api/v1/agents', { authorization: `Bearer ${TOKEN}` }, { name: 'summarizer' })).statusCode, 201);
      assert.equal((await call('GET', '/api/v1/agents', { authorization: `Bearer ${WRONG}` })).statusCode, 401);
      assert.equal((await call('POST', '/api/v1/agents', { authorization: `Bearer ${TOKEN}` }, { name: 'a', token: IN_BODY })).statusCode, 400);
      assert.equal((await call('POST', '/api/v1/agents', { authorization: `Bearer ${TOKEN}` }, { name: IN_BODY.replace(/-/g, '_'), token: IN_BODY })).statusCode, 400);
      // An unexpected error whose message carries secrets is logged, and answered without them.
      engine.agents.list = async () => {
        throw new Error(`store exploded: Authorization: Bearer ${TOKEN}; retried with ${WRONG} at postgres://flotilla:${DB_PASSWORD}@db:5432/x`);
      };
      const failed = await call('GET', '/api/v1/agents', { authorization: `Bearer ${TOKEN}` });
      assert.equal(failed.statusCode, 500);
      assert.equal(JSON.parse(failed.body).error.code, 'INTERNAL');
      // Code that logs a secret by mistake.
      log.info({ token: TOKEN, adminToken: TOKEN, nested: { clientSecret: IN_BODY, password: DB_PASSWORD, list: [{ apiKey: WRONG }] }, url: `postgres://u:${DB_PASSWORD}@h/db` }, `connecting with Bearer ${WRONG}`);
      log.error(new Error(`bad token ${WRONG}`));
      app.log.warn({ req: { headers: { authorization: `Bearer ${TOKEN}`, cookie: `s=${IN_BODY}` } } }, 'request seen');
      const events = await call('GET', '/api/v1/events/page?limit=1000', { authorization: `Bearer ${TOKEN}` });
      assert.equal(events.statusCode, 200);
      assert.ok(JSON.parse(events.body).items.length > 0, 'events were recorded');

      assert.match(output, /unhandled error/, 'the error was logged');
      assert.match(output, /store exploded/);
      assert.match(output, /connecting with Bearer \[redacted\]/);
      assert.match(output, /postgres:\/\/flotilla:\*\*\*@db:5432/);
      assert.match(output, /"clientSecret":"\[redacted\]"/);
      for (const secret of [TOKEN, WRONG, IN_BODY, DB_PASSWORD]) {
        assert.ok(!output.includes(secret), `log output contains ${secret}:\n${output}`);
        for (const answer of answers) assert.ok(!answer.includes(secret), `an answer contains ${secret}: ${answer}`);
      }
    } finally {
      await app.close();
      await engine.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the scrubber copies, never changes what it is given', () => {
    const scrubber = new SecretScrubber(['literal-secret-1234']);
    const input = { token: 'abc', deep: { x: 'see literal-secret-1234 here' }, n: 5, tokenCount: 3 };
    const out = scrubber.value(input) as typeof input;
    assert.deepEqual(out, { token: '[redacted]', deep: { x: 'see [redacted] here' }, n: 5, tokenCount: 3 });
    assert.equal(input.token, 'abc');
    const err = Object.assign(new TypeError('has literal-secret-1234'), { code: 'X', password: 'p' });
    const copy = scrubber.value(err) as TypeError & { code: string; password: string };
    assert.ok(copy instanceof TypeError);
    assert.equal(copy.message, 'has [redacted]');
    assert.equal(copy.code, 'X');
    assert.equal(copy.password, '[redacted]');
    assert.equal(err.message, 'has literal-secret-1234');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    assert.doesNotThrow(() => scrubber.value(cyclic));
  });

  it('a real server process binds to 127.0.0.1 by default and logs no token it was sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-redact-'));
    const server = await startServerProcess({ database: join(dir, 'f.db'), env: { FLOTILLA_HOST: '', FLOTILLA_LOG_LEVEL: 'trace' } });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await fetch(`${server.url}/api/v1/agents`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      assert.equal((await fetch(`${server.url}/api/v1/agents`, { headers: { authorization: `Bearer ${WRONG}` } })).status, 401);
      const body = await fetch(`${server.url}/api/v1/agents`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'a', token: IN_BODY }) });
      assert.equal(body.status, 400);
      assert.ok(!(await body.text()).includes(IN_BODY));
      assert.equal(await server.kill('SIGTERM'), 0);
      const output = server.output();
      assert.match(output, /shutting down/, 'the process did log');
      for (const secret of [TOKEN, WRONG, IN_BODY]) assert.ok(!output.includes(secret), `process output contains ${secret}:\n${output}`);
    } finally {
      await server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
