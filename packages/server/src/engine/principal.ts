// Who is calling. Every service method takes the principal explicitly so roles and scoped
// tokens (a later issue) can be enforced per action without changing signatures.

export type Role = 'admin';

export interface Principal {
  /** The API key id (or token id) that authenticated the call. */
  id: string;
  name: string;
  role: Role;
}

/** The server itself (config-file declarations, maintenance). */
export const SYSTEM_PRINCIPAL: Principal = { id: 'system', name: 'system', role: 'admin' };
