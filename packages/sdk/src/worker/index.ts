export { createWorker, FlotillaWorker, RESULT_TOO_LARGE, stopOnSignals, Suspension, Dependencies, type ChildSpec, type ChildTask, type SpawnAndWait, type Handler, type Logger, type TaskContext, type WorkerOptions, type WorkerTask } from './worker.ts';
export type { HealthReport } from './channel.ts';
export { NonRetryableError, RateLimitedError, TaskAbortedError, type AbortKind } from './errors.ts';
