/**
 * The policy that goes with makeTestPki: operators, the auditor, edges of
 * tenants A and B and the app of tenant A, matched by each kind (CN, URI SAN,
 * fingerprint). Tests write it with {@link writeTestPolicy}.
 */
import { writeFileSync } from 'node:fs';
import { TEST_IDS, type TestPki } from '../pki/test-pki.ts';

/** The policy document (JSON-ready) for `pki`. */
export function testPolicyDocument(pki: TestPki): Record<string, unknown> {
  return {
    version: 1,
    description: 'test identities of makeTestPki',
    identities: [
      { name: 'operator-1', match: { cn: TEST_IDS.operator.cn }, roles: ['operator'], tenants: '*' },
      { name: 'operator-2', match: { uri: TEST_IDS.operator2.uri }, roles: ['operator'], tenants: '*' },
      { name: 'auditor-1', match: { cn: TEST_IDS.auditor.cn }, roles: ['auditor'], tenants: '*' },
      { name: 'edge-a', match: { uri: TEST_IDS.edgeA.uri }, roles: ['edge'], tenants: [TEST_IDS.tenantA] },
      {
        name: 'edge-b',
        match: { fingerprint: pki.edgeB.fingerprint256 },
        roles: ['edge'],
        tenants: [TEST_IDS.tenantB],
      },
      { name: 'app-a', match: { uri: TEST_IDS.app.uri }, roles: ['app'], tenants: [TEST_IDS.tenantA] },
    ],
  };
}

/** Writes {@link testPolicyDocument} to `file`; returns `file`. */
export function writeTestPolicy(file: string, pki: TestPki): string {
  writeFileSync(file, `${JSON.stringify(testPolicyDocument(pki), null, 2)}\n`);
  return file;
}
