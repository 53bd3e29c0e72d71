/**
 * The AAD context of a proxied JSON field (SPEC.md §5.3 `context`):
 *
 *   "okcm/proxy/v1" ‖ 00 ‖ u8 len ‖ policy id ‖ u16be len ‖ field name ‖ u8 codec
 *   ‖ u8 has-record ‖ [ u16be len ‖ record id (UTF-8) ]
 *
 * The field name is the rule's logical `field` (default: its selector text),
 * not the concrete path, so one field reached through different routes
 * (`$.ssn` on POST /users, `$.users[*].ssn` on GET /users) decrypts, while
 * array order does not matter. The codec (1 = UTF-8 string, 2 = JSON text,
 * from `nonString`) keeps a value from being read back as the other type.
 * The record id (when the rule binds one) makes a ciphertext copied into
 * another record fail. Lengths prefix every variable part, so no two
 * contexts share an encoding. At most 14+1+64+2+256+1+1+2+1024 bytes, under
 * the 4 KiB the envelope allows.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldRule } from '../policy/policy-types.ts';

const DOMAIN = Buffer.from('okcm/proxy/v1\0', 'latin1');
/** Longest record id, in UTF-8 bytes. */
export const MAX_RECORD_ID_BYTES = 1024;
export const CODEC_STRING = 1;
export const CODEC_JSON = 2;

const prefixes = new WeakMap<FieldRule, Buffer>();
/** The whole context of rules that bind no record id (it never varies). */
const unbound = new WeakMap<FieldRule, Buffer>();

/** The fixed part of a rule's context (cached per rule object). */
function prefixOf(policyId: string, rule: FieldRule): Buffer {
  let p = prefixes.get(rule);
  if (!p) {
    const policy = Buffer.from(policyId, 'utf8');
    const field = Buffer.from(rule.field, 'utf8');
    p = Buffer.concat([
      DOMAIN,
      Buffer.from([policy.length]),
      policy,
      Buffer.from([field.length >> 8, field.length & 0xff]),
      field,
      Buffer.from([rule.nonString === 'stringify' ? CODEC_JSON : CODEC_STRING]),
    ]);
    prefixes.set(rule, p);
  }
  return p;
}

/**
 * The context for a field of `rule` in policy `policyId`, bound to
 * `recordId` when the rule names one. The buffer may be shared between
 * calls: callers must not write to it. Throws KcmError
 * `selector_type_mismatch` for a record id over {@link MAX_RECORD_ID_BYTES}.
 */
export function fieldContext(policyId: string, rule: FieldRule, recordId: string | undefined): Buffer {
  if (recordId === undefined) {
    let ctx = unbound.get(rule);
    if (!ctx) {
      ctx = Buffer.concat([prefixOf(policyId, rule), Buffer.from([0])]);
      unbound.set(rule, ctx);
    }
    return ctx;
  }
  const prefix = prefixOf(policyId, rule);
  const id = Buffer.from(recordId, 'utf8');
  if (id.length > MAX_RECORD_ID_BYTES) {
    throw new KcmError('selector_type_mismatch', `record id longer than ${MAX_RECORD_ID_BYTES} bytes`);
  }
  return Buffer.concat([prefix, Buffer.from([1, id.length >> 8, id.length & 0xff]), id]);
}
