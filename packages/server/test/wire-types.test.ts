// The SDK's wire types (packages/sdk/src/wire.ts and the client's response shapes) against
// the server's answer schemas (src/schemas/responses.ts): read with the TypeScript compiler
// API, each type is reduced to a shape (property names, optional or required, nullable or
// not, kind, enum values, element and value types) and compared with the shape its schema
// describes. A field added, removed or made nullable on one side only fails here until the
// other side has it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { responseSchemas, type ResponseName } from '../src/schemas/responses.ts';

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, '../../sdk/src');

/**
 * Each answer schema and the SDK type it must match, as a type expression over the SDK's
 * modules (`wire`, `errors`, `client`). The few answers the SDK has no name for are written
 * as type literals over its names.
 */
const SDK_TYPE: Record<ResponseName, string | null> = {
  Error: 'errors.ErrorBody',
  TaskView: 'wire.TaskView',
  TaskPage: 'wire.Page<wire.TaskView>',
  SubmittedTasks: 'wire.ItemList<client.SubmitResult>',
  AssignmentView: 'wire.AssignmentView',
  WorkflowView: 'wire.WorkflowView',
  TaskTree: 'wire.TaskTreeView',
  TreeNodeView: 'wire.TreeNodeView',
  TaskAssignments: 'client.TaskAssignments',
  EventView: 'wire.EventView',
  EventList: 'wire.ItemList<wire.EventView>',
  EventPage: 'wire.EventPage',
  AgentView: 'wire.AgentView',
  AgentList: 'wire.ItemList<wire.AgentView>',
  AgentStats: 'wire.AgentStats',
  Overview: 'wire.Overview',
  DelegationReport: 'wire.DelegationReport',
  ReplicaView: 'wire.ReplicaView',
  ReplicaList: 'wire.ItemList<wire.ReplicaView>',
  ReplicaHeartbeat: '{ replica: wire.ReplicaView }',
  WorkerRegistration: 'wire.WorkerRegistration',
  LeasedTask: 'wire.LeasedTask',
  LeasedTasks: '{ assignments: wire.LeasedTask[] }',
  LeaseRenewal: 'wire.LeaseRenewal',
  Ok: '{ ok: true }',
  ReportResults: 'wire.ReportResults',
  ApiKeyView: 'wire.ApiKeyView',
  ApiKeyList: 'wire.ItemList<wire.ApiKeyView>',
  CreatedApiKey: 'wire.CreatedApiKey',
  IssuedToken: 'wire.IssuedTokenView',
  AuditEntry: 'wire.AuditEntryView',
  AuditPage: 'wire.AuditPage',
  Health: "{ status: 'ok' | 'ready' | 'shutting_down' | 'database_unavailable' }",
  // Any OpenAPI document: checked against the OpenAPI 3.1 schema instead (response-contract.test.ts).
  OpenApiDocument: null,
  // A2A's own documents (the A2A specification and @a2a-js/sdk's types define them, not @flotilla/sdk).
  A2aAgentCard: null,
  A2aJsonRpcResponse: null,
  ToolDomainHealthView: 'wire.ToolDomainHealthView',
  ToolDomainHealthList: 'wire.ItemList<wire.ToolDomainHealthView>',
  ToolDomainView: 'wire.ToolDomainView',
  ToolDomainList: 'wire.ItemList<wire.ToolDomainView>',
  ToolCallView: 'wire.ToolCallView',
  ToolCallPage: 'wire.ToolCallPage',
  // A JSON-RPC answer of the MCP gateway: the MCP SDK's types, not Flotilla's.
  McpGatewayAnswer: null,
  WebhookView: 'wire.WebhookView',
  WebhookSecretView: 'wire.WebhookSecretView',
  WebhookList: 'wire.ItemList<wire.WebhookView>',
  WebhookDeliveryView: 'wire.WebhookDeliveryView',
  WebhookDeliveryPage: 'wire.WebhookDeliveryPage',
  WebhookReplayed: '{ replayed: number }',
  WebhookNotifySecret: '{ secret: string }',
  ScheduleView: 'wire.ScheduleView',
  ScheduleList: 'wire.ScheduleList',
  RateLimitView: 'wire.RateLimitView',
  RateLimitList: 'wire.ItemList<wire.RateLimitView>',
  UsageSummary: 'wire.UsageSummaryView',
};

type Shape =
  | { kind: 'any' }
  | { kind: 'string' | 'number' | 'boolean'; nullable: boolean; enum?: unknown[] }
  | { kind: 'array'; nullable: boolean; items: Shape }
  | { kind: 'object'; nullable: boolean; properties: Record<string, { shape: Shape; optional: boolean }>; additional: Shape | null };

// --- The TypeScript side ---------------------------------------------------------------

function sdkTypes(expressions: Record<string, string>, extraSource = ''): { checker: ts.TypeChecker; types: Map<string, ts.Type> } {
  const virtual = join(here, '__wire_types__.ts');
  const source = [
    `import type * as wire from ${JSON.stringify(join(sdk, 'wire.ts'))};`,
    `import type * as errors from ${JSON.stringify(join(sdk, 'errors.ts'))};`,
    `import type * as client from ${JSON.stringify(join(sdk, 'client/types.ts'))};`,
    extraSource,
    ...Object.entries(expressions).map(([name, expression]) => `export type ${name} = ${expression};`),
  ].join('\n');
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true, types: [],
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (file, language, ...rest) => file === virtual ? ts.createSourceFile(file, source, language) : getSourceFile.call(host, file, language, ...rest);
  host.fileExists = (file) => file === virtual || fileExists.call(host, file);
  host.readFile = (file) => file === virtual ? source : readFile.call(host, file);
  const program = ts.createProgram([virtual], options, host);
  const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.deepEqual(problems, [], 'the SDK types compile');
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(virtual)!;
  const types = new Map<string, ts.Type>();
  for (const statement of file.statements) {
    if (ts.isTypeAliasDeclaration(statement)) types.set(statement.name.text, checker.getTypeAtLocation(statement.name));
  }
  return { checker, types };
}

function typeShape(checker: ts.TypeChecker, type: ts.Type, depth = 0): Shape {
  if (depth > 20) throw new Error(`type too deep: ${checker.typeToString(type)}`);
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return { kind: 'any' };
  const members = type.isUnion() ? type.types : [type];
  // `undefined` is what an optional property adds; only `null` makes a value nullable.
  const present = members.filter((t) => !(t.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)));
  const nullable = members.some((t) => t.flags & ts.TypeFlags.Null);
  const is = (flags: ts.TypeFlags) => present.length > 0 && present.every((t) => t.flags & flags);
  if (is(ts.TypeFlags.StringLike)) {
    return present.every((t) => t.isStringLiteral()) ? { kind: 'string', nullable, enum: present.map((t) => (t as ts.StringLiteralType).value).sort() } : { kind: 'string', nullable };
  }
  if (is(ts.TypeFlags.NumberLike)) return { kind: 'number', nullable };
  if (is(ts.TypeFlags.BooleanLike)) {
    const values = present.map((t) => checker.typeToString(t));
    return values.length === 1 ? { kind: 'boolean', nullable, enum: [values[0] === 'true'] } : { kind: 'boolean', nullable };
  }
  if (present.length === 1) {
    const only = present[0]!;
    if (checker.isArrayType(only)) return { kind: 'array', nullable, items: typeShape(checker, checker.getTypeArguments(only as ts.TypeReference)[0]!, depth + 1) };
    if (only.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) {
      const properties: Record<string, { shape: Shape; optional: boolean }> = {};
      for (const p of checker.getPropertiesOfType(only)) {
        properties[p.name] = { shape: typeShape(checker, checker.getTypeOfSymbol(p), depth + 1), optional: (p.flags & ts.SymbolFlags.Optional) !== 0 };
      }
      const index = checker.getIndexInfosOfType(only).find((i) => i.keyType.flags & ts.TypeFlags.String);
      return { kind: 'object', nullable, properties, additional: index ? typeShape(checker, index.type, depth + 1) : null };
    }
  }
  // A union of different kinds (Json: null | boolean | number | string | Json[] | {...}) is any JSON.
  if (present.length > 1) return { kind: 'any' };
  throw new Error(`no shape for the type ${checker.typeToString(type)}`);
}

// --- The schema side -------------------------------------------------------------------

function schemaShape(schema: Record<string, unknown>, depth = 0): Shape {
  if (depth > 20) throw new Error('schema too deep');
  if (typeof schema.$ref === 'string') {
    const target = responseSchemas[schema.$ref.replace(/#$/, '') as ResponseName];
    if (!target) throw new Error(`unknown $ref ${schema.$ref}`);
    return schemaShape(target, depth + 1);
  }
  if (schema.type === undefined) {
    // A union of object shapes (Resumption) is any JSON on the type side (above): the same here.
    // Its branches are checked against real answers by the response-contract test.
    if (Array.isArray(schema.oneOf) && (schema.oneOf as Array<Record<string, unknown>>).filter((b) => b.type !== 'null').every((b) => b.type === 'object')) return { kind: 'any' };
    if (schema.anyOf || schema.oneOf || schema.allOf) throw new Error('combinators are not compared');
    return { kind: 'any' };
  }
  const types = Array.isArray(schema.type) ? schema.type as string[] : [schema.type as string];
  const nullable = types.includes('null');
  const rest = types.filter((t) => t !== 'null');
  if (rest.length !== 1) throw new Error(`one type besides null expected, got ${JSON.stringify(schema.type)}`);
  // A nullable enum lists null among its values (JSON Schema checks enum whatever the type); here null is `nullable`.
  const values = Array.isArray(schema.enum) ? { enum: (schema.enum as unknown[]).filter((v) => v !== null).sort() } : {};
  switch (rest[0]) {
    case 'string': return { kind: 'string', nullable, ...values };
    case 'integer':
    case 'number': return { kind: 'number', nullable };
    case 'boolean': return { kind: 'boolean', nullable, ...values };
    case 'array': return { kind: 'array', nullable, items: schemaShape(schema.items as Record<string, unknown>, depth + 1) };
    case 'object': {
      const required = new Set((schema.required ?? []) as string[]);
      const properties: Record<string, { shape: Shape; optional: boolean }> = {};
      for (const [name, p] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        properties[name] = { shape: schemaShape(p, depth + 1), optional: !required.has(name) };
      }
      const extra = schema.additionalProperties;
      const additional = extra === false ? null : extra === undefined || extra === true ? { kind: 'any' as const } : schemaShape(extra as Record<string, unknown>, depth + 1);
      return { kind: 'object', nullable, properties, additional };
    }
    default: throw new Error(`type ${String(rest[0])}`);
  }
}

// --- Comparing -------------------------------------------------------------------------

function describeShape(s: Shape): string {
  if (s.kind === 'any') return 'any JSON';
  const base = s.kind === 'array' ? `array of ${describeShape(s.items)}` : s.kind === 'object' ? 'object' : s.kind + ('enum' in s && s.enum ? ` ${JSON.stringify(s.enum)}` : '');
  return s.nullable ? `${base} or null` : base;
}

/** The differences between a schema's shape and a type's, one line each. */
export function differences(schema: Shape, type: Shape, path: string): string[] {
  if (schema.kind !== type.kind) return [`${path}: the schema says ${describeShape(schema)}, the SDK type ${describeShape(type)}`];
  if (schema.kind === 'any' || type.kind === 'any') return [];
  const out: string[] = [];
  if (schema.nullable !== type.nullable) out.push(`${path}: ${schema.nullable ? 'nullable in the schema only' : 'nullable in the SDK type only'}`);
  if ('enum' in schema || 'enum' in type) {
    const a = JSON.stringify((schema as { enum?: unknown[] }).enum ?? null);
    const b = JSON.stringify((type as { enum?: unknown[] }).enum ?? null);
    if (a !== b) out.push(`${path}: the schema allows ${a}, the SDK type ${b}`);
  }
  if (schema.kind === 'array' && type.kind === 'array') out.push(...differences(schema.items, type.items, `${path}[]`));
  if (schema.kind === 'object' && type.kind === 'object') {
    for (const name of new Set([...Object.keys(schema.properties), ...Object.keys(type.properties)])) {
      const a = schema.properties[name];
      const b = type.properties[name];
      if (!a) out.push(`${path}.${name}: in the SDK type only`);
      else if (!b) out.push(`${path}.${name}: in the schema only`);
      else {
        if (a.optional !== b.optional) out.push(`${path}.${name}: ${a.optional ? 'optional in the schema, required in the SDK type' : 'required in the schema, optional in the SDK type'}`);
        out.push(...differences(a.shape, b.shape, `${path}.${name}`));
      }
    }
    if ((schema.additional === null) !== (type.additional === null)) {
      out.push(`${path}: ${schema.additional === null ? 'closed in the schema, a map in the SDK type' : 'a map in the schema, closed in the SDK type'}`);
    } else if (schema.additional && type.additional) out.push(...differences(schema.additional, type.additional, `${path}{}`));
  }
  return out;
}

const compared = Object.entries(SDK_TYPE).filter((e): e is [ResponseName, string] => e[1] !== null);

describe('SDK wire types and the answer schemas', () => {
  it('every answer schema is paired with an SDK type (or excluded with a reason)', () => {
    assert.deepEqual(Object.keys(responseSchemas).sort(), Object.keys(SDK_TYPE).sort());
  });

  it('every view the SDK declares is an answer', () => {
    const file = ts.createSourceFile('wire.ts', ts.sys.readFile(join(sdk, 'wire.ts'))!, ts.ScriptTarget.ES2022);
    const views = file.statements.filter((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && /(View|Page)$/.test(s.name.text)).map((s) => s.name.text);
    const named = new Set(Object.values(SDK_TYPE).flatMap((e) => [...(e ?? '').matchAll(/wire\.(\w+)/g)].map((m) => m[1])));
    assert.deepEqual(views.filter((v) => !named.has(v)), [], 'views in wire.ts without an answer schema');
  });

  it('have the same properties, optionality, nullability, kinds and enums', () => {
    const { checker, types } = sdkTypes(Object.fromEntries(compared));
    const problems = compared.flatMap(([name]) => differences(schemaShape(responseSchemas[name]), typeShape(checker, types.get(name)!), name));
    assert.deepEqual(problems, []);
  });

  it('the comparison notices a property, an optional property or a null added on one side only', () => {
    const { checker, types } = sdkTypes({
      Added: 'wire.TaskView & { extra: string }',
      Optional: "Omit<wire.TaskView, 'rootId'> & { rootId?: string }",
      Nullable: "Omit<wire.TaskView, 'rootId'> & { rootId: string | null }",
      Enum: "Omit<wire.TaskView, 'status'> & { status: wire.TaskStatus | 'paused' }",
      Plain: 'wire.TaskView',
    });
    const against = (alias: string) => differences(schemaShape(responseSchemas.TaskView), typeShape(checker, types.get(alias)!), 'TaskView');
    assert.deepEqual(against('Added'), ['TaskView.extra: in the SDK type only']);
    assert.deepEqual(against('Optional'), ['TaskView.rootId: required in the schema, optional in the SDK type']);
    assert.deepEqual(against('Nullable'), ['TaskView.rootId: nullable in the SDK type only']);
    assert.equal(against('Enum').length, 1);
    // And a property in the schema only.
    const view = responseSchemas.TaskView;
    const widened = { ...view, required: [...(view.required as string[]), 'extra'], properties: { ...(view.properties as object), extra: { type: 'string' } } };
    assert.deepEqual(differences(schemaShape(widened), typeShape(checker, types.get('Plain')!), 'TaskView'), ['TaskView.extra: in the schema only']);
  });
});
