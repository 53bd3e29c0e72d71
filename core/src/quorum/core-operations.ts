/**
 * The Core's high-risk operations (ADR-404) and their executors, in one
 * registry: tenant revoke (kill switch) and L1 unlink (registered by the
 * tenant routes), emergency IVK rotation, and authorization policy change.
 * and Shamir share re-keying (whose sealed shares are also written to
 * `<dataDir>/rekeys/` before the new split commits, so a crash between the
 * commit and the approval result cannot lose them).
 */

import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy } from '../../../common/src/authz/policy-file.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { type KeysOf, registerTenantExecutors } from '../api/routes/tenants.ts';
import type { RootOfTrust } from '../root/root-of-trust.ts';
import { sharesRekeyExecutor } from '../root/share-rekey.ts';
import type { JsonValue } from './canonical-params.ts';
import { ExecutorRegistry } from './executor-registry.ts';

export interface CoreOperationsDeps {
  root: RootOfTrust;
  keys: KeysOf;
  /** The authorization policy file the admin and edge APIs watch; policy changes are refused without one. */
  authzPolicy?: string;
  /** Where a share re-key writes its sealed shares before committing (`<dataDir>/rekeys/<approval id>.json`). */
  dataDir: string;
}

/** Writes `text` to `file` atomically (same directory, then rename): watchers never see half a policy. */
function replaceFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

export function coreOperations(d: CoreOperationsDeps): ExecutorRegistry {
  const registry = new ExecutorRegistry();
  registerTenantExecutors(registry, d.keys);
  registry.register('ivk.rotate_emergency', {
    summary: 'rotate the IVK now (emergency): new L2 wraps use the new version',
    validate: (p) => {
      if (p !== undefined && (typeof p !== 'object' || p === null || Object.keys(p).length > 0)) {
        throw new KcmError('bad_request', 'ivk.rotate_emergency takes no parameters');
      }
      return {};
    },
    execute: async () => (await d.root.ivk().rotate('emergency')) as unknown as JsonValue,
  });
  registry.register(
    'shares.rekey',
    sharesRekeyExecutor(d.root, {
      keep: (approvalId, result) => {
        const dir = join(d.dataDir, 'rekeys');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const file = join(dir, `${approvalId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
        writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`, { mode: 0o600, flush: true });
      },
    }),
  );
  registry.register('authz.policy_change', {
    summary: 'replace the authorization policy (who holds which role for which tenants)',
    validate: (p) => {
      if (!d.authzPolicy) throw new KcmError('bad_request', 'this Core has no authorization policy file to change');
      const policy = (p as { policy?: unknown } | null)?.policy;
      // Refused at proposal time when the policy would not load: approvers vote on a valid document.
      parsePolicy(policy, 'proposed policy');
      return { policy: policy as JsonValue };
    },
    execute: async (p) => {
      const file = d.authzPolicy as string;
      const text = `${JSON.stringify(p.policy, null, 2)}\n`;
      parsePolicy(JSON.parse(text), 'proposed policy');
      replaceFile(file, text);
      return { file, sha256: createHash('sha256').update(text).digest('hex') };
    },
  });
  return registry;
}
