// The entry of a token worker thread (token-workers.ts): workers do not
// inherit the main thread's TypeScript loader, so each registers one, then
// loads the worker itself. tsx's require hook, not its ESM loader: the ESM
// loader runs its hooks on a thread of their own, one more per worker
// (measured with four workers: 34 MB and two threads per worker through the
// ESM loader, 16 MB and one thread through the require hook).
require('tsx/cjs/api').register();
require('./token-worker.ts');
