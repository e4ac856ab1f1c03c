export { startServer, createLogger, type RunningServer } from './server.ts';
export { loadConfig, DEFAULT_CONFIG, type ServerConfig } from './config/config.ts';
export { Engine } from './engine/engine.ts';
export { buildApp, API_PREFIX } from './http/app.ts';
export { openStore } from './store/open-store.ts';
export type { Store, StoreCapabilities } from './store/store.ts';
