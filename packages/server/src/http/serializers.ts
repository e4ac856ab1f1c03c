// Answers leave through fast-json-stringify, compiled from the route's response schema for
// the status (schemas/responses.ts). One compiled serializer per distinct schema for the
// whole process: the schemas are constants, and compiling them once per route, status and
// HEAD route (and again for every app a test builds) tripled the time an app takes to start.

import fastJson from 'fast-json-stringify';
import { responseSchemas } from '../schemas/responses.ts';

type Serialize = (data: unknown) => string;

const compiled = new Map<string, Serialize>();

/** Fastify's serializer compiler: `{ $ref: 'TaskView#' }` and the like, resolved against the named answers. */
export function responseSerializer({ schema }: { schema: unknown }): Serialize {
  const key = JSON.stringify(schema);
  let serialize = compiled.get(key);
  if (serialize === undefined) {
    serialize = fastJson(schema as Parameters<typeof fastJson>[0], { schema: responseSchemas as unknown as Record<string, Parameters<typeof fastJson>[0]> }) as Serialize;
    compiled.set(key, serialize);
  }
  return serialize;
}
