/**
 * The development seal provider: refusal outside dev mode, the loud warning,
 * key file creation and checks, and the round trip through the crypto face.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEV_SEAL_WARNING_CODE, DevSealProvider } from '../../../core/src/seal/dev/dev-provider.ts';
import type { SealContext } from '../../../core/src/seal/seal-provider.ts';
import { cryptoFor } from '../../../native/index.ts';
import { rejectsWithKind } from './seal-assert.ts';

const CTX: SealContext = { clusterId: 'cluster-dev', region: 'local' };

describe('DevSealProvider', () => {
  let dir: string;
  let n = 0;
  const providers: DevSealProvider[] = [];
  const path = () => join(dir, `seal-${++n}.key`);
  const open = (keyFile: string, crypto = cryptoFor('node')) => {
    const p = new DevSealProvider({ keyFile }, { devMode: true, crypto });
    providers.push(p);
    return p;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-dev-seal-'));
  });

  after(async () => {
    await Promise.all(providers.map((p) => p.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused outside development mode, before touching the key file', async () => {
    const file = path();
    for (const opts of [{ devMode: false }, {}, undefined]) {
      await rejectsWithKind(
        () => new DevSealProvider({ keyFile: file }, opts as never),
        'config',
        /refused outside development mode/,
      );
    }
    assert.equal(existsSync(file), false);
  });

  it('emits a KCM_DEV_SEAL warning on every construction', async () => {
    const seen: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as { code?: string }).code === DEV_SEAL_WARNING_CODE) seen.push(w);
    };
    process.on('warning', onWarning);
    try {
      const file = path();
      open(file);
      open(file);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.equal(seen.length, 2);
    assert.match(seen[0]?.message ?? '', /INSECURE/);
  });

  it('creates a 32-byte key file with mode 0600 and reuses it', async () => {
    const file = path();
    const a = open(file);
    const st = statSync(file);
    assert.equal(st.size, 32);
    assert.equal(st.mode & 0o777, 0o600);
    const bytes = readFileSync(file);
    const b = open(file);
    assert.equal(b.keyId, a.keyId);
    assert.match(a.keyId, /^dev:[0-9a-f]{16}$/);
    assert.ok(!a.keyId.includes(bytes.toString('hex').slice(0, 16)), 'keyId is a MAC, not key bytes');
    const { plaintext, encrypted } = await a.generateDataKey(CTX);
    assert.deepEqual(await b.decryptDataKey(encrypted, CTX), plaintext, 'a restart (new instance, same file) unseals');
  });

  it('round-trips on the default crypto backend too', async () => {
    const { defaultCrypto } = await import('../../../native/index.ts');
    const p = open(path(), defaultCrypto());
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    assert.equal(plaintext.length, 32);
    assert.equal(encrypted.keyVersion, '');
    assert.equal(encrypted.ciphertext.length, 60);
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext);
  });

  it('fails invalid_ciphertext for another context or any flipped byte, key_not_found for another key file', async () => {
    const p = open(path());
    const { encrypted } = await p.generateDataKey(CTX);
    await rejectsWithKind(p.decryptDataKey(encrypted, { ...CTX, region: 'elsewhere' }), 'invalid_ciphertext');
    await rejectsWithKind(p.decryptDataKey(encrypted, { ...CTX, clusterId: 'other' }), 'invalid_ciphertext');
    for (let i = 0; i < encrypted.ciphertext.length; i++) {
      const ciphertext = Buffer.from(encrypted.ciphertext);
      ciphertext[i] = (ciphertext[i] as number) ^ 0x01;
      await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext }, CTX), 'invalid_ciphertext');
    }
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext: Buffer.alloc(59) }, CTX), 'invalid_ciphertext');
    await rejectsWithKind(open(path()).decryptDataKey(encrypted, CTX), 'key_not_found');
  });

  it('refuses key files that are group/world accessible, the wrong size or not a file', async () => {
    const loose = path();
    writeFileSync(loose, Buffer.alloc(32, 1), { mode: 0o600 });
    chmodSync(loose, 0o644);
    await rejectsWithKind(() => open(loose), 'config', /accessible by group\/others/);
    const short = path();
    writeFileSync(short, Buffer.alloc(31, 1), { mode: 0o600 });
    await rejectsWithKind(() => open(short), 'config', /32 bytes/);
    const directory = path();
    mkdirSync(directory);
    await rejectsWithKind(() => open(directory), 'config', /config\.keyFile/);
    await rejectsWithKind(() => open(join(dir, 'missing-dir', 'k')), 'config', /ENOENT/);
    await rejectsWithKind(() => new DevSealProvider({ keyFile: '' }, { devMode: true }), 'config', /config\.keyFile/);
  });

  it('refuses a bad context and calls after close', async () => {
    const p = open(path());
    await rejectsWithKind(p.generateDataKey({ clusterId: 'c', region: '' }), 'config', /context\.region/);
    await p.close();
    await p.close();
    await rejectsWithKind(p.generateDataKey(CTX), 'config', /closed/);
  });
});
