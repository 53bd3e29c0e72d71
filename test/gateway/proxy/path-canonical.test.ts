/**
 * Odd spellings of an encrypting route's path, end to end: a real gateway
 * (uWS and the HTTP/1.1 + h2c port) in front of a real upstream, with
 * passthrough routes `/static/*` and `/*` beside `POST /orders` and
 * `PUT /orders/:id` (which encrypt `$.card`). An upstream may read
 * `/static/../orders`, `/Orders` or `/orders;x` as `/orders`, so for every
 * such spelling the gateway either refuses it (400 `bad_request`, nothing
 * forwarded) or forwards it on the encrypting route: the upstream never
 * receives the card number in clear. Requests go as raw bytes (net, and
 * node:http2 with a verbatim `:path`): an HTTP client library would
 * normalise the path first.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import { type Fixture, startFixture } from '../api/gateway-fixture.ts';
import { policySetOf, startUpstreams, type Upstreams } from './proxy-fixture.ts';

const CARD = '4111111111111111';
const BODY = JSON.stringify({ card: CARD, note: 'n' });

/** Spellings the route stage refuses (400), for `POST /orders` unless they name `/orders/7` (PUT). */
const REFUSED = [
  '/static/%2565rders/../orders',
  '/ord%2565rs',
  '/static/%252e%252e/orders',
  '/static/../orders',
  '/static/%2e%2e/orders',
  '/static/%2E%2E/orders',
  '/static/.%2e/orders',
  '/static/..%2forders',
  '/static/..%5corders',
  '/x/%2e%2e/orders',
  '/./orders',
  '/%2e/orders',
  '/orders/.',
  '/orders\\',
  '/static\\..\\orders',
  '//orders',
  '/static//../orders',
  '/orders//',
  '/orders;x=1',
  '/orders;',
  '/static;/../orders',
  '/orders%3b',
  '/orders%2f',
  '/orders%00',
  '/orders#x',
  '/orders%',
  '/orders%zz',
  '/static/../orders/7',
  '/orders/7;v=1',
  '/Orders/7/..',
];

/** Spellings that match the encrypting route: forwarded, with the card encrypted, the path unchanged. */
const TOLERATED = [
  '/Orders',
  '/ORDERS',
  '/orders/',
  '/Orders/',
  '/%6Frders',
  '/%6frders',
  '/%4F%52%44%45%52%53',
  '/Orders/7',
  '/orders/7/',
  '/%6frders/7',
];

const methodFor = (path: string): string => (path.includes('/7') ? 'PUT' : 'POST');

interface Answer {
  status: number;
  body: string;
}

/** One HTTP/1.1 request as raw bytes (the target verbatim), on a fresh connection. */
function rawH1(port: number, method: string, target: string, body = BODY): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(
        `${method} ${target} HTTP/1.1\r\nhost: x\r\nx-tenant-id: t1\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** One h2c request with `:path` as given. */
function rawH2(port: number, method: string, target: string, body = BODY): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const fail = (err: unknown) => {
      session.destroy();
      reject(err);
    };
    session.on('error', fail);
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({
        ':method': method,
        ':path': target,
        'x-tenant-id': 't1',
        'content-type': 'application/json',
      });
    } catch (err) {
      fail(err);
      return;
    }
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', fail);
    req.on('end', () => {
      session.close();
      resolve({ status, body: Buffer.concat(chunks).toString('utf8') });
    });
    req.end(body);
  });
}

describe('odd paths of an encrypting route', () => {
  let up: Upstreams;
  let f: Fixture;
  let fronts: [string, (method: string, target: string) => Promise<Answer>][];

  before(async () => {
    up = await startUpstreams();
    const app = `http://127.0.0.1:${up.appPort}`;
    const card = [{ select: '$.card', field: 'card' }];
    const policies = policySetOf(
      {
        id: 'paths',
        key: 'orders',
        defaults: { tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1', '::1'] } },
        routes: [
          { method: 'POST', path: '/orders', upstream: app, request: card },
          { method: 'PUT', path: '/orders/:id', upstream: app, request: card },
          { method: 'PUT', path: '/orders/import', upstream: app },
          { method: '*', path: '/static/*', upstream: app },
          { method: '*', path: '/*', upstream: app },
        ],
      },
      'paths',
    );
    f = await startFixture({ log: () => {}, proxy: { policies } });
    const uws = f.gw.ports.uws as number;
    const plain = f.gw.ports.h2Plain as number;
    fronts = [
      ['uws', (m, t) => rawH1(uws, m, t)],
      ['http/1.1', (m, t) => rawH1(plain, m, t)],
      ['h2c', (m, t) => rawH2(plain, m, t)],
    ];
  });

  after(async () => {
    await f.close();
    await up.close();
  });

  /** Sends `target` on every front; returns what the upstream received for each. */
  async function sendEverywhere(method: string, target: string) {
    const out: { front: string; answer: Answer; received: Upstreams['received'] }[] = [];
    for (const [front, send] of fronts) {
      const before = up.received.length;
      let answer: Answer;
      try {
        answer = await send(method, target);
      } catch {
        continue; // the client library refused to send this :path: nothing reached anyone
      }
      out.push({ front, answer, received: up.received.slice(before) });
    }
    return out;
  }

  it('never lets the upstream receive the card in clear', async () => {
    for (const target of [...REFUSED, ...TOLERATED]) {
      for (const { front, received } of await sendEverywhere(methodFor(target), target)) {
        for (const r of received) {
          assert.ok(!r.body.toString('latin1').includes(CARD), `${front} ${target}: plaintext reached ${r.url}`);
        }
      }
    }
  });

  it('refuses non-canonical paths with 400 bad_request, forwards nothing and does not echo the path', async () => {
    for (const target of REFUSED) {
      const sent = await sendEverywhere(methodFor(target), target);
      assert.equal(sent.length, fronts.length, `${target}: sent on every front`);
      for (const { front, answer, received } of sent) {
        assert.equal(answer.status, 400, `${front} ${target}`);
        assert.deepEqual(received, [], `${front} ${target}: nothing forwarded`);
        assert.equal(JSON.parse(answer.body).error.code, 'bad_request', `${front} ${target}`);
        assert.ok(!answer.body.includes('orders'), `${front} ${target}: the answer does not echo the path`);
      }
    }
  });

  it('forwards tolerated spellings on the encrypting route, with the path as sent', async () => {
    for (const target of TOLERATED) {
      const sent = await sendEverywhere(methodFor(target), target);
      assert.equal(sent.length, fronts.length, `${target}: sent on every front`);
      for (const { front, answer, received } of sent) {
        assert.notEqual(answer.status, 400, `${front} ${target}`);
        assert.equal(received.length, 1, `${front} ${target}: forwarded once`);
        const got = received[0] as Upstreams['received'][number];
        assert.equal(got.url, target, `${front}: the forwarded path is the one sent`);
        const doc = JSON.parse(got.body.toString('utf8'));
        assert.equal(doc.note, 'n');
        assert.deepEqual(parseEnvelope(doc.card).keyId, 'orders', `${front} ${target}: the card is a ciphertext`);
      }
    }
  });

  it('checks the direct API paths too', async () => {
    const plain = f.gw.ports.h2Plain as number;
    assert.equal((await rawH1(plain, 'GET', '/healthz', '')).status, 200);
    for (const target of ['/healthz/.', '/x/../healthz', '/v1/encrypt/%2e%2e', '/v1//encrypt', '/v1/encrypt;x']) {
      const a = await rawH1(plain, 'POST', target, '{}');
      assert.equal(a.status, 400, target);
      assert.equal(JSON.parse(a.body).error.code, 'bad_request', target);
    }
  });

  // `/orders/IMPORT` matches the literal `/orders/import` (no rules) leniently, but an upstream that
  // routes case-sensitively (Go, Spring) reads it as `/orders/:id`, whose card the policy encrypts;
  // Spring 5 and Express with `caseSensitive` also ignore a trailing slash.
  it('refuses a spelling that a lenient match gives a literal route but an exact upstream gives a route with rules', async () => {
    for (const target of ['/orders/IMPORT', '/orders/%69mport', '/orders/Import', '/orders/IMPORT/']) {
      const sent = await sendEverywhere('PUT', target);
      assert.equal(sent.length, fronts.length, `${target}: sent on every front`);
      for (const { front, answer, received } of sent) {
        assert.equal(answer.status, 400, `${front} ${target}`);
        const error = JSON.parse(answer.body).error;
        assert.equal(error.code, 'bad_request', `${front} ${target}`);
        assert.ok(!answer.body.includes(target), `${front} ${target}: the path is not echoed`);
        assert.equal(received.length, 0, `${front} ${target}: nothing forwarded`);
      }
    }
  });

  it('keeps the literal route for its exact spelling and the encrypting route for its own', async () => {
    for (const { front, received } of await sendEverywhere('PUT', '/orders/import')) {
      assert.equal(received.length, 1, front);
      const got = received[0] as Upstreams['received'][number];
      assert.equal(JSON.parse(got.body.toString('utf8')).card, CARD, `${front}: the rule-less route as written`);
    }
    // No route with rules reads `/orders/import/` or `/Orders/Import` exactly: the lenient choice stands.
    for (const target of ['/orders/import/', '/Orders/Import']) {
      for (const { front, answer, received } of await sendEverywhere('PUT', target)) {
        assert.notEqual(answer.status, 400, `${front} ${target}`);
        assert.equal(received.length, 1, `${front} ${target}`);
      }
    }
    for (const target of ['/orders/import-2', '/orders/7', '/orders/IMPORT-2']) {
      for (const { front, received } of await sendEverywhere('PUT', target)) {
        assert.equal(received.length, 1, `${front} ${target}`);
        const doc = JSON.parse((received[0] as Upstreams['received'][number]).body.toString('utf8'));
        assert.equal(parseEnvelope(doc.card).keyId, 'orders', `${front} ${target}: the card is a ciphertext`);
      }
    }
  });
});
