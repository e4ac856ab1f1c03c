// Tool domains and the MCP settings in the config file: declared domains are read with their
// secret references as references, and a file that declares one badly stops the start with a
// message naming it (the same rules as PUT /tool-domains: core/tool-domains.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../src/config/config.ts';

function load(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-mcp-config-'));
  writeFileSync(join(dir, 'flotilla.config.yaml'), yaml);
  return loadConfig({ cwd: dir, env: {} });
}

describe('tool domains in the config file', () => {
  it('reads domains and settings; secrets stay references', () => {
    const config = load([
      'server:', '  mcpHealthIntervalMs: 2000', '  mcpCallTimeoutMs: 5000', '  mcpGatewayUrl: https://flotilla.example.test/api/v1/mcp',
      'toolDomains:',
      '  - name: web', '    url: https://mcp.example.test/mcp', '    headers: { Authorization: { env: FLOTILLA_SECRET_WEB_TOKEN } }',
      '  - name: memory', '    command: mcp-server-memory', '    env: { MEMORY_FILE_PATH: /tmp/m.jsonl }', '',
    ].join('\n'));
    assert.deepEqual(config.toolDomains, [
      { name: 'web', url: 'https://mcp.example.test/mcp', headers: { Authorization: { env: 'FLOTILLA_SECRET_WEB_TOKEN' } } },
      { name: 'memory', command: 'mcp-server-memory', env: { MEMORY_FILE_PATH: '/tmp/m.jsonl' } },
    ]);
    assert.deepEqual([config.mcpHealthIntervalMs, config.mcpHealthTimeoutMs, config.mcpCallTimeoutMs, config.mcpGatewayUrl], [2000, DEFAULT_CONFIG.mcpHealthTimeoutMs, 5000, 'https://flotilla.example.test/api/v1/mcp']);
  });

  it('refuses a file that declares a domain badly, naming it', () => {
    const cases: Array<[string, RegExp]> = [
      ['toolDomains:\n  - name: a\n    command: x\n  - name: a\n    command: y\n', /declares tool domain "a" twice/],
      ['toolDomains:\n  - name: both\n    url: http://127.0.0.1:1/mcp\n    command: x\n', /\/toolDomains\/both.*either "url"/],
      ['toolDomains:\n  - name: flotilla\n    command: x\n', /Flotilla's own/],
      ['toolDomains:\n  - name: web\n    url: http://x/mcp\n    token: secret\n', /additional properties|token/],
      ['toolDomains:\n  - name: web\n    url: http://x/mcp\n    headers: { A: { env: "not a name" } }\n', /invalid/],
      ['server:\n  mcpGatewayUrl: not a url\n', /mcpGatewayUrl/],
      ['server:\n  mcpHealthIntervalMs: 0\n', /invalid/],
    ];
    for (const [yaml, message] of cases) assert.throws(() => load(yaml), (err: unknown) => err instanceof ConfigError && message.test(err.message), yaml);
  });
});
