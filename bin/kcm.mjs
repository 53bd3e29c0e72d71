#!/usr/bin/env node
// The `kcm` command: registers the TypeScript loader, then runs cli/main.ts.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// The repository's tsconfig wherever kcm is started from (tsx would look for one in the working directory).
process.env.TSX_TSCONFIG_PATH = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
