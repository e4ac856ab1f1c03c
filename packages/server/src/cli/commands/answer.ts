// `flotilla answer ID --input JSON`: answers a task in input_required (its handler called
// ctx.requestInput). The server checks the answer against the schema the handler gave.

import { parseCommand } from './args.ts';
import { UsageError } from './errors.ts';
import { printJson, taskBlock } from './output.ts';
import { parseInput } from './tasks.ts';

export const ANSWER_USAGE = `Usage: flotilla answer ID --input JSON

Answers a task that asks for input (status input_required; \`flotilla ls --status
input_required\` lists them, \`flotilla get ID\` shows the question and the answer's schema).
The task is pending again and its next attempt receives the answer.

  --input JSON    the answer (a JSON value), checked against the request's schema
`;

export async function answerCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'answer', usage: ANSWER_USAGE, positionals: ['ID'], options: { input: { type: 'string' } } });
  if (cmd === null) return;
  const raw = cmd.values.input as string | undefined;
  if (raw === undefined) throw new UsageError('--input is required: the answer, as JSON (e.g. --input \'{"approve":true}\')');
  const task = await cmd.client().tasks.answer(cmd.positionals[0]!, parseInput(raw)!);
  if (cmd.json) printJson(task);
  else process.stdout.write(taskBlock(task));
}
