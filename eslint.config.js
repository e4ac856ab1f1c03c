// Lint rules that protect the architecture, not style: promises are never dropped and core/ (the pure state machine, routing and retry
// policy) never imports anything that does I/O.
import tseslint from 'typescript-eslint';

const ioModules = [
  'node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:https', 'node:sqlite',
  'node:child_process', 'node:dgram', 'node:dns', 'node:os', 'node:process', 'node:worker_threads',
  'fs', 'net', 'http', 'https', 'child_process', 'os',
  'fastify', 'ws', '@fastify/websocket', 'pino', 'pg', 'yaml',
];

// Import cycles are checked by scripts/import-cycles.ts (see why there).
export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'bench/results/**', 'packages/console/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe/it return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['packages/server/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ioModules.map((name) => ({ name, message: 'core/ is pure: no I/O imports (see docs/architecture.md).' })),
        patterns: [
          { group: ['**/store/**', '**/engine/**', '**/http/**', '**/cli/**'], message: 'core/ may not depend on outer layers.' },
        ],
      }],
      'no-restricted-globals': ['error', 'fetch', 'setTimeout', 'setInterval', 'process'],
    },
  },
  {
    // Tests read arbitrary JSON responses; typing every one would test the types, not the server.
    files: ['packages/*/test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
