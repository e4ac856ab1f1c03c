// `flotilla keys bootstrap`: a new admin key written straight into the database (a SQLite file
// or a PostgreSQL URL), with no server and no token: the way back in when the first start's
// token was lost, or every admin key is revoked or expired. Whoever can write the database
// has every right anyway, so this grants nothing new. The secret is printed once; only its
// hash is stored, and the creation is in the audit log (principal `system`).

import { existsSync } from 'node:fs';
import { redactUrl } from '../config/config.ts';
import { createAdminKey } from '../engine/api-keys.ts';
import { systemClock } from '../engine/context.ts';
import { apiKeyView } from '../http/views.ts';
import { isPostgresUrl, openStore, sqlitePath } from '../store/open-store.ts';
import { printJson } from './commands/output.ts';
import { CliError, EXIT_USAGE, UsageError } from './commands/errors.ts';
import { serverConfigFromArgs, serverStartFailure } from './server-args.ts';

const DEFAULT_NAME = 'admin (keys bootstrap)';

export async function bootstrapCommand(argv: string[], usage: string): Promise<void> {
  const parsed = serverConfigFromArgs(argv, {
    command: 'keys bootstrap',
    usage,
    synopsis: 'Usage: flotilla keys bootstrap [--database URL] [--config FILE] [--name N] [--json]',
    options: { name: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (parsed === null) return;
  const { config, values } = parsed;
  const name = typeof values.name === 'string' ? values.name.trim() : DEFAULT_NAME;
  if (name === '') throw new UsageError('--name is empty');
  const url = config.databaseUrl;
  const shown = redactUrl(url);
  if (!isPostgresUrl(url)) {
    const path = sqlitePath(url);
    if (path === ':memory:') throw new UsageError('--database :memory: keeps nothing: give the database file the server uses');
    // Opening a path that does not exist would create an empty database, and a key there
    // opens nothing: most likely the path is not the server's.
    if (!path.startsWith('file:') && !existsSync(path)) {
      throw new CliError(`no database at ${path}: give the server's own with --database (or FLOTILLA_DATABASE_URL), `
        + 'or start the server once first (npm start)', EXIT_USAGE);
    }
  }
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore({ url, applicationName: 'flotilla-keys-bootstrap' });
  } catch (err) {
    throw serverStartFailure(err, config) ?? err;
  }
  let created: Awaited<ReturnType<typeof createAdminKey>>;
  try {
    const clock = systemClock();
    created = await createAdminKey({ store, now: clock.now(), newId: clock.newId, name });
    await store.auditAppend({
      entries: [{
        at: clock.now(), principalId: 'system', principalName: 'system', role: 'admin', action: 'key.manage', target: created.key.id,
        outcome: 'allowed', status: 201, requestId: null, source: 'flotilla keys bootstrap', details: { route: 'flotilla keys bootstrap', name },
      }],
    });
  } finally {
    await store.close();
  }
  const { key, token } = created;
  if (values.json === true) {
    // The answer of POST /api/v1/keys, as `keys create --json` prints it.
    printJson({ key: apiKeyView(key, Date.now()), token });
    return;
  }
  // Printed once, to the terminal only; never logged.
  process.stdout.write(
    `Created admin key ${key.id} ("${key.name}") in ${shown}.\n\n` +
    '  Its token (shown only this once; only its hash is stored):\n\n' +
    `    ${token}\n\n` +
    `  For the flotilla CLI:  export FLOTILLA_TOKEN=${token}\n` +
    '  Over HTTP:             Authorization: Bearer <token>\n\n' +
    'A running server accepts it at once. Revoke keys you no longer trust: flotilla keys ls, flotilla keys revoke ID\n',
  );
}
