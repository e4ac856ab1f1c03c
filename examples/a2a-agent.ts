// A small A2A agent (A2A v1.0, the official @a2a-js/sdk with express) that Flotilla can
// dispatch to: it greets whoever the task's input names, with a working update on the way.
// Start it, register it as an agent with `runtime: "a2a"`, and submit tasks to it:
//
//   npx node examples/a2a-agent.ts &      # A2A_PORT=9400 by default (0: a free port)
//   npx flotilla agents create greeter --runtime a2a --a2a-url http://127.0.0.1:9400
//   npx flotilla submit --agent greeter --input '{"name":"Ada"}' --wait
//
// Flotilla fetches its card (http://127.0.0.1:9400/.well-known/agent-card.json), sends each
// task as an A2A message (the input as a data part), follows the task it creates over the
// stream the card offers (its working message becomes the task's progress), and makes its
// artifact the task's result (docs/a2a.md). An agent whose card says it does not stream is
// polled with tasks/get instead.

import express from 'express';
import { Role, TaskState, type AgentCard, type Message } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore, type AgentExecutor } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';

const port = Number(process.env.A2A_PORT ?? 9400);

/** The name to greet: `input.name` of a data part, or the text of the message. */
function nameIn(message: Message): string {
  for (const part of message.parts) {
    if (part.content?.$case === 'data' && typeof part.content.value?.name === 'string') return part.content.value.name;
    if (part.content?.$case === 'text') return part.content.value;
  }
  return 'stranger';
}

const executor: AgentExecutor = {
  async execute(ctx, bus) {
    const now = () => new Date().toISOString();
    const say = (text: string): Message => ({
      messageId: crypto.randomUUID(), contextId: ctx.contextId, taskId: ctx.taskId, role: Role.ROLE_AGENT,
      parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
      metadata: undefined, extensions: [], referenceTaskIds: [],
    });
    bus.publish(AgentEvent.task(ctx.task ?? {
      id: ctx.taskId, contextId: ctx.contextId, artifacts: [], history: [ctx.userMessage], metadata: undefined,
      status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: now() },
    }));
    bus.publish(AgentEvent.statusUpdate({ taskId: ctx.taskId, contextId: ctx.contextId, metadata: undefined, status: { state: TaskState.TASK_STATE_WORKING, message: say('thinking of a greeting'), timestamp: now() } }));
    await new Promise((r) => setTimeout(r, 500));
    const greeting = `Hello, ${nameIn(ctx.userMessage)}!`;
    bus.publish(AgentEvent.artifactUpdate({
      taskId: ctx.taskId, contextId: ctx.contextId, append: false, lastChunk: true, metadata: undefined,
      artifact: {
        artifactId: 'greeting', name: 'greeting', description: '', metadata: undefined, extensions: [],
        parts: [{ content: { $case: 'data', value: { greeting } }, metadata: undefined, filename: '', mediaType: 'application/json' }],
      },
    }));
    bus.publish(AgentEvent.statusUpdate({ taskId: ctx.taskId, contextId: ctx.contextId, metadata: undefined, status: { state: TaskState.TASK_STATE_COMPLETED, message: say(greeting), timestamp: now() } }));
    bus.finished();
  },
  async cancelTask() {
    // Each task takes half a second; there is nothing worth stopping.
  },
};

const app = express();
const server = app.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address() as { port: number };
  const url = `http://127.0.0.1:${actual}`;
  const card: AgentCard = {
    name: 'greeter', description: 'Greets whoever the input names', version: '1.0.0',
    supportedInterfaces: [{ url: `${url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' }],
    provider: undefined, documentationUrl: undefined, iconUrl: undefined,
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {}, securityRequirements: [], defaultInputModes: ['application/json', 'text/plain'], defaultOutputModes: ['application/json'],
    skills: [{ id: 'greet', name: 'greet', description: 'Say hello to a name', tags: ['greeting'], examples: ['{"name":"Ada"}'], inputModes: [], outputModes: [], securityRequirements: [] }],
    signatures: [],
  };
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
  app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: handler }));
  app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  console.log(`A2A agent "greeter" listening on ${url}`);
});
