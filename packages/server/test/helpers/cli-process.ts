// The `flotilla` CLI as a real process against a server process, and the server's API beside
// it (to set up what a CLI test then reads), for the cli-*.test.ts files.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TOKEN } from './harness.ts';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `flotilla ARGS` with FLOTILLA_URL=url and the test admin token; resolves with its exit code and output. */
export function runCli(url: string, args: string[], timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, FLOTILLA_URL: url, FLOTILLA_TOKEN: TOKEN }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** One API call as the admin; throws on a non-2xx answer. */
export async function serverApi(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
