/**
 * Child process of the SIGKILL durability test: commits IVK versions 1..N one
 * transaction each, printing "committed <v>" as soon as each COMMIT returns,
 * and SIGKILLs itself right after the last one (or is killed by the parent
 * earlier). Usage: sqlite-kill-child.ts <db path> <N>
 */
import { writeSync } from 'node:fs';
import { SqliteStore } from '../../../core/src/store/sqlite/sqlite-store.ts';
import { ivkRecord } from './fixtures.ts';

const [path, n] = process.argv.slice(2);
if (path === undefined || n === undefined) throw new Error('usage: sqlite-kill-child.ts <db path> <N>');
const store = SqliteStore.open({ path });
await store.migrate();
for (let v = 1; v <= Number(n); v++) {
  await store.transaction((tx) => tx.insertIvk(ivkRecord(v, { wraps: v })));
  writeSync(1, `committed ${v}\n`); // synchronous: the parent sees it before any kill
}
process.kill(process.pid, 'SIGKILL');
