// The CLI's mistakes and failures as the user sees them: an unknown flag or command is one
// line with the command's short usage and a "did you mean" when one is close (one shared
// implementation, commands/args.ts and suggest.ts), and a network failure names its cause
// (ECONNREFUSED, ENOTFOUND / EAI_AGAIN, TLS, timeouts) and what to check. The messages go
// through real `flotilla` processes; the cause table is also checked directly for the causes
// a test cannot produce on demand (a timeout, an untrusted certificate).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { FlotillaApiError, FlotillaNetworkError } from '@flotilla/sdk';
import { durationFlag, parseFlags } from '../src/cli/commands/args.ts';
import { describeClientError, networkCause, UsageError } from '../src/cli/commands/errors.ts';
import { closest, levenshtein } from '../src/cli/commands/suggest.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

interface CliResult { code: number; stdout: string; stderr: string }

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, FLOTILLA_TOKEN: 'some-token-0123456789', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One line on stderr, starting `flotilla: `, and no stack trace. */
function oneLine(r: CliResult): string {
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0]!, /^flotilla: /);
  return lines[0]!;
}

describe('usage errors: one shared parser, a short usage line, "did you mean"', () => {
  it('suggests within a Levenshtein distance of 2, and nothing for a word that shares nothing', () => {
    assert.equal(levenshtein('agnets', 'agents'), 2);
    assert.equal(levenshtein('status', 'statsu'), 2);
    assert.equal(closest('agnets', ['serve', 'agents', 'audit']), 'agents');
    assert.equal(closest('prot', ['host', 'port']), 'port', 'the closest wins: host is 3 edits away, port 2');
    assert.equal(closest('frobnicate', ['status', 'agent', 'limit']), null);
    assert.equal(closest('qq', ['ls', 'get']), null, 'two edits of a two-letter word is no suggestion');
    assert.equal(closest('JSON', ['json']), 'json');
  });

  it('parseFlags turns every parseArgs error into a usage error naming the flag', () => {
    const options = { agent: { type: 'string' as const }, wait: { type: 'boolean' as const }, help: { type: 'boolean' as const, short: 'h' } };
    const spec = { command: 'submit', usage: 'Usage: flotilla submit --agent NAME [--wait]\n\nmore\n' };
    const message = (argv: string[]) => {
      try {
        parseFlags(argv, options, spec);
      } catch (err) {
        assert.ok(err instanceof UsageError, String(err));
        return err.message;
      }
      return 'no error';
    };
    assert.equal(message(['--agnet', 'x']), 'unknown flag --agnet; did you mean --agent?\nUsage: flotilla submit --agent NAME [--wait]\n(flotilla submit --help for all its flags)');
    assert.match(message(['--agent']), /^--agent needs a value\n/);
    assert.match(message(['--agent', '--wait']), /^--agent needs a value \(got the flag --wait; .* write --agent=--wait\)/);
    assert.match(message(['--wait=yes']), /^--wait takes no value \(got "yes"\)/);
    assert.match(message(['-wait']), /^unknown flag -wait; did you mean --wait\?/);
    assert.match(message(['--colour']), /^unknown flag --colour\nUsage:/);
    assert.match(message(['-H']), /^unknown flag -H; did you mean --help\?/);
  });

  it('durations need a unit', () => {
    assert.equal(durationFlag('250ms', '--t'), 250);
    assert.equal(durationFlag('90s', '--t'), 90_000);
    assert.equal(durationFlag('2h', '--t'), 7_200_000);
    assert.equal(durationFlag(undefined, '--t'), undefined);
    assert.throws(() => durationFlag('30', '--timeout'), /--timeout must be a duration .* \(a number needs a unit: 30s, 30ms/);
    assert.throws(() => durationFlag('8d', '--timeout', { max: 7 * 86_400_000 }), /--timeout must be between 1ms and 7d, got 8d/);
  });

  it('through the binary: unknown commands, subcommands and flags, for client and server commands alike', async () => {
    const [command, far, flag, serveFlag, sub, keysSub, missing, help] = await Promise.all([
      cli(['agnets']),
      cli(['frobnicate']),
      cli(['ls', '--statsu', 'failed']),
      cli(['serve', '--prot', '8080']),
      cli(['agents', 'shwo', 'x']),
      cli(['keys', 'bootstarp']),
      cli(['submit', '--agent']),
      cli(['worker', 'x.ts', '--agent', 'a', '--concurrenci', '2']),
    ]);
    for (const r of [command, far, flag, serveFlag, sub, keysSub, missing, help]) assert.equal(r.code, 2, r.stderr);
    assert.equal(command.stderr, 'flotilla: unknown command "agnets"; did you mean `agents`?\n(flotilla help lists the commands)\n');
    assert.equal(far.stderr, 'flotilla: unknown command "frobnicate"\n(flotilla help lists the commands)\n');
    assert.equal(flag.stderr, 'flotilla: unknown flag --statsu; did you mean --status?\n'
      + 'Usage: flotilla ls [--status S ...] [--agent NAME] [--sla at_risk|violated] [--limit N]\n(flotilla ls --help for all its flags)\n');
    assert.match(serveFlag.stderr, /^flotilla: unknown flag --prot; did you mean --port\?\nUsage: flotilla serve \[--host H\] \[--port N\]/);
    assert.match(sub.stderr, /^flotilla: unknown agents subcommand "shwo"; did you mean `agents show`\?\nUsage: flotilla agents \[ls \| show NAME/);
    assert.match(keysSub.stderr, /^flotilla: unknown keys subcommand "bootstarp"; did you mean `keys bootstrap`\?/);
    assert.match(missing.stderr, /^flotilla: --agent needs a value\nUsage: flotilla submit /);
    assert.match(help.stderr, /^flotilla: unknown flag --concurrenci; did you mean --concurrency\?\nUsage:\n {2}flotilla worker MODULE/);
    for (const r of [flag, serveFlag, sub, missing]) assert.ok(r.stderr.split('\n').length <= 4, `short: ${r.stderr}`);
  });
});

describe('network errors name their cause and what to check', () => {
  let http: Server;
  let httpPort: number;

  before(async () => {
    http = createHttpServer((_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    httpPort = (http.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it('through the binary: connection refused, no such host, and https to a plain-HTTP server, each exit 3 in one line', async () => {
    const port = await closedPort();
    const [refused, dns, tls] = await Promise.all([
      cli(['get', 'x', '--url', `http://127.0.0.1:${port}`]),
      cli(['ls', '--url', 'http://flotilla-test-no-such-host.invalid:8080']),
      cli(['agents', '--url', `https://127.0.0.1:${httpPort}`]),
    ]);
    for (const r of [refused, dns, tls]) assert.equal(r.code, 3, r.stderr);
    assert.equal(oneLine(refused), `flotilla: cannot reach the server at http://127.0.0.1:${port}: connection refused (ECONNREFUSED); `
      + 'is the server running? npm start starts one; --url or FLOTILLA_URL says where it is');
    // Without a resolver (a sandbox), the lookup fails with EAI_AGAIN instead.
    assert.match(oneLine(dns), /^flotilla: cannot reach the server at http:\/\/flotilla-test-no-such-host\.invalid:8080: .*\((ENOTFOUND|EAI_AGAIN)[,)].*; check .*the host name in --url or FLOTILLA_URL$/);
    assert.match(oneLine(tls), /^flotilla: cannot reach the server at https:\/\/127\.0\.0\.1:\d+: TLS handshake failed: the server does not speak TLS \((ERR_SSL_WRONG_VERSION_NUMBER|EPROTO|ERR_SSL_PACKET_LENGTH_TOO_LONG)\); use http:\/\//);
  });

  it('the cause table: timeouts, certificates, resets, an unknown cause', () => {
    const net = (message: string, cause?: unknown) => new FlotillaNetworkError(message, { url: 'https://flotilla.example/api/v1', cause });
    const sys = (code: string, message = code) => Object.assign(new Error(message), { code });
    const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });

    assert.deepEqual(describeClientError(net('request GET /overview to https://flotilla.example/api/v1 timed out after 30000 ms', new DOMException('aborted', 'AbortError'))), {
      exitCode: 3,
      message: 'cannot reach the server at https://flotilla.example: no answer within 30000 ms (timeout); is the server overloaded, or is a firewall or proxy holding the connection?',
    });
    assert.match(networkCause(net('x', fetchFailed(sys('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate')))).cause, /^TLS error: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
    assert.match(networkCause(net('x', fetchFailed(sys('CERT_HAS_EXPIRED', 'certificate has expired')))).hint, /NODE_EXTRA_CA_CERTS/);
    assert.match(networkCause(net('x', fetchFailed(sys('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match')))).cause, /^TLS error: .*ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.match(networkCause(net('x', fetchFailed(sys('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error')))).cause, /timed out \(UND_ERR_CONNECT_TIMEOUT\)/);
    assert.match(networkCause(net('x', fetchFailed(sys('ECONNRESET')))).cause, /closed by the other side \(ECONNRESET\)/);
    assert.match(networkCause(net('x', fetchFailed(sys('EAI_AGAIN', 'getaddrinfo EAI_AGAIN h')))).cause, /DNS lookup failed for now \(EAI_AGAIN\)/);
    // localhost tries ::1 and 127.0.0.1: both refusals come as one AggregateError.
    const both = Object.assign(new AggregateError([sys('ECONNREFUSED'), sys('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' });
    assert.match(networkCause(net('x', fetchFailed(both))).cause, /ECONNREFUSED/);
    assert.match(networkCause(net('x', fetchFailed(new Error('bad port')))).cause, /bad port/);
    const unknown = networkCause(net('x', fetchFailed(new Error('something odd'))));
    assert.deepEqual([unknown.cause, /is the server running\?/.test(unknown.hint)], ['something odd', true]);
    assert.match(describeClientError(new FlotillaApiError({ code: 'UNAUTHENTICATED', message: 'the API token is not valid', status: 401 }))!.message,
      /^UNAUTHENTICATED: the API token is not valid; check --token or FLOTILLA_TOKEN/);
  });
});
