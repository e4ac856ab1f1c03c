// Row <-> record mapping of the A2A push tables (migration 16), shared by both stores: the
// column lists and the readers, so a query and its mapper cannot disagree about names.

import type { Json } from '../core/types.ts';
import type { ColumnReader } from './record-mapping.ts';
import type { A2aPushConfigRecord, A2aPushDeliveryRecord } from './store.ts';

export const A2A_PUSH_CONFIG_COLUMNS = [
  'task_id', 'id', 'url', 'token', 'auth_scheme', 'auth_credentials', 'wire_version', 'owner_id', 'created_at', 'last_state',
] as const;

export const A2A_PUSH_DELIVERY_COLUMNS = [
  'id', 'task_id', 'config_id', 'url', 'token', 'auth_scheme', 'auth_credentials', 'wire_version', 'payload', 'attempts',
  'next_at', 'created_at', 'last_error',
] as const;

/** A config's column values in A2A_PUSH_CONFIG_COLUMNS order. */
export function a2aPushConfigValues(c: A2aPushConfigRecord): Array<string | number | null> {
  return [c.taskId, c.id, c.url, c.token, c.authScheme, c.authCredentials, c.wireVersion, c.ownerId, c.createdAt, c.lastState];
}

export function a2aPushMappers<R extends Record<string, unknown>>(r: ColumnReader<R>) {
  return {
    a2aPushConfigFromRow(row: R): A2aPushConfigRecord {
      return {
        taskId: r.str(row, 'task_id'),
        id: r.str(row, 'id'),
        url: r.str(row, 'url'),
        token: r.strOrNull(row, 'token'),
        authScheme: r.strOrNull(row, 'auth_scheme'),
        authCredentials: r.strOrNull(row, 'auth_credentials'),
        wireVersion: r.str(row, 'wire_version'),
        ownerId: r.strOrNull(row, 'owner_id'),
        createdAt: r.num(row, 'created_at'),
        lastState: r.strOrNull(row, 'last_state'),
      };
    },
    a2aPushDeliveryFromRow(row: R): A2aPushDeliveryRecord {
      return {
        id: r.num(row, 'id'),
        taskId: r.str(row, 'task_id'),
        configId: r.str(row, 'config_id'),
        url: r.str(row, 'url'),
        token: r.strOrNull(row, 'token'),
        authScheme: r.strOrNull(row, 'auth_scheme'),
        authCredentials: r.strOrNull(row, 'auth_credentials'),
        wireVersion: r.str(row, 'wire_version'),
        payload: r.json(row, 'payload') as Json,
        attempts: r.num(row, 'attempts'),
        nextAt: r.num(row, 'next_at'),
        createdAt: r.num(row, 'created_at'),
        lastError: r.strOrNull(row, 'last_error'),
      };
    },
  };
}
