// What the bench processes (bench/processes/*.ts) answer the bench. Times are wall-clock
// ms (bench/lib/clock.ts), comparable across the processes of one machine.

export interface SubmitOutcome {
  /** Just before the first submit call. */
  startMs: number;
  /** When the last submit call had its answer. */
  endMs: number;
  /** The ids of the tasks created, in submission order. */
  ids: string[];
  calls: number;
  /** steady: the latest a call started after its scheduled time. */
  maxLagMs?: number;
}

/** A submit outcome as the results keep it: the ids are only for verifying. */
export function withoutIds({ ids: _ids, ...rest }: SubmitOutcome): Omit<SubmitOutcome, 'ids'> {
  return rest;
}

export interface WorkerStarted {
  transport: 'websocket' | 'http';
  /** One per server the worker process registered on. */
  replicaIds: Array<string | null>;
}

export interface WorkerOutcome {
  /** Handler invocations / completions the server acknowledged. */
  handled: number;
  completed: number;
  failed: number;
  /** When the first handler started. */
  firstStartMs: number;
  /** When the last handler started. */
  lastStartMs: number;
  /** When the worker saw the last completion acknowledged. */
  lastAckMs: number;
  /** latency mode: handler start minus the input's `t`, per task, in arrival order. */
  latenciesMs?: number[];
}

/** The idle fleet's account (bench/processes/idle-fleet.ts). */
export interface FleetStats {
  workers: number;
  /** Workers holding a registration now. */
  workersRegistered: number;
  subscribers: number;
  /** Event streams still open. */
  subscribersOpen: number;
  /** The fewest and the most events one subscriber has received. */
  eventsPerSubscriber: { min: number; max: number } | null;
  /** Tasks handed to the idle workers (there must be none). */
  tasksHandled: number;
}
