/**
 * `tenantsForCertificate` returns a list or 'any' (identity file `"*"`):
 * identifyCaller carries 'any' through to the Caller, assertMayActFor lets it
 * act for every tenant, and resolveTenant makes it name the tenant (400), as
 * a trusted peer must, while a certificate with exactly one tenant may omit it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import {
  assertMayActFor,
  cnIsTenant,
  identifyCaller,
  loopbackOnly,
  resolveTenant,
} from '../../../gateway/src/pipeline/caller.ts';
import type { Caller, CertificateTenants, PeerInfo } from '../../../gateway/src/pipeline/context.ts';

const code = (c: string) => (e: unknown) => e instanceof KcmError && e.code === c;
const peer = (cn: string): PeerInfo => ({ address: '10.0.0.1', certificate: { cn, uris: [], fingerprint256: 'AA' } });
const mapped = (t: CertificateTenants) => (): CertificateTenants => t;

function callerOf(cn: string, t: CertificateTenants): Caller {
  const c = identifyCaller(peer(cn), loopbackOnly, mapped(t));
  assert.ok(c);
  return c;
}

describe('certificate tenants: a list or any', () => {
  it("carries 'any' to the caller, and a list as a set; the default CN rule stays a list", () => {
    const any = callerOf('ops-console', 'any');
    assert.equal(any.kind, 'certificate');
    assert.equal(any.id, 'ops-console');
    assert.equal(any.tenants, 'any');
    const listed = callerOf('billing', ['acme', 'globex']);
    assert.deepEqual(listed.tenants !== 'any' && [...listed.tenants], ['acme', 'globex']);
    assert.deepEqual(cnIsTenant({ cn: 'acme', uris: [], fingerprint256: 'AA' }), ['acme']);
    assert.deepEqual(identifyCaller(peer('acme'), loopbackOnly, cnIsTenant)?.tenants, new Set(['acme']));
  });

  it("still refuses an unusable certificate, whatever tenantsForCertificate would say (even 'any')", () => {
    const unusable: PeerInfo = { address: '127.0.0.1', certificate: { unusable: 'no CN', fingerprint256: 'AA' } };
    assert.throws(() => identifyCaller(unusable, () => true, mapped('any')), code('unauthenticated'));
  });

  it("lets 'any' act for every tenant; a list only for its own", () => {
    const any = callerOf('ops-console', 'any');
    assert.doesNotThrow(() => assertMayActFor(any, 'acme'));
    assert.doesNotThrow(() => assertMayActFor(any, 'globex'));
    const one = callerOf('billing', ['acme']);
    assert.throws(() => assertMayActFor(one, 'globex'), code('forbidden'));
    const none = callerOf('unlisted', []);
    assert.throws(() => assertMayActFor(none, 'acme'), code('forbidden'));
  });

  it("makes an 'any' certificate name its tenant (400), as a trusted peer; one tenant may be omitted", () => {
    const any = callerOf('ops-console', 'any');
    assert.equal(resolveTenant(any, 'acme', undefined), 'acme');
    assert.equal(resolveTenant(any, undefined, 'globex'), 'globex');
    assert.throws(() => resolveTenant(any, undefined, undefined), code('bad_request'));
    assert.throws(() => resolveTenant(any, 'acme', 'globex'), code('bad_request'));
    assert.throws(() => resolveTenant(any, 'not a tenant', undefined), code('invalid_tenant_id'));
    const peerCaller: Caller = { kind: 'trusted-peer', id: '127.0.0.1', tenants: 'any' };
    assert.throws(() => resolveTenant(peerCaller, undefined, undefined), code('bad_request'));
    const one = callerOf('billing', ['acme']);
    assert.equal(resolveTenant(one, undefined, undefined), 'acme');
    const two = callerOf('billing', ['acme', 'globex']);
    assert.throws(() => resolveTenant(two, undefined, undefined), code('bad_request'));
  });
});
