// docs/protocol.md §5's error table is the one the code renders (scripts/error-table.ts, from
// ERROR_STATUS and ERROR_DESCRIPTIONS in packages/sdk/src/errors.ts), and its hand-written
// "what a worker does" table has one row for each of WORKER_ERROR_CODES and no other. Also
// that the check notices what it is there to notice, and that the script's --check fails
// on a stale document and passes once the script has rewritten it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ERROR_DESCRIPTIONS, ERROR_STATUS, WORKER_ERROR_CODES } from '@flotilla/sdk';
import { between, problems, renderErrorTable, TABLE_MARKERS, withTable, WORKER_MARKERS, workerTableCodes } from '../../../scripts/error-table.ts';

const SCRIPT = fileURLToPath(new URL('../../../scripts/error-table.ts', import.meta.url));
const DOC_PATH = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url));
const doc = readFileSync(DOC_PATH, 'utf8');

describe('the error table of docs/protocol.md', () => {
  it('is the one the code renders, and the worker table covers exactly WORKER_ERROR_CODES', () => {
    assert.deepEqual(problems(doc), []);
    // Every code of the table, with its status, is in the document.
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      assert.ok(between(doc, TABLE_MARKERS).includes(`| \`${code}\` | ${status} |`), `${code} ${status} is in the table`);
    }
    for (const code of WORKER_ERROR_CODES) assert.ok(Object.hasOwn(ERROR_STATUS, code), `${code} is a code`);
  });

  it('a code, status or description the document does not have is noticed', () => {
    const added = renderErrorTable({ ...ERROR_STATUS, TEAPOT: 418 }, { ...ERROR_DESCRIPTIONS, TEAPOT: 'short and stout' });
    assert.match(problems(doc, { table: added }).join('\n'), /the error table differs/);
    const moved = renderErrorTable({ ...ERROR_STATUS, UPGRADE_REQUIRED: 400 });
    assert.match(problems(doc, { table: moved }).join('\n'), /the error table differs/);
    const reworded = renderErrorTable(ERROR_STATUS, { ...ERROR_DESCRIPTIONS, INTERNAL: 'something else' });
    assert.match(problems(doc, { table: reworded }).join('\n'), /the error table differs/);
    // A code without a line of meaning cannot be rendered at all (the SDK's type forbids it too).
    assert.throws(() => renderErrorTable({ ...ERROR_STATUS, TEAPOT: 418 }), /TEAPOT has no description/);
    assert.throws(() => renderErrorTable(ERROR_STATUS, { ...ERROR_DESCRIPTIONS, INTERNAL: 'two\nlines' }), /more than one line/);
  });

  it('a worker code without a row, a row for another code, and a repeated row are noticed', () => {
    assert.match(problems(doc, { workerCodes: [...WORKER_ERROR_CODES, 'IDEMPOTENCY_CONFLICT'] }).join('\n'), /no row for IDEMPOTENCY_CONFLICT/);
    assert.match(problems(doc, { workerCodes: WORKER_ERROR_CODES.filter((c) => c !== 'NOT_REGISTERED') }).join('\n'), /rows for NOT_REGISTERED, which WORKER_ERROR_CODES does not list/);
    const row = between(doc, WORKER_MARKERS).split('\n').find((line) => line.startsWith('| `REPLICA_MISMATCH` |'))!;
    assert.ok(row, 'the worker table has a REPLICA_MISMATCH row');
    assert.match(problems(doc.replace(row, `${row}\n${row}`)).join('\n'), /more than one row for REPLICA_MISMATCH/);
    assert.match(problems(doc.replace(`${row}\n`, '')).join('\n'), /no row for REPLICA_MISMATCH/);
    assert.equal(workerTableCodes(doc).length, WORKER_ERROR_CODES.length);
    assert.throws(() => problems(doc.replace(TABLE_MARKERS.end, '')), /expected exactly one/);
  });

  it('the script: --check fails on a stale copy; without it, it rewrites the table, and then --check passes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-error-table-'));
    try {
      const file = join(dir, 'protocol.md');
      const stale = withTable(doc, renderErrorTable({ ...ERROR_STATUS, UPGRADE_REQUIRED: 400 }));
      writeFileSync(file, stale);
      const run = (...args: string[]) => promisify(execFile)(process.execPath, [SCRIPT, ...args, file]).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
      const checked = await run('--check');
      assert.equal(checked.code, 1, checked.out);
      assert.match(checked.out, /the error table differs/);
      assert.equal(readFileSync(file, 'utf8'), stale, '--check changes nothing');
      const rewritten = await run();
      assert.equal(rewritten.code, 0, rewritten.out);
      assert.equal(readFileSync(file, 'utf8'), doc);
      assert.equal((await run('--check')).code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
