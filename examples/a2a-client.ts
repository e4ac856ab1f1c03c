// Any A2A client can use Flotilla: this one is the A2A SDK's own. It reads Flotilla's agent
// card, sends one message to a skill (a Flotilla agent published with `a2aSkill`), waits for
// the task to settle and prints its result. Run it (with a worker of the agent running):
//   npx node examples/a2a-client.ts '{"text":"hello"}' [skill]
// FLOTILLA_URL (default http://127.0.0.1:8080) and FLOTILLA_TOKEN (an API key or a scoped
// token that may submit tasks) say where and as whom.
import { randomUUID } from 'node:crypto';
import { Role, TaskState, type Part, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, createAuthenticatingFetchWithRetry } from '@a2a-js/sdk/client';

const url = process.env.FLOTILLA_URL ?? 'http://127.0.0.1:8080';
const token = process.env.FLOTILLA_TOKEN;
if (!token) throw new Error('set FLOTILLA_TOKEN to an API key or scoped token');
const [raw = '{"text":"hello"}', skill] = process.argv.slice(2);

// Every request carries the bearer token (the card itself is public).
const authed = createAuthenticatingFetchWithRetry(fetch, {
  headers: async () => ({ authorization: `Bearer ${token}` }),
  shouldRetryWithHeaders: async () => undefined,
});
const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
  transports: [new JsonRpcTransportFactory({ fetchImpl: authed })],
}));
const client = await factory.createFromUrl(url);
const card = await client.getAgentCard();
console.log(`card: ${card.name} (skills: ${card.skills.map((s) => s.id).join(', ') || 'none'}), A2A ${client.protocolVersion}`);

// JSON goes as a data part (the task's input is that JSON), anything else as text.
let part: Part;
try {
  part = { content: { $case: 'data', value: JSON.parse(raw) }, metadata: undefined, filename: '', mediaType: 'application/json' };
} catch {
  part = { content: { $case: 'text', value: raw }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}
const task = await client.sendMessage({
  tenant: '',
  message: {
    messageId: randomUUID(), contextId: '', taskId: '', role: Role.ROLE_USER, parts: [part], extensions: [], referenceTaskIds: [],
    metadata: skill ? { skill } : undefined,
  },
  configuration: undefined,
  metadata: undefined,
}) as Task;

const state = TaskState[task.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED].replace('TASK_STATE_', '').toLowerCase();
console.log(`task ${task.id}: ${state}`);
const result = task.artifacts[0]?.parts[0]?.content;
if (result) console.log(`result: ${JSON.stringify(result.value)}`);
else if (task.status?.message) console.log(`message: ${JSON.stringify(task.status.message.parts.map((p) => p.content?.value))}`);
