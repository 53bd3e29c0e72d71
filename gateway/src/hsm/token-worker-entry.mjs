// The entry of a token worker thread (token-workers.ts): workers do not
// inherit the main thread's TypeScript loader when `kcm` registered it, so
// each registers it, then loads the worker itself.
import { register } from 'tsx/esm/api';

register();
await import('./token-worker.ts');
