/**
 * The floor of the proxy rows: the least a JavaScript forwarder on the
 * gateway's own front can cost. uWS reads the request (headers and body
 * copied out, as the gateway must), one keep-alive `net.Socket` per request in
 * flight writes head and body to the app in one write, the app's answer is
 * parsed just enough (status, Content-Length or chunked) and written back with
 * its body. No policy, no crypto, no limits, no timeouts, no pipelining: it
 * is a measuring stick, not a proxy. The gateway's distance to it is what its
 * pipeline and transform cost; its distance to the app called directly is
 * what the front, the second hop and the kernel cost whatever the proxy does.
 */
import net from 'node:net';
import { loadUws } from '../../gateway/src/http/uws-load.ts';

type Uws = typeof import('@trufflesuite/uws-js-unofficial');

const HOP = new Set(['connection', 'keep-alive', 'content-length', 'transfer-encoding', 'host']);
const HEAD_END = Buffer.from('\r\n\r\n');

interface Answer {
  status: string;
  type: string;
  body: Buffer;
}

/**
 * The body of a chunked message starting at `at` (chunk extensions and
 * trailers not handled): the data, or undefined while incomplete, or null
 * when malformed.
 */
function dechunk(buf: Buffer, at: number): Buffer | undefined | null {
  const parts: Buffer[] = [];
  for (let i = at; ; ) {
    const eol = buf.indexOf('\r\n', i, 'latin1');
    if (eol < 0) return undefined;
    const size = Number.parseInt(buf.toString('latin1', i, eol), 16);
    if (!Number.isFinite(size)) return null;
    if (size === 0) return buf.length >= eol + 4 ? Buffer.concat(parts) : undefined;
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

/** Reads one HTTP/1.1 answer off `s` (Content-Length or chunked); null when it is not one this floor handles. */
function readAnswer(s: net.Socket): Promise<Answer | null> {
  return new Promise((resolve) => {
    let buf: Buffer | undefined;
    const done = (a: Answer | null) => {
      s.off('data', onData);
      s.off('close', onClose);
      resolve(a);
    };
    const onClose = () => done(null);
    const onData = (d: Buffer) => {
      buf = buf ? Buffer.concat([buf, d]) : d;
      const end = buf.indexOf(HEAD_END);
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const len = /\r\ncontent-length: *(\d+)/i.exec(head);
      let body: Buffer | undefined | null;
      if (len) {
        const total = end + 4 + Number(len[1]);
        body = buf.length < total ? undefined : buf.subarray(end + 4, total);
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) body = dechunk(buf, end + 4);
      else body = null;
      if (body === undefined) return;
      if (body === null) return done(null);
      const type = /\r\ncontent-type: *([^\r]*)/i.exec(head);
      done({ status: head.slice(9, head.indexOf('\r\n')), type: type?.[1] ?? '', body });
    };
    s.on('data', onData);
    s.on('close', onClose);
  });
}

/** Starts the floor forwarder in front of 127.0.0.1:`appPort`; resolves with its port. */
export function startBareForward(appPort: number): Promise<number> {
  const uws = loadUws().uws as Uws | null;
  if (!uws) throw new Error(`uWS native binary not loaded: ${loadUws().error}`);
  const idle: net.Socket[] = [];
  const socket = () => {
    const s = idle.pop();
    if (s && !s.destroyed) return s;
    const c = net.connect(appPort, '127.0.0.1');
    c.setNoDelay(true);
    c.on('error', () => c.destroy());
    return c;
  };
  const app = uws.App();
  app.any('/*', (res, req) => {
    let gone = false;
    res.onAborted(() => {
      gone = true;
    });
    let head = `${req.getMethod().toUpperCase()} ${req.getUrl()}${req.getQuery() ? `?${req.getQuery()}` : ''} HTTP/1.1\r\nhost: app\r\n`;
    let hasBody = false;
    req.forEach((k, v) => {
      if (!HOP.has(k)) head += `${k}: ${v}\r\n`;
      else if ((k === 'content-length' && v !== '0') || k === 'transfer-encoding') hasBody = true;
    });
    // The gateway reads the peer address for every request (trusted-peer headers): so does the floor.
    res.getRemoteAddressAsText();
    const send = async (body: Buffer) => {
      const s = socket();
      const answer = readAnswer(s);
      s.write(Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1'), body]));
      const a = await answer;
      if (a) idle.push(s);
      else s.destroy();
      if (gone) return;
      res.cork(() => {
        if (!a) {
          res.writeStatus('502 Bad Gateway').end();
          return;
        }
        res.writeStatus(a.status);
        if (a.type) res.writeHeader('content-type', a.type);
        res.end(a.body);
      });
    };
    if (!hasBody) {
      void send(Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    res.onData((chunk, last) => {
      if (chunk.byteLength > 0) chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (last) void send(Buffer.concat(chunks));
    });
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (s) => {
      if (!s) reject(new Error('bare-forward: listen failed'));
      else resolve(uws.us_socket_local_port(s as never));
    });
  });
}
