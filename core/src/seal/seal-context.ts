/**
 * The canonical byte encoding of a SealContext, used as the AES-GCM AAD of the
 * data key (ADR-204: AAD = Cluster_ID + Region_ID):
 *
 *   u8 len ‖ "openkcm/seal-context/v1" ‖ u16be len ‖ clusterId ‖ u16be len ‖ region   (UTF-8)
 *
 * Length prefixes make the encoding injective ("ab"+"c" ≠ "a"+"bc"); the
 * domain tag keeps it from colliding with any other AAD of the project.
 * Shared by every provider that does its own AEAD (pkcs11/, dev/);
 * test/core/seal/context-aad.test.ts pins it to a known answer.
 */
import { type SealContext, type SealProvider, SealProviderError } from './seal-provider.ts';

const DOMAIN = Buffer.from('openkcm/seal-context/v1', 'utf8');
/**
 * With `ctx.tenant` set (a tenant's L1, core/src/l1/) the encoding is
 *   u8 len ‖ "openkcm/l1-context/v1" ‖ u16be len ‖ clusterId ‖ u16be len ‖ region ‖ u16be len ‖ tenant
 * Another domain tag, so it never equals a seal context.
 */
const L1_DOMAIN = Buffer.from('openkcm/l1-context/v1', 'utf8');
/** Upper bound on each field, in UTF-8 bytes. */
export const MAX_CONTEXT_FIELD_BYTES = 256;

/**
 * Encodes `ctx`; throws SealProviderError `config` (naming the field) when
 * clusterId, region or (when set) tenant is not a string of 1..256 UTF-8 bytes.
 */
export function sealContextAad(ctx: SealContext, provider: SealProvider['type']): Buffer {
  const cluster = field(ctx?.clusterId, 'clusterId', provider);
  const region = field(ctx?.region, 'region', provider);
  const tenant = ctx?.tenant === undefined ? undefined : field(ctx.tenant, 'tenant', provider);
  const domain = tenant ? L1_DOMAIN : DOMAIN;
  const parts = tenant ? [cluster, region, tenant] : [cluster, region];
  const out = Buffer.alloc(1 + domain.length + parts.reduce((n, p) => n + 2 + p.length, 0));
  let at = out.writeUInt8(domain.length, 0);
  at += domain.copy(out, at);
  for (const p of parts) {
    at = out.writeUInt16BE(p.length, at);
    at += p.copy(out, at);
  }
  return out;
}

function field(value: unknown, name: string, provider: SealProvider['type']): Buffer {
  if (typeof value !== 'string' || value.length === 0) {
    throw new SealProviderError('config', provider, `context.${name} must be a non-empty string`);
  }
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > MAX_CONTEXT_FIELD_BYTES) {
    throw new SealProviderError('config', provider, `context.${name} exceeds ${MAX_CONTEXT_FIELD_BYTES} bytes`);
  }
  return bytes;
}
