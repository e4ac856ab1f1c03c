// Schedule calls (issue 16, docs/schedules.md). Create and delete are not retried on another
// node after a failure that may have been applied (a resend would answer SCHEDULE_EXISTS /
// SCHEDULE_NOT_FOUND for a call that in fact succeeded); PATCH, pause and resume set the same
// state again, so they are.

import type { SchedulePatch, ScheduleSpec, ScheduleView } from '../wire.ts';
import type { Transport } from './transport.ts';
import type { CallOptions } from './types.ts';

const enc = encodeURIComponent;

export class SchedulesApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  async list(opts: CallOptions = {}): Promise<ScheduleView[]> {
    return (await this.#t.request<{ items: ScheduleView[] }>('GET', '/schedules', { idempotent: true, signal: opts.signal })).items;
  }

  /** With its next fire times and its last firing (time, task, outcome). */
  get(name: string, opts: CallOptions = {}): Promise<ScheduleView> {
    return this.#t.request('GET', `/schedules/${enc(name)}`, { idempotent: true, signal: opts.signal });
  }

  /** Its tasks are submitted as the caller (an API key), checked now and at every firing. */
  create(spec: ScheduleSpec, opts: CallOptions = {}): Promise<ScheduleView> {
    return this.#t.request('POST', '/schedules', { body: spec, idempotent: false, signal: opts.signal });
  }

  update(name: string, patch: SchedulePatch, opts: CallOptions = {}): Promise<ScheduleView> {
    return this.#t.request('PATCH', `/schedules/${enc(name)}`, { body: patch, idempotent: true, signal: opts.signal });
  }

  pause(name: string, opts: CallOptions = {}): Promise<ScheduleView> {
    return this.#t.request('POST', `/schedules/${enc(name)}/pause`, { idempotent: true, signal: opts.signal });
  }

  resume(name: string, opts: CallOptions = {}): Promise<ScheduleView> {
    return this.#t.request('POST', `/schedules/${enc(name)}/resume`, { idempotent: true, signal: opts.signal });
  }

  async delete(name: string, opts: CallOptions = {}): Promise<void> {
    await this.#t.request('DELETE', `/schedules/${enc(name)}`, { idempotent: false, signal: opts.signal });
  }
}
