/**
 * A complete set of test certificates in one call, for every test that
 * needs mTLS. Identities are fixed (see {@link TEST_IDS}) so a test policy
 * can name them; the refusal cases reuse `operator-1`'s CN so that only the
 * defect under test (foreign CA, expiry, start date, EKU) can refuse them.
 */
import { join } from 'node:path';
import { type Ca, createCa, type IssuedCert, issueCert } from './issue.ts';

const DAY_MS = 86_400_000;

/** Tenants, CNs and URI SANs of the test identities. */
export const TEST_IDS = {
  tenantA: 'tenant-a',
  tenantB: 'tenant-b',
  core: { cn: 'core' },
  edgeA: { cn: 'edge-a', uri: 'spiffe://openkcm.test/edge/edge-a' },
  edgeB: { cn: 'edge-b', uri: 'spiffe://openkcm.test/edge/edge-b' },
  operator: { cn: 'operator-1', uri: 'spiffe://openkcm.test/operator/operator-1' },
  operator2: { cn: 'operator-2', uri: 'spiffe://openkcm.test/operator/operator-2' },
  auditor: { cn: 'auditor-1', uri: 'spiffe://openkcm.test/auditor/auditor-1' },
  app: { cn: 'app-a', uri: 'spiffe://openkcm.test/app/app-a' },
} as const;

export interface TestPki {
  dir: string;
  ca: Ca;
  /** Server (serverAuth), SAN DNS:localhost, IP:127.0.0.1. */
  core: IssuedCert;
  /** Gateways of tenant A / B: serverAuth + clientAuth, URI SAN and localhost SANs. */
  edgeA: IssuedCert;
  edgeB: IssuedCert;
  /** Clients (clientAuth) with URI SANs. */
  operator: IssuedCert;
  operator2: IssuedCert;
  auditor: IssuedCert;
  app: IssuedCert;
  /** Another CA, and a client it issued with operator-1's very CN and URI. */
  foreignCa: Ca;
  foreignClient: IssuedCert;
  /** operator-1, expired yesterday. */
  expiredClient: IssuedCert;
  /** operator-1, valid from tomorrow. */
  notYetValidClient: IssuedCert;
  /** operator-1 with EKU serverAuth only. */
  serverOnlyAsClient: IssuedCert;
}

function idSans(id: { uri: string }, server: boolean): string[] {
  return server ? [`URI:${id.uri}`, 'DNS:localhost', 'IP:127.0.0.1'] : [`URI:${id.uri}`];
}

/**
 * Creates `dir/ca` (the trusted CA with every certificate of {@link TestPki})
 * and `dir/foreign` (an untrusted CA). Takes about half a second. Throws
 * `pki_failed` when the openssl CLI is missing or fails.
 */
export function makeTestPki(dir: string): TestPki {
  const ca = createCa(join(dir, 'ca'), { cn: 'OpenKCM Test CA' });
  const foreignCa = createCa(join(dir, 'foreign'), { cn: 'Foreign Test CA' });
  const op = TEST_IDS.operator;
  const now = Date.now();
  return {
    dir,
    ca,
    core: issueCert(ca, { kind: 'server', cn: TEST_IDS.core.cn, name: 'core' }),
    edgeA: issueCert(ca, { kind: 'both', cn: TEST_IDS.edgeA.cn, sans: idSans(TEST_IDS.edgeA, true), name: 'edge-a' }),
    edgeB: issueCert(ca, { kind: 'both', cn: TEST_IDS.edgeB.cn, sans: idSans(TEST_IDS.edgeB, true), name: 'edge-b' }),
    operator: issueCert(ca, { kind: 'client', cn: op.cn, sans: idSans(op, false), name: 'operator-1' }),
    operator2: issueCert(ca, {
      kind: 'client',
      cn: TEST_IDS.operator2.cn,
      sans: idSans(TEST_IDS.operator2, false),
      name: 'operator-2',
    }),
    auditor: issueCert(ca, {
      kind: 'client',
      cn: TEST_IDS.auditor.cn,
      sans: idSans(TEST_IDS.auditor, false),
      name: 'auditor-1',
    }),
    app: issueCert(ca, { kind: 'client', cn: TEST_IDS.app.cn, sans: idSans(TEST_IDS.app, false), name: 'app-a' }),
    foreignCa,
    foreignClient: issueCert(foreignCa, { kind: 'client', cn: op.cn, sans: idSans(op, false), name: 'foreign' }),
    expiredClient: issueCert(ca, {
      kind: 'client',
      cn: op.cn,
      sans: idSans(op, false),
      name: 'expired',
      notBefore: new Date(now - 30 * DAY_MS),
      notAfter: new Date(now - DAY_MS),
    }),
    notYetValidClient: issueCert(ca, {
      kind: 'client',
      cn: op.cn,
      sans: idSans(op, false),
      name: 'not-yet-valid',
      notBefore: new Date(now + DAY_MS),
      days: 30,
    }),
    serverOnlyAsClient: issueCert(ca, { kind: 'server', cn: op.cn, sans: idSans(op, false), name: 'server-only' }),
  };
}
