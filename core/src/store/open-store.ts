/**
 * The one entry point the Core uses to get a Store: opens the configured
 * backend and migrates it. Nothing outside store/ imports a backend directly.
 */
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';
import { storeError } from './store-error.ts';

export type StoreConfig =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; connectionString: string; schema?: string };

/**
 * Opens and migrates a store. Throws `invalid_config` for a bad config,
 * `store_schema` for a database newer than this build, `store_unavailable`
 * when the database cannot be reached; on failure nothing is left open.
 */
export async function openStore(config: StoreConfig): Promise<Store> {
  let store: Store;
  switch (config.kind) {
    case 'sqlite':
      store = SqliteStore.open({ path: config.path });
      break;
    case 'postgres':
      store = PostgresStore.open({
        connectionString: config.connectionString,
        ...(config.schema === undefined ? {} : { schema: config.schema }),
      });
      break;
    default:
      throw storeError(
        'invalid_config',
        `openStore: unknown kind ${JSON.stringify((config as { kind: unknown }).kind)}`,
      );
  }
  try {
    await store.migrate();
    return store;
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
}
