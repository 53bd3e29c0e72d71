/** openSealProvider: dispatch by type, unknown fields and types, the dev-mode gate. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AwsKmsSealProvider } from '../../../core/src/seal/aws-kms/aws-kms-provider.ts';
import { DevSealProvider } from '../../../core/src/seal/dev/dev-provider.ts';
import { openSealProvider, type SealConfig } from '../../../core/src/seal/open-seal-provider.ts';
import { rejectsWithKind } from './seal-assert.ts';

const PROD = { devMode: false };

describe('openSealProvider', () => {
  it('builds an AWS KMS provider without network I/O', async () => {
    const p = openSealProvider({ type: 'awskms', keyId: 'alias/seal', region: 'eu-west-1' }, PROD);
    assert.ok(p instanceof AwsKmsSealProvider);
    assert.equal(p.type, 'awskms');
    await p.close();
  });

  it('builds the dev provider only in development mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-open-seal-'));
    try {
      const config: SealConfig = { type: 'dev', keyFile: join(dir, 'k') };
      await rejectsWithKind(() => openSealProvider(config, PROD), 'config', /refused outside development mode/);
      const p = openSealProvider(config, { devMode: true });
      assert.ok(p instanceof DevSealProvider);
      await p.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the bad field of each provider', async () => {
    const cases: [unknown, SealConfig['type'], RegExp][] = [
      [{ type: 'awskms', region: 'eu-west-1' }, 'awskms', /config\.keyId/],
      [{ type: 'awskms', keyId: 'k', region: 'eu-west-1', keyid: 'typo' }, 'awskms', /config\.keyid is not a field/],
      [{ type: 'pkcs11', pin: '1', keyLabel: 'k' }, 'pkcs11', /config\.tokenLabel/],
      [{ type: 'pkcs11', tokenLabel: 't', pin: '1', keyLabel: 'k', slot: 0 }, 'pkcs11', /config\.slot is not a field/],
      [
        { type: 'pkcs11', modulePath: '/nonexistent.so', tokenLabel: 't', pin: '1', keyLabel: 'k' },
        'pkcs11',
        /modulePath/,
      ],
      [{ type: 'dev', keyFile: 42 }, 'dev', /config\.keyFile/],
    ];
    for (const [config, provider, re] of cases) {
      const err = await rejectsWithKind(() => openSealProvider(config as SealConfig, { devMode: true }), 'config', re);
      assert.equal(err.provider, provider);
    }
  });

  it('throws TypeError for an unknown type or missing options', () => {
    assert.throws(() => openSealProvider({ type: 'gcpkms' } as never, PROD), /config\.type must be one of/);
    assert.throws(() => openSealProvider(undefined as never, PROD), TypeError);
    assert.throws(
      () => openSealProvider({ type: 'awskms', keyId: 'k', region: 'eu-west-1' }, undefined as never),
      /opts\.devMode/,
    );
  });
});
