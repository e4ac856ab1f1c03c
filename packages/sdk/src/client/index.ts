// The client's public surface (re-exported from the package root).
export { Flotilla, type FlotillaOptions } from './flotilla.ts';
export { FlotillaApiError, FlotillaNetworkError, isFlotillaError } from './errors.ts';
export { SseParser, type SseMessage, type EventStreamOptions } from './sse.ts';
export type { TasksApi } from './tasks.ts';
export type { AgentsApi } from './agents.ts';
export type { KeysApi, KeyListOptions } from './keys.ts';
export type { TokensApi } from './tokens.ts';
export type { AuditApi, AuditFilters, AuditPageFilters } from './audit.ts';
export type { ReportsApi, DelegationOptions } from './reports.ts';
export type { SchedulesApi } from './schedules.ts';
export type { RateLimitsApi, UsageApi, UsageOptions } from './flow.ts';
export type * from './types.ts';
export type { WebhooksApi } from './webhooks.ts';
