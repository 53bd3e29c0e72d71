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
/** Upper bound on each field, in UTF-8 bytes. */
export const MAX_CONTEXT_FIELD_BYTES = 256;

/**
 * Encodes `ctx`; throws SealProviderError `config` (naming the field) when
 * clusterId or region is not a string of 1..256 UTF-8 bytes.
 */
export function sealContextAad(ctx: SealContext, provider: SealProvider['type']): Buffer {
  const cluster = field(ctx?.clusterId, 'clusterId', provider);
  const region = field(ctx?.region, 'region', provider);
  const out = Buffer.alloc(1 + DOMAIN.length + 2 + cluster.length + 2 + region.length);
  let at = out.writeUInt8(DOMAIN.length, 0);
  at += DOMAIN.copy(out, at);
  at = out.writeUInt16BE(cluster.length, at);
  at += cluster.copy(out, at);
  at = out.writeUInt16BE(region.length, at);
  region.copy(out, at);
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
