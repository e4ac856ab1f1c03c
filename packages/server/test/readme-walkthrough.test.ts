// The README's walk-through, run by scripts/docs-check.ts against a real server (what
// `npm run docs:check` does), and the checker's own rules for comparing an output with the
// README's. `npm test` (and so .ci/run) runs the walk-through here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compareOutputs, hardCodedAddresses, parseBlocks, updatedReadme } from '../../../scripts/docs-check.ts';

const CHECKER = fileURLToPath(new URL('../../../scripts/docs-check.ts', import.meta.url));

describe('docs-check: comparing an output with the README', () => {
  const shown = [
    'submitted 01a1fe1f-c352-77d0-b14a-619ba67f4e57, waiting…',
    '  #5  2026-11-21 12:40:56  task.created  task=01a1fe1f-c352-77d0-b14a-619ba67f4e57  agent=echo  {"type":"echo","priority":5,"runAt":"2026-11-21T12:40:56.914Z"}',
    '  #7  2026-11-21 12:40:56  task.started  task=01a1fe1f-c352-77d0-b14a-619ba67f4e57  agent=echo  replica=01a1fe1f-b207-7294-9fab-359e2b9cdc1b  {"attempt":1}',
    '  #9  2026-11-21 12:40:56  task.completed  task=01a1fe1f-c352-77d0-b14a-619ba67f4e57  agent=echo  {"attempt":1,"durationMs":46}',
    '{"id":"01a1fe21-9d07-73ac-b282-61994fbc60ee","status":"pending","attempt":0,"createdAt":"2026-11-21T12:42:58.183Z","replica":null}',
    '[1] 30599',
  ].join('\n');

  it('masks ids, times, sequence numbers and durations, and leaves out job lines and the start event', () => {
    const run = [
      'submitted 01a234a5-fb4a-7119-ae98-c139122bac82, waiting…',
      '  #12  2026-12-02 02:47:02  task.created  task=01a234a5-fb4a-7119-ae98-c139122bac82  agent=echo  {"type":"echo","priority":5,"runAt":"2026-12-02T02:47:02.729Z"}',
      '  #14  2026-12-02 02:47:02  task.completed  task=01a234a5-fb4a-7119-ae98-c139122bac82  agent=echo  {"attempt":1,"durationMs":12}',
      // The same JSON, keys in another order.
      '{"status":"pending","id":"01a234a5-4610-73fe-af86-cc9304e3abd6","createdAt":"2026-12-02T02:46:16.336Z","attempt":0,"replica":null}',
      '[1]+  Terminated              npx flotilla worker examples/flaky.ts --agent flaky',
    ].join('\n');
    assert.deepEqual(compareOutputs(shown, run), []);
  });

  it('finds a JSON field the README does not show, a changed value, a changed type and a changed line', () => {
    const base = 'submitted 01a234a5-fb4a-7119-ae98-c139122bac82, waiting…\n'
      + '  #5  2026-11-21 12:40:56  task.created  task=01a1fe1f-c352-77d0-b14a-619ba67f4e57  agent=echo  {"type":"echo","priority":5,"runAt":"2026-11-21T12:40:56.914Z"}\n'
      + '  #9  2026-11-21 12:40:56  task.completed  task=01a1fe1f-c352-77d0-b14a-619ba67f4e57  agent=echo  {"attempt":1,"durationMs":46}\n';
    const json = (fields: string) => `${base}{"id":"01a1fe21-9d07-73ac-b282-61994fbc60ee","status":"pending","attempt":0,"createdAt":"2026-11-21T12:42:58.183Z"${fields}}`;
    const extra = compareOutputs(shown, json(',"replica":null,"rootId":"01a1fe21-9d07-73ac-b282-61994fbc60ee"'));
    assert.ok(extra.some((l) => l.includes('$.rootId: in the output')), extra.join('\n'));
    const missing = compareOutputs(shown, json(''));
    assert.ok(missing.some((l) => l.includes('$.replica: in the README, not in the output')), missing.join('\n'));
    const typed = compareOutputs(shown, json(',"replica":"01a1fe1f-b207-7294-9fab-359e2b9cdc1b"'));
    assert.ok(typed.some((l) => l.includes('$.replica: the README shows null')), typed.join('\n'));
    const text = compareOutputs(shown, json(',"replica":null').replace('waiting…', 'waiting'));
    assert.ok(text.some((l) => l.startsWith('- submitted')) && text.some((l) => l.startsWith('+ submitted')), text.join('\n'));
    assert.deepEqual(compareOutputs('{"a":1}', '{"a":2}').filter((l) => l.includes('$.a')).length, 1);
    assert.deepEqual(compareOutputs('{"seq":1,"durationMs":5}', '{"seq":90,"durationMs":17}'), []);
    // The leadership line may come anywhere, but must come.
    const lead = '{"level":30,"duty":"maintenance","msg":"this node now runs maintenance"}';
    assert.deepEqual(compareOutputs(`a\nb\n${lead}`, `a\n${lead}\nb`), []);
    assert.notDeepEqual(compareOutputs(`a\nb\n${lead}`, 'a\nb'), []);
    assert.notDeepEqual(compareOutputs('204', '201'), []);
  });

  it('reads the marked blocks, their terminals and exit statuses, and refuses an address in a command', () => {
    const md = [
      '<!-- docs-check server -->', '```sh', 'npm start', '```', '```', 'listening', '```', '',
      '<!-- docs-check terminal=2 exit=1 -->', '', '```sh', 'false', '```', 'prose', '```', 'not an output', '```',
    ].join('\n');
    const blocks = parseBlocks(md);
    assert.deepEqual(blocks.map((b) => [b.server, b.terminal, b.exit, b.command, b.expected?.text ?? null]), [
      [true, '1', 0, 'npm start', 'listening'],
      [false, '2', 1, 'false', null],
    ]);
    assert.throws(() => parseBlocks('<!-- docs-check loud -->\n```sh\nx\n```'), /unknown word "loud"/);
    assert.deepEqual(hardCodedAddresses('export FLOTILLA_URL=http://127.0.0.1:8080\ncurl -s $FLOTILLA_URL/healthz'), []);
    assert.deepEqual(hardCodedAddresses('curl -s http://127.0.0.1:8080/healthz'), ['127.0.0.1:8080']);
    assert.equal(updatedReadme(md, [{ block: blocks[0]!, output: 'listening again\n' }]).split('\n')[5], 'listening again');
  });
});

describe('docs-check: the README walk-through', () => {
  it('prints what the README shows', { timeout: 420_000 }, async (t) => {
    // Aborted (a timeout, a cancelled run): SIGTERM makes the checker stop what it started.
    const child = spawn(process.execPath, [CHECKER], { stdio: ['ignore', 'pipe', 'pipe'], signal: t.signal, killSignal: 'SIGTERM' });
    child.once('error', () => {});
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    assert.equal(code, 0, `npm run docs:check failed:\n${output}`);
    assert.match(output, /the README matches/);
  });
});
