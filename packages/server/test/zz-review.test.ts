import assert from 'node:assert/strict';
import { it } from 'node:test';
import { openPostgresStore } from '../src/store/postgres/postgres-store.ts';
import { plainEvent } from '../src/store/conformance/harness.ts';
import pg from 'pg';
const URL = 'postgres://postgres@127.0.0.1:5432/test';
it('poison event fails batch-mates', async () => {
  const schema = 'zz_review_' + Date.now();
  const store = await openPostgresStore({ url: URL, schema });
  try {
    const a = store.eventAppend({ events: [plainEvent('innocent')] });
    const b = store.eventAppend({ events: [plainEvent('poison', { data: { s: 'x\u0000y' } })] });
    const [ra, rb] = await Promise.allSettled([a, b]);
    console.log('A', ra.status, ra.status === 'rejected' ? String((ra as any).reason) : '');
    console.log('B', rb.status, rb.status === 'rejected' ? String((rb as any).reason) : '');
  } finally {
    await store.close();
    const admin = new pg.Client({ connectionString: URL }); await admin.connect();
    await admin.query(`DROP SCHEMA "${schema}" CASCADE`); await admin.end();
  }
});
