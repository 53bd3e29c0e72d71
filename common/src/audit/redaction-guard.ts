/**
 * A last line of defence against secrets in audit records. Records are built
 * from typed fields only, but a free-text field (actor, resource, reason,
 * correlation id) could still be handed a key or a plaintext by a bug. A value
 * that looks like key material is replaced by {@link REDACTED} before the
 * record is written, and the writer counts it and raises an alert: the action
 * is still audited (dropping the record would fail open), the secret is not.
 *
 * "Looks like key material" (docs/audit.md "Redaction guard"):
 * - a run of 64 or more hex digits (a 256-bit key in hex);
 * - a run of 40 or more standard base64 characters that contains `+` or `/`
 *   or ends in `=`, and mixes upper case, lower case and digits (a 256-bit
 *   key is 44 characters of padded base64; a path like `tenants/acme/keys`
 *   does not mix all three);
 * - a PEM block marker (`-----BEGIN`).
 * Ids of this project (tenant and key ids, 32-hex trace ids, `kcm-` + 16 hex
 * cluster ids) stay below these thresholds.
 */

/** What a suspicious value is replaced with. */
export const REDACTED = '[redacted]';

const HEX_RUN = /[0-9a-fA-F]{64,}/;
const BASE64_RUN = /[A-Za-z0-9+/]{40,}={0,2}/g;
const PEM = /-----BEGIN/;

/** True when `value` looks like key material or an encoded secret by the rules above. */
export function looksLikeSecret(value: string): boolean {
  if (HEX_RUN.test(value) || PEM.test(value)) return true;
  for (const m of value.matchAll(BASE64_RUN)) {
    const run = m[0];
    const marked = run.includes('+') || run.includes('/') || run.endsWith('=');
    if (marked && /[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run)) return true;
  }
  return false;
}
