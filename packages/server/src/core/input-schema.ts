// Input requests: what a handler may ask (`ctx.requestInput({ prompt, schema })`) and whether an
// answer fits the JSON Schema it gave. Pure computation (Ajv compiles a schema to a checking
// function; nothing is fetched: a `$ref` to anything outside the schema fails to compile).
//
// The schema comes from a worker, an authenticated principal of the fleet, not from the
// public: it is bounded in size and nesting, compiled with Ajv's defaults (which refuse code
// injection through keywords and patterns), and compiled once per distinct text (a small
// cache), because the same handler asks the same question of many tasks.

import { Ajv, type ValidateFunction } from 'ajv';
import { FlotillaError } from './errors.ts';
import type { Json } from './types.ts';

export const MAX_PROMPT_CHARS = 8_192;
export const MAX_INPUT_SCHEMA_BYTES = 65_536;
/** An input request may wait at most this long for its answer (about a year). */
export const MAX_INPUT_TIMEOUT_MS = 366 * 24 * 3_600_000;

const CACHE_SIZE = 256;
const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

function validatorOf(schema: Json): ValidateFunction {
  const key = JSON.stringify(schema);
  const hit = compiled.get(key);
  if (hit) {
    // Most recently used last: the first entry is the one to drop.
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  if (key.length > MAX_INPUT_SCHEMA_BYTES) {
    throw new FlotillaError('VALIDATION_FAILED', `the input schema is ${key.length} bytes as JSON; at most ${MAX_INPUT_SCHEMA_BYTES} are accepted`);
  }
  if (typeof schema !== 'object' && typeof schema !== 'boolean') {
    throw new FlotillaError('VALIDATION_FAILED', 'the input schema must be a JSON Schema: an object (or true/false)');
  }
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema as object | boolean);
  } catch (err) {
    throw new FlotillaError('VALIDATION_FAILED', `the input schema is not a valid JSON Schema: ${(err as Error).message}`);
  }
  compiled.set(key, validate);
  if (compiled.size > CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  return validate;
}

/** Checks what a handler asks before it is stored: a prompt, and a schema that compiles (or null). */
export function checkInputRequest(req: { prompt: string; schema: Json | null; timeoutMs: number | null }): void {
  if (req.prompt.trim() === '') throw new FlotillaError('VALIDATION_FAILED', 'an input request needs a prompt: what to answer');
  if (req.prompt.length > MAX_PROMPT_CHARS) throw new FlotillaError('VALIDATION_FAILED', `the prompt is ${req.prompt.length} characters; at most ${MAX_PROMPT_CHARS}`);
  if (req.timeoutMs !== null && (!Number.isInteger(req.timeoutMs) || req.timeoutMs < 1 || req.timeoutMs > MAX_INPUT_TIMEOUT_MS)) {
    throw new FlotillaError('VALIDATION_FAILED', `"timeoutMs" must be a whole number of milliseconds from 1 to ${MAX_INPUT_TIMEOUT_MS}`);
  }
  if (req.schema !== null) validatorOf(req.schema);
}

/**
 * Null when `input` answers a request with `schema`; otherwise the reasons, as
 * `{ path, message }` (JSON Pointer into the answer), at most 20.
 */
export function answerProblems(schema: Json | null, input: Json): Array<{ path: string; message: string }> | null {
  if (schema === null) return null;
  const validate = validatorOf(schema);
  if (validate(input)) return null;
  return (validate.errors ?? []).slice(0, 20).map((e) => ({ path: e.instancePath === '' ? '/' : e.instancePath, message: e.message ?? 'is invalid' }));
}
