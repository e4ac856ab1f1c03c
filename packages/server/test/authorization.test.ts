// The authorization table walked route by route, role by role: every route answers 401
// without a token (unless public), 403 exactly when the role does not grant the route's
// action, and something else otherwise. Plus: the table names only real routes, and a route
// missing from it stops the server from starting.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { harness, type Harness } from './helpers/harness.ts';
import { ROLES, roleAllows, type Role } from '../src/core/permissions.ts';
import { ROUTE_ACTIONS } from '../src/http/route-actions.ts';
import { installAuth } from '../src/http/auth.ts';

let h: Harness;
const tokens = {} as Record<Role, string>;

before(async () => {
  // One unauthenticated call per route: more routes than the default anonymous budget (60 a minute).
  h = await harness({ config: { rateLimitAnonymousPerMinute: 1_000 } });
  await h.agent({ name: 'analyst' });
  tokens.admin = (await h.api('POST', '/keys', { name: 'admin 2', role: 'admin' })).body.token;
  tokens.operator = (await h.api('POST', '/keys', { name: 'ops', role: 'operator' })).body.token;
  tokens.viewer = (await h.api('POST', '/keys', { name: 'dashboard', role: 'viewer' })).body.token;
  tokens.agent = (await h.api('POST', '/keys', { name: 'worker', role: 'agent', agents: ['analyst'] })).body.token;
  for (const role of ROLES) assert.ok(tokens[role], `a ${role} key was created`);
});
after(() => h.close());

/** Fills path parameters with values that exist where it matters (so an allowed call is not a 403 for another reason). */
function concrete(url: string): string {
  const filled = url.replace(':name', 'analyst').replace(/:[A-Za-z]+/g, 'some-id');
  // The live event stream never ends; an invalid query makes an authorized call end at validation (400).
  return filled.endsWith('/events') ? `${filled}?after=-1` : filled;
}

async function call(method: string, url: string, token: string | null) {
  const res = await h.app.inject({
    method: method as 'GET',
    url: concrete(url),
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    // A valid-looking JSON body for POST/PATCH; what matters here is the answer to authorization.
    ...(method === 'POST' || method === 'PATCH' ? { payload: {} } : {}),
  });
  return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as { error?: { code: string } }) : null };
}

describe('authorization table', () => {
  const entries = Object.entries(ROUTE_ACTIONS).map(([key, requirement]) => {
    const [method, url] = key.split(' ') as [string, string];
    return { method, url, requirement };
  });

  it('every route in the table exists (no stale entries)', async () => {
    for (const { method, url } of entries) {
      if (url.endsWith('/socket')) continue; // WebSocket routes: a plain GET gets the plugin's empty 404
      const res = await call(method, url, tokens.admin);
      assert.notEqual(res.body?.error?.code, 'NOT_FOUND', `${method} ${url} is in the table but no such route exists`);
    }
  });

  for (const { method, url, requirement } of entries) {
    it(`${method} ${url} requires ${requirement}`, async () => {
      const anonymous = await call(method, url, null);
      if (requirement === 'public') {
        assert.notEqual(anonymous.status, 401);
        return;
      }
      assert.equal(anonymous.status, 401, `${method} ${url} without a token`);
      assert.equal(anonymous.body?.error?.code, 'UNAUTHENTICATED');
      for (const role of ROLES) {
        const res = await call(method, url, tokens[role]);
        const allowed = requirement === 'authenticated' || roleAllows(role, requirement);
        // Allowed by the table: not FORBIDDEN. (A route may still refuse the credential for its own
        // reason with its own code: the MCP gateway takes only attempt tokens, ATTEMPT_TOKEN_REQUIRED.)
        if (allowed) assert.notEqual(res.body?.error?.code, 'FORBIDDEN', `${role} must be allowed ${method} ${url} (${JSON.stringify(res.body)})`);
        else {
          assert.equal(res.status, 403, `${role} must be refused ${method} ${url}`);
          assert.equal(res.body?.error?.code, 'FORBIDDEN');
        }
      }
    });
  }

  it('a route missing from the table stops the server from starting', async () => {
    const app = Fastify();
    installAuth(app, h.engine.auth);
    assert.throws(() => app.get('/api/v1/unlisted', async () => 'x'), /not in the authorization table/);
    await app.close();
  });
});
