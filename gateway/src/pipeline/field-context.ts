/**
 * The AAD context of a proxied JSON field (SPEC.md §5.3 `context`):
 *
 *   "okcm/proxy/v1" ‖ 00 ‖ u8 len ‖ policy id ‖ u16be len ‖ field name ‖ u8 codec
 *   ‖ u8 has-record ‖ [ u16be len ‖ record id ]
 *
 * The field name is the rule's logical `field` (default: its selector text),
 * not the concrete path, so one field reached through different routes
 * (`$.ssn` on POST /users, `$.users[*].ssn` on GET /users) decrypts, while
 * array order does not matter. The codec (1 = UTF-8 string, 2 = JSON text,
 * from `nonString`) keeps a value from being read back as the other type.
 * The record id (when the rule binds one) makes a ciphertext copied into
 * another record fail. The record byte is 0 (none) or 1; a string id is
 * bound as the UTF-8 of the (well-formed) string, a number id as its JSON
 * text exactly as the body spells it (`12345678901234567891` and
 * `12345678901234567890`, or `7` and `7.0`, are different records: no
 * rounding to a double). The string "42" and the number 42 are the same
 * record on purpose: a path parameter is text, and `/orders/42` must open
 * what a body with `"id": 42` sealed (and ids bound before this rule keep
 * their bytes). Lengths prefix every variable part, so no two contexts share
 * an encoding. At most 14+1+64+2+256+1+1+2+1024 bytes, under the 4 KiB the
 * envelope allows.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldRule } from '../policy/policy-types.ts';

const DOMAIN = Buffer.from('okcm/proxy/v1\0', 'latin1');
/** Longest record id, in UTF-8 bytes. */
export const MAX_RECORD_ID_BYTES = 1024;
export const CODEC_STRING = 1;
export const CODEC_JSON = 2;
/** The record byte of a context that binds a record id. */
export const RECORD_BOUND = 1;

/**
 * A record id as bound: a string id (a path parameter, or a JSON string) as
 * the UTF-8 of a well-formed string, or a number id as its JSON text.
 */
export interface RecordId {
  kind: 'string' | 'number';
  bytes: Uint8Array;
}

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
export function fieldContext(policyId: string, rule: FieldRule, recordId: RecordId | undefined): Buffer {
  if (recordId === undefined) {
    let ctx = unbound.get(rule);
    if (!ctx) {
      ctx = Buffer.concat([prefixOf(policyId, rule), Buffer.from([0])]);
      unbound.set(rule, ctx);
    }
    return ctx;
  }
  const prefix = prefixOf(policyId, rule);
  const id = recordId.bytes;
  if (id.length > MAX_RECORD_ID_BYTES) {
    throw new KcmError('selector_type_mismatch', `record id longer than ${MAX_RECORD_ID_BYTES} bytes`);
  }
  const out = Buffer.allocUnsafe(prefix.length + 3 + id.length);
  prefix.copy(out, 0);
  out[prefix.length] = RECORD_BOUND;
  out.writeUInt16BE(id.length, prefix.length + 1);
  out.set(id, prefix.length + 3);
  return out;
}
