// The traits of each kind of transition, decided once. The engine wakes the dispatcher on
// `wakesDispatcher`, the stores choose a relaxed or a durable commit on `durable`, and the
// agent statistics count an attempt on `countsAsAttempt`; nobody infers them from which
// fields a transition happens to set.
//
// Durability (docs/decisions.md 41): what a client or an operator is told has happened is
// durable before it is acknowledged (a final outcome, a cancellation, a requeue). A claim,
// a start and the undo of a claim are relaxed: they survive a process kill, and after a power
// loss the task is found as it was before them and dispatched again (at-least-once delivery).

import type { Transition, TransitionKind } from './types.ts';

export interface TransitionTraits {
  wakesDispatcher: boolean;
  /** The task is pending again (now or after a backoff): the queue is no longer empty. */
  queuesTask: boolean;
  countsAsAttempt: boolean;
  durable: boolean;
  /** The task ends: a parent waiting for it may be resumed (engine/tree-waker.ts). */
  endsTask: boolean;
}

export const TRANSITION_TRAITS: Readonly<Record<TransitionKind, TransitionTraits>> = {
  // Takes a slot; nothing becomes dispatchable.
  dispatch: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: true, durable: false, endsTask: false },
  start: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: true, durable: false, endsTask: false },
  // Frees the slot.
  complete: { wakesDispatcher: true, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: true },
  // Frees the slot and makes the task pending again (after its backoff: the dispatcher arms its timer).
  retry: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: true, durable: true, endsTask: false },
  fail: { wakesDispatcher: true, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: true },
  // The dispatch never reached the replica: slot back, task pending again, attempt not counted.
  // Relaxed like the claim it undoes: lost with it, or redone by the reaper if lost alone.
  dispatch_failed: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: false, durable: false, endsTask: false },
  // A pending task cancelled: an operator's action; no slot was held.
  cancel: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: true },
  cancel_request: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: false },
  // The cancelled attempt ended: frees the slot.
  cancel_ack: { wakesDispatcher: true, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: true },
  // A failed task pending again.
  requeue: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: true, durable: true, endsTask: false },
  // An operator dispatched the task now (POST /tasks/{id}/assign): a dispatch, durable
  // because an operator is told it happened.
  assign: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: false },
  // An operator failed the task: an operator's action, and a final outcome. Frees the slot of
  // a live attempt (a pending task held none; the wake then finds nothing new, harmlessly).
  operator_fail: { wakesDispatcher: true, queuesTask: false, countsAsAttempt: true, durable: true, endsTask: true },
  // The handler ended its attempt by waiting for children, or by asking for input: the slot is
  // freed, and the attempt is not counted (the task's attempt number is given back). Durable:
  // the worker is told its attempt is over, and the children it waits for already exist.
  wait: { wakesDispatcher: true, queuesTask: false, countsAsAttempt: false, durable: true, endsTask: false },
  ask_input: { wakesDispatcher: true, queuesTask: false, countsAsAttempt: false, durable: true, endsTask: false },
  // The awaited children all ended: pending again. Relaxed: nobody is told; lost with a power
  // failure, it is decided again by the maintenance sweep from the children, which are durable.
  resume: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: false, durable: false, endsTask: false },
  // Somebody answered: an operator's action, pending again.
  answer: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: false, durable: true, endsTask: false },
  // Nobody answered in time: the task fails for good (the dead-letter list).
  input_timeout: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: false, durable: true, endsTask: true },
  // Every dependency ended (engine/unblocker.ts): pending, with their outcomes. Relaxed like a
  // resume: nobody is told; lost with a power failure, the sweep decides it again from the
  // dependencies, which are durable.
  unblock: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: false, durable: false, endsTask: false },
  // A dependency failed or was cancelled: the dependent fails for good (a final outcome), and
  // ends, so its own dependents are looked at in turn.
  dependency_failed: { wakesDispatcher: false, queuesTask: false, countsAsAttempt: false, durable: true, endsTask: true },
  // The worker met a provider's 429: the slot is freed and the task pending again after the
  // pause, its attempt given back (not counted: the provider refused, the task did not fail).
  // Durable: the worker is told its attempt is over, and the pause must outlive a power loss.
  rate_limited: { wakesDispatcher: true, queuesTask: true, countsAsAttempt: false, durable: true, endsTask: false },
};

type TransitionBody = Omit<Transition, 'kind' | keyof TransitionTraits>;

/** A transition of `kind` with that kind's traits. */
export function transitionOf(kind: TransitionKind, body: TransitionBody): Transition {
  return { kind, ...TRANSITION_TRAITS[kind], ...body };
}
