// The store conformance suite: one set of behavioural tests every Store implementation must
// pass, written against the Store interface and the state machine only. A store's test
// file calls runStoreConformance with a factory that opens a fresh, empty store per test.
//
//   runStoreConformance('sqlite', async () => {
//     const store = await openMyStore();
//     return { store, reopen: () => openMyStore(sameDatabase), cleanup: async () => { ... } };
//   });

import { describe } from 'node:test';
import { assignmentTests } from './assignments.ts';
import { coordinationTests } from './coordination.ts';
import { handOffTests, transitionSetTests } from './hand-off.ts';
import type { OpenStore } from './harness.ts';
import { lifecycleTests } from './lifecycle.ts';
import { registryTests } from './registry.ts';
import { securityTests } from './security.ts';
import { slaTests } from './slas.ts';
import { suspensionTests } from './suspensions.ts';
import { operatorControlTests } from './operator-controls.ts';
import { taskTests } from './tasks.ts';
import { transitionTests } from './transitions.ts';
import { a2aAttemptTests } from './a2a-attempts.ts';
import { a2aPushTests } from './a2a-push.ts';
import { toolDomainTests } from './tool-domains.ts';
import { dependencyTests } from './dependencies.ts';
import { webhookTests } from './webhooks.ts';
import { scheduleTests } from './schedules.ts';
import { resultCacheTests } from './result-cache.ts';
import { flowControlTests } from './flow-control.ts';

export type { OpenStore, StoreUnderTest } from './harness.ts';

export function runStoreConformance(name: string, open: OpenStore): void {
  describe(`store conformance: ${name}`, () => {
    taskTests(open);
    handOffTests(open);
    transitionSetTests(open);
    transitionTests(open);
    suspensionTests(open);
    slaTests(open);
    assignmentTests(open);
    registryTests(open);
    operatorControlTests(open);
    lifecycleTests(open);
    coordinationTests(open);
    securityTests(open);
    a2aAttemptTests(open);
    a2aPushTests(open);
    toolDomainTests(open);
    dependencyTests(open);
    webhookTests(open);
    scheduleTests(open);
    resultCacheTests(open);
    flowControlTests(open);
  });
}
