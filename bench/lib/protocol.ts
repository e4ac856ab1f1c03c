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

export interface WorkerStarted {
  transport: 'websocket' | 'http';
  replicaId: string | null;
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
