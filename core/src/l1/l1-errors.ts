/**
 * Provider failures of a tenant's L1 → the Core's error codes. One rule for
 * every provider (ADR-501 normalised kinds): the L1 could not be reached
 * (`rate_limited`, `unavailable`, `config` — a provider that cannot start or
 * is closed) → `l1_unavailable` (503); the L1 answered and refused (access
 * denied, key disabled or missing, a blob it will not open) → `l1_rejected`
 * (403). Both put the tenant in suspended semantics (docs/core.md). Messages
 * name the provider and the normalised kind, never key material.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { SealProviderError } from '../seal/seal-provider.ts';

/** Maps `err` to a KcmError; KcmErrors pass unchanged; anything else is rethrown as is (a bug, not an outage). */
export function l1Error(err: unknown, provider: string): KcmError {
  if (err instanceof KcmError) return err;
  if (err instanceof SealProviderError) {
    const reached = err.kind === 'rate_limited' || err.kind === 'unavailable' || err.kind === 'config';
    return new KcmError(reached ? 'l1_unavailable' : 'l1_rejected', `L1 provider ${provider}: ${err.kind}`);
  }
  throw err;
}

/** True for the two L1 codes (they trigger automatic suspension). */
export function isL1Failure(err: unknown): err is KcmError {
  return err instanceof KcmError && (err.code === 'l1_unavailable' || err.code === 'l1_rejected');
}
