/**
 * What the native front tests share: whether the front can run here (the
 * native module and the uWS binary, for its internal listener), and raw
 * HTTP/1.1 exchanges over one fresh TCP connection each.
 */
import net from 'node:net';
import { loadUws } from '../../../gateway/src/http/uws-load.ts';
import { loadNative } from '../../../native/ts/load.ts';
import { IN_CI } from '../../native/backends.ts';

/** Why the native front cannot run here (a visible skip reason), or false. Never skips under CI. */
export function nativeFrontSkip(): string | false {
  if (IN_CI) return false;
  const n = loadNative();
  if (!n.backend?.frontStart) return `native module without a front: ${n.error ?? 'rebuild it (npm run build:native)'}`;
  return loadUws().uws ? false : `uWS native binary not loaded: ${loadUws().error}`;
}

/**
 * Sends `request` on a new connection to `port` and reads until the peer
 * closes or `whole(bytes)` says the answer is complete (at most `ms`).
 */
export function exchange(port: number, request: Buffer | string, ms = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, ms);
    s.on('connect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (answerComplete(Buffer.concat(chunks), String(request).startsWith('HEAD '))) done();
    });
    s.on('end', done);
    s.on('error', (e) => {
      clearTimeout(timer);
      if (chunks.length) resolve(Buffer.concat(chunks));
      else reject(e);
    });
  });
}

/** Whether `b` holds one whole answer framed by Content-Length (or without content). */
export function answerComplete(b: Buffer, head: boolean): boolean {
  const end = b.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const text = b.subarray(0, end).toString('latin1');
  const status = Number(text.slice(9, 12));
  if (head || status === 204 || status === 304) return true;
  const m = /\r\ncontent-length: *(\d+)/i.exec(text);
  return m ? b.length >= end + 4 + Number(m[1]) : false;
}
