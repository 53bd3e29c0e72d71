/**
 * Per-connection state of the edge API: the edge identity (from the verified
 * client certificate, computed once per TLS connection) and the session
 * transport key (RFC 5705 export, imported into native memory on first lease
 * and destroyed when the connection closes).
 */
import type { ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { sessionTransportKey } from '../../../common/src/crypto/lease-transport.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import type { EdgeAccess } from './edge-access.ts';

export class EdgeSession {
  #transport: KeyHandle | null = null;
  #closed = false;

  constructor(
    readonly edgeId: string,
    private readonly socket: TLSSocket,
  ) {}

  /** The session transport key (imported on first use). Throws `unauthenticated` after close. */
  transportKey(crypto: Crypto): KeyHandle {
    if (this.#closed) throw new KcmError('unauthenticated', 'connection closed');
    this.#transport ??= sessionTransportKey(crypto, this.socket);
    return this.#transport;
  }

  /** Wipes the transport key; idempotent. */
  close(): void {
    this.#closed = true;
    this.#transport?.destroy();
    this.#transport = null;
  }
}

const sessions = new WeakMap<ServerHttp2Session, EdgeSession>();

/**
 * The EdgeSession of an http2 session, created on first use. Throws KcmError
 * `unauthenticated` when the connection carries no verified, valid edge
 * client certificate (checked on every call).
 */
export function edgeSessionOf(session: ServerHttp2Session, access: EdgeAccess): EdgeSession {
  const socket = session.socket as TLSSocket;
  // Re-identified per request: a certificate that expires mid-connection stops working on it too.
  const edgeId = access.identify(socket);
  if (!edgeId) throw new KcmError('unauthenticated', 'no verified edge client certificate');
  const known = sessions.get(session);
  if (known) return known;
  const s = new EdgeSession(edgeId, socket);
  sessions.set(session, s);
  session.once('close', () => s.close());
  return s;
}
