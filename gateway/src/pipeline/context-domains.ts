/**
 * Reserved prefixes of field AAD contexts. The proxy binds each field it
 * seals to a context that starts with {@link PROXY_CONTEXT_DOMAIN}
 * (field-context.ts); the direct API refuses caller contexts that start with
 * it (api-input.ts `contextOf`), so a direct-API caller can neither open a
 * proxied field, which only the route's readers may read, nor forge one.
 */
export const PROXY_CONTEXT_DOMAIN: Buffer = Buffer.from('okcm/proxy/v1\0', 'latin1');

/** True when `context` starts with a reserved domain. */
export function isReservedContext(context: Uint8Array): boolean {
  const d = PROXY_CONTEXT_DOMAIN;
  if (context.length < d.length) return false;
  for (let i = 0; i < d.length; i++) if (context[i] !== d[i]) return false;
  return true;
}
