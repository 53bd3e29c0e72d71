/**
 * Well-formed text: a JavaScript string with a lone UTF-16 surrogate has no
 * UTF-8 form (encoding it writes U+FFFD), so it cannot be bound, sealed or
 * compared as bytes without becoming another string.
 */

/** A surrogate code point, i.e. one not paired (with the `u` flag a pair is one astral code point). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** True when `s` holds a lone surrogate. */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}
