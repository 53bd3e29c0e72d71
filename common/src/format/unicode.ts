/**
 * Well-formed text: a JavaScript string with a lone UTF-16 surrogate has no
 * UTF-8 form (encoding it writes U+FFFD), so it cannot be bound, sealed or
 * compared as bytes without becoming another string.
 */

/** True when `s` holds a lone surrogate (String.prototype.isWellFormed, V8's own scan; not in the ES2023 lib types). */
export function hasLoneSurrogate(s: string): boolean {
  return !(s as string & { isWellFormed(): boolean }).isWellFormed();
}
