// Constants of the worker protocol shared by its HTTP and WebSocket forms (docs/protocol.md).

export const PROTOCOL_VERSION = 1;

/** A third of the shorter window: two heartbeats can be lost before either the lease or the replica TTL lapses. */
export function heartbeatInterval(leaseMs: number, replicaTtlMs: number): number {
  return Math.max(100, Math.floor(Math.min(leaseMs, replicaTtlMs) / 3));
}
