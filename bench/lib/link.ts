// Child side of the parent link (see child.ts): serves requests from the parent over IPC and
// exits when the parent disconnects (normal end, or the parent died).

import { wallNow } from './clock.ts';

export interface Request {
  id: number;
  op: string;
  args: unknown;
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export type Ops = Record<string, (args: any) => Promise<unknown> | unknown>;

export function serveParent(ops: Ops, onDisconnect: () => Promise<void> | void = () => {}): void {
  if (!process.send) throw new Error('this is a bench child process: run `npm run bench`');
  const all: Ops = { ping: () => 'pong', clock: () => wallNow(), ...ops };
  process.on('message', (req: Request) => {
    const reply = (r: Reply) => {
      if (process.connected) process.send!(r);
    };
    const op = all[req.op];
    if (!op) return reply({ id: req.id, ok: false, error: `unknown op ${req.op}` });
    Promise.resolve()
      .then(() => op(req.args))
      .then((value) => reply({ id: req.id, ok: true, value }), (err: unknown) => reply({ id: req.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }));
  });
  process.once('disconnect', () => {
    void Promise.resolve()
      .then(onDisconnect)
      .finally(() => process.exit(0));
  });
}
