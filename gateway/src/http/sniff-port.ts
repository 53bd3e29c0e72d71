/**
 * One plaintext port for h2c (prior knowledge) and HTTP/1.1: each new
 * connection is read until its first bytes either match the 24-byte HTTP/2
 * preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (→ the h2 server) or differ from
 * it (→ the HTTP/1.1 server, usually after one byte). The bytes read are put
 * back before the chosen server sees the socket. A connection that sends
 * nothing decisive within `timeoutMs` is closed.
 */
import net, { type Server, type Socket } from 'node:net';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface SniffTargets {
  h2: { emit(event: 'connection', socket: Socket): boolean };
  http1: { emit(event: 'connection', socket: Socket): boolean };
  /** Default 10 s. */
  timeoutMs?: number;
}

/** 'h2' once `buf` holds the whole preface, 'http1' at the first differing byte, undefined while undecided. */
export function sniffProtocol(buf: Buffer): 'h2' | 'http1' | undefined {
  const n = Math.min(buf.length, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (buf[i] !== H2_PREFACE[i]) return 'http1';
  return buf.length >= H2_PREFACE.length ? 'h2' : undefined;
}

export function createSniffServer(t: SniffTargets): Server {
  const timeoutMs = t.timeoutMs ?? 10_000;
  return net.createServer((socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const proto = sniffProtocol(seen);
      if (!proto) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      socket.unshift(seen);
      if (proto === 'h2') {
        // Http2Session reads what is buffered on the next tick and consumes the handle.
        t.h2.emit('connection', socket);
      } else {
        t.http1.emit('connection', socket);
        socket.resume();
      }
    };
    const onClose = () => clearTimeout(timer);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', () => socket.destroy());
  });
}
