// The entry of a token worker thread (token-workers.ts): workers do not
// inherit the main thread's TypeScript loader, so each registers one, then
// loads the worker itself. tsx's require hook, not its ESM loader: the ESM
// loader runs its hooks on a thread of their own, one more per worker
// (measured with four workers: 34 MB and two threads per worker through the
// ESM loader, 16 MB and one thread through the require hook). The code it
// loads becomes CommonJS, which is strict only under the repository's
// tsconfig (`strict`), so that is named here rather than looked up from the
// working directory (a gateway started elsewhere would run it sloppy).
const { join } = require('node:path');

process.env.TSX_TSCONFIG_PATH = join(__dirname, '..', '..', '..', 'tsconfig.json');
require('tsx/cjs/api').register();
require('./token-worker.ts');
