/**
 * The object check every configuration and policy parser makes of a JSON
 * value: a plain object (not null, not an array) with no key outside
 * `allowed`. `fail(field, why)` reports and never returns; each parser
 * keeps its own error code and wording (`unknownWhy`).
 */
export type FieldFail = (field: string, why: string) => never;

export function strictObject(
  v: unknown,
  field: string,
  allowed: readonly string[],
  fail: FieldFail,
  unknownWhy = 'unknown field',
): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(`${field}.${k}`, unknownWhy);
  return v as Record<string, unknown>;
}
