/**
 * ApprovalService on a real SQLite store (IntegrityStore, MACs on). One
 * process has one writer per file, so concurrent approvals race through the
 * store's transaction queue, as they do in an embedded Core.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import { RecordMac } from '../../../core/src/store/record-mac.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { type QuorumEnv, runApprovalSuite } from './approval-suite.ts';

async function makeEnv(): Promise<QuorumEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'okcm-quorum-'));
  const raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
  const store = new IntegrityStore(raw);
  const masterKey = defaultCrypto().generateKey();
  store.setMac(new RecordMac(masterKey));
  return {
    stores: [store],
    cleanup: async () => {
      store.setMac(null);
      masterKey.destroy();
      await raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('ApprovalService on SQLite', () => {
  runApprovalSuite('sqlite', makeEnv);
});
