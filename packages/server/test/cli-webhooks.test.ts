// `flotilla webhooks` and `submit --notify` as real processes against a server process: create
// prints the secret once (ls and show never), a receiver that refuses everything leaves a
// failed delivery that `deliveries` lists and `replay` sends again, rm deletes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli-process.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { webhookReceiver, type Receiver } from './helpers/webhook-receiver.ts';

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('flotilla webhooks', () => {
  let dir: string;
  let server: ServerProcess;
  let r: Receiver;
  const cli = (...args: string[]) => runCli(server.url, args);
  const json = (res: CliResult): any => {
    assert.equal(res.code, 0, `exit ${res.code}: ${res.stderr}`);
    return JSON.parse(res.stdout);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-webhooks-'));
    r = await webhookReceiver();
    server = await startServerProcess({
      database: join(dir, 'flotilla.db'),
      env: { FLOTILLA_WEBHOOK_INTERVAL_MS: '100', FLOTILLA_WEBHOOK_MAX_ATTEMPTS: '2', FLOTILLA_WEBHOOK_RETRY_BASE_MS: '50', FLOTILLA_WEBHOOK_RETRY_MAX_MS: '100' },
    });
  });
  after(async () => {
    await server?.kill();
    await r.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('create, ls, show, deliveries, replay, rm; submit --notify', async () => {
    const created = await cli('webhooks', 'create', '--endpoint', r.url, '--events', 'task.created,task.cancelled', '--description', 'ops');
    assert.equal(created.code, 0, created.stderr);
    const secret = /\n {2}(whsec_\S+)\n/.exec(created.stdout)?.[1];
    assert.ok(secret, created.stdout);
    const id = /^id:\s+(\S+)$/m.exec(created.stdout)![1]!;
    const listed = await cli('webhooks', 'ls');
    assert.match(listed.stdout, new RegExp(id));
    assert.doesNotMatch(listed.stdout + (await cli('webhooks', 'show', id)).stdout, /whsec_/);
    assert.equal(json(await cli('webhooks', 'show', id, '--json')).description, 'ops');
    assert.equal((await cli('webhooks', 'create', '--endpoint', 'ftp://x', '--events', '*')).code, 1);
    assert.equal((await cli('webhooks', 'create', '--endpoint', r.url)).code, 2);

    // The receiver refuses (a wrong secret: 401): two attempts, then parked.
    r.secret = 'whsec_wrong';
    await cli('agents', 'create', 'a');
    const task = json(await cli('submit', '--agent', 'a', '--notify', `${r.url}?n=1`, '--json'));
    await until('the delivery to be parked', async () => json(await cli('webhooks', 'deliveries', id, '--json')).length === 1);
    const [failed] = json(await cli('webhooks', 'deliveries', id, '--json'));
    assert.deepEqual([failed.taskId, failed.eventType, failed.attempts], [task.id, 'task.created', 2]);
    assert.match((await cli('webhooks', 'deliveries', id)).stdout, /task\.created/);
    r.secret = secret;
    assert.match((await cli('webhooks', 'replay', id, '--delivery', failed.id)).stdout, /1 delivery pending again/);
    await until('the replayed delivery', () => r.accepted().some((x) => x.headers['flotilla-delivery-id'] === failed.id));
    // notify: the cancellation goes to the task's own URL, signed with the notify secret.
    // (Not signed with the subscription's secret: the receiver refuses it, and it is parked in the notify list.)
    assert.equal((await cli('cancel', task.id)).code, 0);
    await until('the notify delivery to be parked', async () => json(await cli('webhooks', 'deliveries', 'notify', '--json')).length === 1);
    assert.equal(json(await cli('webhooks', 'deliveries', 'notify', '--json'))[0].eventType, 'task.cancelled');
    assert.ok(r.all.some((x) => x.headers['flotilla-webhook-id'] === 'notify' && !x.valid));
    assert.equal((await cli('webhooks', 'rm', id)).code, 0);
    assert.equal((await cli('webhooks', 'show', id)).code, 1);
  });
});
