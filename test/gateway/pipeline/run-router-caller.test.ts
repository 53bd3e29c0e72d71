/** Route matching and caller/tenant resolution (ADR-402, fail closed). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import {
  cnIsTenant,
  identifyCaller,
  loopbackOnly,
  resolveTenant,
  trustAddresses,
} from '../../../gateway/src/pipeline/caller.ts';
import { type Route, Router } from '../../../gateway/src/pipeline/router.ts';

const route = (name: string, method: Route['method'], pattern: string): Route => ({
  name,
  method,
  pattern,
  body: 'none',
  auth: false,
  handle: () => {},
});

const code = (c: string) => (e: unknown) => e instanceof KcmError && e.code === c;

describe('Router', () => {
  const r = new Router([
    route('enc', 'POST', '/v1/encrypt/:key'),
    route('enc', 'POST', '/v1/encrypt'),
    route('h', 'GET', '/healthz'),
  ]);

  it('matches parameters, and answers not_found / method_not_allowed', () => {
    const m = r.match('POST', '/v1/encrypt/orders');
    assert.equal(m.kind, 'found');
    assert.deepEqual(m.kind === 'found' && [m.route.pattern, m.params], ['/v1/encrypt/:key', { key: 'orders' }]);
    const bare = r.match('POST', '/v1/encrypt');
    assert.deepEqual(bare.kind === 'found' && [bare.route.pattern, bare.params], ['/v1/encrypt', {}]);
    assert.equal(r.match('POST', '/v1/encrypt/').kind, 'not_found');
    assert.equal(r.match('POST', '/v1/encrypt/a/b').kind, 'not_found');
    assert.deepEqual(r.match('GET', '/v1/encrypt/x'), { kind: 'method_not_allowed', allow: 'POST' });
    assert.equal(r.match('GET', '/healthz').kind, 'found');
  });
});

describe('caller and tenant', () => {
  it('identifies certificates first, then trusted peers; others are nobody', () => {
    const cert = { cn: 'tenant-a', uris: [], fingerprint256: 'AA' };
    assert.equal(
      identifyCaller({ address: '10.0.0.1', certificate: cert }, loopbackOnly, cnIsTenant)?.kind,
      'certificate',
    );
    assert.equal(identifyCaller({ address: '127.0.0.1' }, loopbackOnly, cnIsTenant)?.kind, 'trusted-peer');
    assert.equal(identifyCaller({ address: '::ffff:127.0.0.1' }, loopbackOnly, cnIsTenant)?.kind, 'trusted-peer');
    assert.equal(identifyCaller({ address: '10.0.0.1' }, loopbackOnly, cnIsTenant), undefined);
    assert.equal(
      identifyCaller({ address: '10.0.0.1' }, trustAddresses(['10.0.0.1']), cnIsTenant)?.kind,
      'trusted-peer',
    );
  });

  it('resolves the tenant from the header, the body or the single certificate tenant', () => {
    const peer = { kind: 'trusted-peer', id: '127.0.0.1', tenants: 'any' } as const;
    assert.equal(resolveTenant(peer, 't1', undefined), 't1');
    assert.equal(resolveTenant(peer, undefined, 't2'), 't2');
    assert.equal(resolveTenant(peer, 't1', 't1'), 't1');
    assert.throws(() => resolveTenant(peer, 't1', 't2'), code('bad_request'));
    assert.throws(() => resolveTenant(peer, undefined, undefined), code('bad_request'));
    assert.throws(() => resolveTenant(peer, 'bad tenant', undefined), code('invalid_tenant_id'));
    assert.throws(() => resolveTenant(peer, undefined, 7), code('invalid_tenant_id'));
    const cert = { kind: 'certificate', id: 'tenant-a', tenants: new Set(['tenant-a']) } as const;
    assert.equal(resolveTenant(cert, undefined, undefined), 'tenant-a');
    assert.throws(() => resolveTenant(cert, 'tenant-b', undefined), code('forbidden'));
    assert.throws(() => resolveTenant(undefined, 't1', undefined), code('unauthenticated'));
    const none = { kind: 'certificate', id: 'x y', tenants: new Set<string>() } as const;
    assert.throws(() => resolveTenant(none, undefined, undefined), code('bad_request'));
  });
});
