export * from './wire.ts';
export * from './errors.ts';
export * from './client/index.ts';
export * from './worker/index.ts';
export * from './webhook-signature.ts';
