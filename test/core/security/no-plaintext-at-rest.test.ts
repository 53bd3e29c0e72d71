/**
 * ADR-403: nothing the Core stores holds a plaintext key. A Core is driven
 * through init (with an auto-unseal seal blob), 50 tenants' L2 keys, IVK
 * rotations and a seal/unseal; then every plaintext key it holds — MasterKey,
 * every IVK version, every L2 key, the seal data key — is exported through the
 * test-only export and searched for (raw, hex and base64) in every stored
 * byte: the SQLite file with its WAL, the PostgreSQL data directory after a
 * CHECKPOINT, and the audit log.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The export must be enabled before either backend loads: import everything dynamically below.
process.env.KCM_INSECURE_KEY_EXPORT = 'tests';

const { cryptoFor } = await import('../../../native/index.ts');
const { insecureExportKeyForTests } = await import('../../../native/ts/insecure-export.ts');
const { decodeWrappedKey, wrapAad } = await import('../../../common/src/format/wrapped-key.ts');
const { combineShares } = await import('../../../common/src/crypto/shamir.ts');
const { JsonlAuditSink } = await import('../../../core/src/audit/audit-sink.ts');
const { ivkPolicy } = await import('../../../core/src/ivk/ivk-policy.ts');
const { ivkRef, masterKeyRef } = await import('../../../core/src/keys/key-names.ts');
const { RootOfTrust } = await import('../../../core/src/root/root-of-trust.ts');
const { openSealProvider } = await import('../../../core/src/seal/open-seal-provider.ts');
const { verifySignedShare } = await import('../../../core/src/seal/shamir/verify-share.ts');
const { IntegrityStore } = await import('../../../core/src/store/integrity-store.ts');
const { openStore } = await import('../../../core/src/store/open-store.ts');
const { BACKENDS, cryptoOf, skipFor } = await import('../../native/backends.ts');
const { postgresSkipReason, startPostgres } = await import('../../support/postgres.ts');
type StoreConfig = import('../../../core/src/store/open-store.ts').StoreConfig;
type KeyHandle = import('../../../native/index.ts').KeyHandle;

/** Every file below `dir` (or `dir` itself), as bytes. */
function readAll(path: string): Buffer[] {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return [];
  if (st.isFile()) return [readFileSync(path)];
  return readdirSync(path).flatMap((f) => readAll(join(path, f)));
}

function assertAbsent(blobs: readonly Buffer[], keys: ReadonlyMap<string, Buffer>): void {
  assert.ok(blobs.length > 0 && blobs.some((b) => b.length > 0), 'nothing to search');
  for (const [name, key] of keys) {
    const forms = [
      key,
      Buffer.from(key.toString('hex')),
      Buffer.from(key.toString('base64')),
      Buffer.from(key.toString('base64url')),
    ];
    for (const blob of blobs) for (const f of forms) assert.equal(blob.indexOf(f), -1, `${name} found in stored bytes`);
  }
}

/** Drives a Core on `config` and returns every plaintext key it holds, by name. */
async function exercise(backend: 'native' | 'node', config: StoreConfig, dir: string): Promise<Map<string, Buffer>> {
  const crypto = cryptoOf(backend);
  const raw = await openStore(config);
  const store = new IntegrityStore(raw);
  const provider = openSealProvider({ type: 'dev', keyFile: join(dir, 'dev-seal.key') }, { devMode: true });
  const root = new RootOfTrust({
    crypto,
    store,
    region: 'eu-1',
    sealProvider: provider,
    ivkPolicy: ivkPolicy(),
    audit: new JsonlAuditSink(join(dir, 'audit.jsonl')),
  });
  const keys = new Map<string, Buffer>();
  try {
    await root.load();
    const { shares } = await root.init({ threshold: 2, shareCount: 3 });
    const l2s: KeyHandle[] = [];
    for (let round = 0; round < 3; round++) {
      await store.transaction(async (tx) => {
        for (let i = 0; i < 17; i++) {
          const l2 = crypto.generateKey();
          const tenant = `t-${round}-${i}`;
          await root.ivk().insertL2(tx, l2, tenant, 1, Date.now());
          l2s.push(l2);
        }
      });
      await root.ivk().rotate('emergency');
    }
    root.seal('test');
    await root.submitShare((shares[1] as { payload: string }).payload);
    await root.submitShare((shares[2] as { payload: string }).payload);
    assert.equal(root.state, 'active');
    // The MasterKey, rebuilt from shares as an operator would.
    const cluster = await store.getCluster();
    assert.ok(cluster);
    const expected = { ...cluster, ceremonyPublicKey: cluster.ceremonyPublicKey };
    const mk = combineShares(
      crypto,
      shares.slice(0, 2).map((s) => verifySignedShare(s.payload, expected)),
    );
    keys.set('MasterKey', insecureExportKeyForTests(mk));
    for (const r of await store.listIvks()) {
      const blob = decodeWrappedKey(r.wrapped);
      const ivk = mk.unwrap(blob.sealed, wrapAad(masterKeyRef(cluster.clusterId), ivkRef('eu-1', r.version)));
      keys.set(`IVK v${r.version}`, insecureExportKeyForTests(ivk));
    }
    for (const [i, l2] of l2s.entries()) keys.set(`L2 #${i}`, insecureExportKeyForTests(l2));
    const seal = cluster.seal;
    assert.ok(seal);
    const dk = await provider.decryptDataKey(
      { keyId: seal.keyId, keyVersion: seal.keyVersion, ciphertext: seal.encryptedDataKey },
      { clusterId: cluster.clusterId, region: 'eu-1' },
    );
    keys.set('seal data key', Buffer.from(dk));
    assert.equal(keys.size, 1 + 4 + 51 + 1);
    return keys;
  } finally {
    root.seal('test');
    await provider.close();
    await raw.close();
  }
}

for (const backend of BACKENDS) {
  describe(`no plaintext key at rest (${backend} backend)`, { skip: skipFor(backend) }, () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'kcm-at-rest-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('the export works only in a process started with the test switch', () => {
      const key = cryptoFor(backend).generateKey();
      assert.equal(insecureExportKeyForTests(key).length, 32);
      const script = `
        const { cryptoFor } = await import('./native/index.ts');
        const { insecureExportKeyForTests } = await import('./native/ts/insecure-export.ts');
        try { insecureExportKeyForTests(cryptoFor('${backend}').generateKey()); console.log('exported'); }
        catch (e) { console.log(e.code); }`;
      const env = { ...process.env };
      delete env.KCM_INSECURE_KEY_EXPORT;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
        env,
        encoding: 'utf8',
      });
      assert.equal(r.stdout.trim(), 'insecure_export_disabled', r.stderr);
    });

    it('SQLite file, WAL and audit log hold none of the keys', async () => {
      const db = join(dir, 'core.db');
      const keys = await exercise(backend, { kind: 'sqlite', path: db }, dir);
      assertAbsent([...readAll(db), ...readAll(`${db}-wal`), ...readAll(join(dir, 'audit.jsonl'))], keys);
    });

    it('PostgreSQL data directory holds none of the keys', { skip: postgresSkipReason() ?? false }, async () => {
      const server = await startPostgres();
      try {
        const keys = await exercise(
          backend,
          { kind: 'postgres', connectionString: server.connectionString, schema: `rest_${backend}` },
          dir,
        );
        const pg = (await import('pg')).default;
        const client = new pg.Client({ connectionString: server.connectionString });
        await client.connect();
        await client.query('CHECKPOINT');
        const rows = await client.query(`SELECT count(*)::int AS n FROM rest_${backend}.l2_keys`);
        assert.equal(rows.rows[0].n, 51);
        await client.end();
        assertAbsent(readAll(server.dataDir), keys);
      } finally {
        await server.stop();
      }
    });
  });
}
