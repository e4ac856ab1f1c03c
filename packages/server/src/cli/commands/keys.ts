// API key commands: `keys create` (prints the secret once), `keys [ls]`, `keys show ID` and
// `keys revoke ID`. Admin keys only (the server answers 403 otherwise). `keys bootstrap`
// is the exception: it works on the database itself, without a server (../bootstrap.ts).

import { ROLES, type ApiKeySpec, type ApiKeyView, type Flotilla, type Role } from '@flotilla/sdk';
import { parseCommand, stringFlag, stringsFlag, usageError } from './args.ts';
import { UsageError } from './errors.ts';
import { closest } from './suggest.ts';
import { block, printJson, table, time } from './output.ts';

export const KEYS_USAGE = `Usage:
  flotilla keys create --role R --name N [--agent X ...] [--expires-in D | --expires-at ISO]
                                   create a key and print its secret (shown only this once)
  flotilla keys [ls] [--all]       list the keys (never their secrets)
  flotilla keys show ID            one key
  flotilla keys revoke ID          revoke a key: every node refuses it within seconds
  flotilla keys bootstrap [--database URL] [--config FILE] [--name N]
                                   create an admin key directly in the database, no server
                                   or token needed, and print its secret once (for a first
                                   start that printed none, or when no admin key is left)

  --role R          ${ROLES.join(', ')}
  --name N          a label, e.g. what or who uses the key
  --agent X         role agent only (and required there): an agent the key serves
                    (repeatable or comma-separated)
  --expires-in D    the key stops working after D: e.g. 30d, 12h, 90m
  --expires-at ISO  the key stops working at this time, e.g. 2030-01-31T00:00:00Z
  --all             ls: include revoked keys
`;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds from `30d`, `12h`, `90m` or `45s`. */
export function durationMs(value: string, flag: string): number {
  const m = /^(\d+)([smhd])$/.exec(value.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
  if (!(ms > 0) || !Number.isSafeInteger(ms)) throw new UsageError(`${flag} must be a positive duration like 30d, 12h, 90m or 45s, got "${value}"`);
  return ms;
}

/** An ISO 8601 date-time, normalised to UTC; a usage error for anything else. */
export function isoFlag(value: string, flag: string): string {
  const at = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at)) throw new UsageError(`${flag} must be an ISO 8601 date-time like 2030-01-31T00:00:00Z, got "${value}"`);
  return new Date(at).toISOString();
}

const SUBCOMMANDS = ['create', 'ls', 'list', 'show', 'get', 'revoke', 'bootstrap'];

export async function keysCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] !== undefined && !argv[0].startsWith('-') ? argv : ['ls', ...argv];
  switch (sub) {
    case 'create':
      return createKey(rest);
    case 'ls':
    case 'list':
      return listKeys(rest);
    case 'show':
    case 'get':
      return oneKey(rest, 'show', (client, id) => client.keys.get(id));
    case 'revoke':
      return oneKey(rest, 'revoke', (client, id) => client.keys.revoke(id));
    case 'bootstrap':
      // Loaded only here: it opens the database, which no other client command does.
      return (await import('../bootstrap.ts')).bootstrapCommand(rest, KEYS_USAGE);
    default: {
      const near = closest(sub!, SUBCOMMANDS);
      throw usageError(`unknown keys subcommand "${sub}"${near ? `; did you mean \`keys ${near}\`?` : ''}`, {
        command: 'keys', usage: KEYS_USAGE, synopsis: 'Usage: flotilla keys [ls | show ID | create | revoke ID | bootstrap] [flags]',
      });
    }
  }
}

function keyTable(keys: ApiKeyView[]): string {
  return table(
    ['ID', 'NAME', 'ROLE', 'AGENTS', 'STATUS', 'CREATED', 'LAST USED', 'EXPIRES'],
    keys.map((k) => [k.id, k.name, k.role, k.agents?.join(','), k.status, time(k.createdAt), time(k.lastUsedAt), time(k.expiresAt)]),
  );
}

function keyBlock(k: ApiKeyView): string {
  return block([
    ['id', k.id],
    ['name', k.name],
    ['role', k.role],
    ['agents', k.agents?.join(', ')],
    ['status', k.status],
    ['created', time(k.createdAt)],
    ['created by', k.createdBy],
    ['last used', time(k.lastUsedAt)],
    ['expires', time(k.expiresAt)],
    ['revoked', time(k.revokedAt)],
  ]);
}

async function createKey(argv: string[]): Promise<void> {
  const usage = {
    command: 'keys create',
    usage: KEYS_USAGE,
    synopsis: 'Usage: flotilla keys create --role R --name N [--agent X ...] [--expires-in D | --expires-at ISO]',
  };
  const cmd = parseCommand(argv, {
    ...usage,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      agent: { type: 'string', multiple: true },
      'expires-in': { type: 'string' },
      'expires-at': { type: 'string' },
    },
  });
  if (cmd === null) return;
  const v = cmd.values;
  const role = stringFlag(v.role);
  const name = stringFlag(v.name);
  if (role === undefined) throw usageError(`--role is required (one of ${ROLES.join(', ')})`, usage);
  if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role: unknown role "${role}" (one of ${ROLES.join(', ')})`);
  if (name === undefined || name.trim() === '') throw usageError('--name is required', usage);
  const agents = stringsFlag(v.agent).flatMap((a) => a.split(',')).map((a) => a.trim()).filter((a) => a !== '');
  if (role === 'agent' && agents.length === 0) throw new UsageError('a key with --role agent needs --agent: the agents it may serve');
  if (role !== 'agent' && agents.length > 0) throw new UsageError('--agent applies to --role agent only');
  const expiresIn = stringFlag(v['expires-in']);
  const expiresAtFlag = stringFlag(v['expires-at']);
  if (expiresIn !== undefined && expiresAtFlag !== undefined) throw new UsageError('--expires-in and --expires-at cannot be combined');
  const expiresAt = expiresIn !== undefined
    ? new Date(Date.now() + durationMs(expiresIn, '--expires-in')).toISOString()
    : expiresAtFlag === undefined ? undefined : isoFlag(expiresAtFlag, '--expires-at');
  const spec: ApiKeySpec = {
    name,
    role: role as Role,
    ...(agents.length > 0 ? { agents } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
  const created = await cmd.client().keys.create(spec);
  if (cmd.json) {
    printJson(created);
    return;
  }
  process.stdout.write(keyBlock(created.key));
  process.stdout.write(
    '\nSecret (shown only this once and never again; the server stores only its hash, so copy it now):\n\n' +
    `  ${created.token}\n\n` +
    'Use it with --token, or set FLOTILLA_TOKEN to it.\n',
  );
}

async function listKeys(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'keys ls', usage: KEYS_USAGE, synopsis: 'Usage: flotilla keys [ls] [--all]', options: { all: { type: 'boolean' } } });
  if (cmd === null) return;
  const keys = await cmd.client().keys.list({ includeRevoked: cmd.values.all === true });
  if (cmd.json) printJson(keys);
  else process.stdout.write(keys.length === 0 ? 'no keys\n' : keyTable(keys));
}

/** `keys show ID` and `keys revoke ID`: one call on one key, printed. */
async function oneKey(argv: string[], sub: 'show' | 'revoke', call: (client: Flotilla, id: string) => Promise<ApiKeyView>): Promise<void> {
  const cmd = parseCommand(argv, { command: `keys ${sub}`, usage: KEYS_USAGE, synopsis: `Usage: flotilla keys ${sub} ID`, positionals: ['ID'] });
  if (cmd === null) return;
  const key = await call(cmd.client(), cmd.positionals[0]!);
  if (cmd.json) printJson(key);
  else process.stdout.write(keyBlock(key));
}
