/**
 * Auto-unseal of a real `kcm core` process (issue 3, "Must show" 2): through
 * the KMS-protocol server on loopback (AWS KMS) and through a SoftHSM2 token
 * (PKCS#11), including a provider outage at start-up: the Core stays sealed,
 * retries, accepts the Shamir recovery shares instead, and unseals by itself
 * when the outage ends (background retry). PKCS#11 parts skip with the reason
 * when SoftHSM is missing (never under CI=true).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPkcs11SealKey } from '../../../core/src/seal/pkcs11/create-seal-key.ts';
import { KmsTestServer } from '../../support/kms-server.ts';
import { createSoftHsmToken, type SoftHsmToken, softHsmSkip } from '../../support/softhsm.ts';
import { CoreChild, cleanupAll, type Reply, shuffled, sleep, submitShares, tempDir } from './core-process.ts';

after(cleanupAll);

const AUTO_UNSEAL = { attempts: 3, baseMs: 20, maxMs: 200 };

/** Audit lines of the Core's JSONL log with this action. */
function audited(dataDir: string, action: string): { outcome: string; reason?: string }[] {
  return readFileSync(join(dataDir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.action === action);
}

async function waitForOutput(core: CoreChild, re: RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(core.output)) {
    if (!core.running || Date.now() > deadline) throw new Error(`no ${re} in the Core's output:\n${core.output}`);
    await sleep(10);
  }
}

/** Init 5/3 (recovery shares in plain signed-share form) and return them. */
async function initCore(core: CoreChild, sealType: string): Promise<string[]> {
  const res: Reply = await core.api('POST', '/v1/sys/init', { threshold: 3, shares: 5 });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const s = await core.status();
  assert.deepEqual([s.state, s.sealType], ['active', sealType]);
  return res.body.shares.map((x: { payload: string }) => x.payload);
}

/** Sealed and waiting for shares after the start-up attempt failed; key APIs 503; recovery shares → active. */
async function recoverWithShares(core: CoreChild, shares: string[]): Promise<void> {
  await waitForOutput(core, /auto-unseal failed \(seal_provider_[a-z_]+: .*\): waiting for unseal shares/);
  assert.ok(core.running, 'the Core must not exit when its seal provider is down');
  assert.equal((await core.status()).state, 'sealed');
  const r = await core.api('GET', '/v1/ivk');
  assert.deepEqual([r.status, r.body.error.code], [503, 'sealed']);
  const { last } = await submitShares(core, shuffled(shares).slice(0, 3));
  assert.equal(last.body.state, 'active');
  assert.equal((await core.api('GET', '/v1/ivk')).status, 200);
}

describe('e2e: auto-unseal through AWS KMS (KMS-protocol server)', () => {
  let kms: KmsTestServer;
  let config: Record<string, unknown>;
  let shares: string[] = [];
  const dataDir = tempDir();

  before(async () => {
    kms = await KmsTestServer.start();
    const { arn } = kms.createKey({ alias: 'kcm-seal' });
    config = {
      region: 'eu-1',
      seal: {
        type: 'awskms',
        keyId: arn,
        region: kms.region,
        endpoint: kms.endpoint,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        timeoutMs: 500,
      },
      autoUnseal: AUTO_UNSEAL,
    };
  });
  after(() => kms?.close());

  const restart = () => CoreChild.start({ dataDir, config });

  it('init → restart → active without any share', async (t) => {
    let core = await restart();
    shares = await initCore(core, 'awskms');
    assert.equal(kms.countOf('GenerateDataKey'), 1);
    assert.equal((await core.stop()).code, 0);
    const t0 = performance.now();
    core = await restart();
    const s = await core.waitForStatus((x) => x.state === 'active');
    const ms = performance.now() - t0;
    assert.equal(s.ivkVersion, 1);
    assert.equal(kms.countOf('Decrypt'), 1);
    const decrypt = kms.requests.find((r) => r.target === 'TrentService.Decrypt');
    assert.deepEqual(decrypt?.body.EncryptionContext, { 'openkcm:cluster': s.clusterId, 'openkcm:region': 'eu-1' });
    assert.equal((await core.api('GET', '/v1/ivk')).status, 200);
    t.diagnostic(`auto-unseal: spawn → listening ${core.startMs.toFixed(0)} ms, → active ${ms.toFixed(0)} ms`);
    assert.equal((await core.stop()).code, 0);
  });

  it('KMS down at start-up (connections dropped): stays sealed, retries with backoff, accepts the recovery shares', async () => {
    kms.setOutage(true);
    try {
      const core = await restart();
      await waitForOutput(core, /auto-unseal attempt 2 failed \(awskms: Decrypt failed[^)]*\)/);
      await recoverWithShares(core, shares);
      assert.equal((await core.stop()).code, 0);
    } finally {
      kms.setOutage(false);
    }
  });

  it('KMS answering 503 while the Core waits: Decrypt count grows; when it recovers the Core unseals by itself', async () => {
    const before = kms.countOf('Decrypt');
    kms.failNext(1_000_000, 503);
    const core = await restart();
    await waitForOutput(core, /auto-unseal failed \(seal_provider_[a-z_]+: .*\): waiting for unseal shares/);
    const deadline = Date.now() + 10_000;
    while (kms.countOf('Decrypt') < before + AUTO_UNSEAL.attempts + 2 && Date.now() < deadline) await sleep(20);
    assert.ok(kms.countOf('Decrypt') >= before + AUTO_UNSEAL.attempts + 2, 'background retries reach KMS');
    assert.equal((await core.status()).state, 'sealed');
    kms.failNext(0);
    await core.waitForStatus((x) => x.state === 'active', 5_000);
    await waitForOutput(core, /auto-unsealed \(background retry\)/);
    assert.equal((await core.stop()).code, 0);
  });

  it('network outage that ends while the Core waits: it unseals by itself', async () => {
    kms.setOutage(true);
    const core = await restart();
    await waitForOutput(core, /auto-unseal failed \(seal_provider_[a-z_]+: .*\): waiting for unseal shares/);
    await sleep(3 * AUTO_UNSEAL.maxMs);
    assert.equal((await core.status()).state, 'sealed');
    kms.setOutage(false);
    await core.waitForStatus((x) => x.state === 'active', 5_000);
    assert.equal((await core.stop()).code, 0);
  });

  it('throttled for the first 2 calls: retried within the start-up attempt, still unseals', async () => {
    const before = kms.countOf('Decrypt');
    kms.throttleNext(2);
    const core = await restart();
    await core.waitForStatus((x) => x.state === 'active', 5_000);
    assert.equal(kms.countOf('Decrypt'), before + 3);
    assert.match(core.output, /auto-unseal attempt 1 failed \(awskms: Decrypt failed \(ThrottlingException/);
    assert.doesNotMatch(core.output, /waiting for unseal shares/);
    assert.equal((await core.stop()).code, 0);
  });

  it('KMS key disabled (not retryable): stays sealed and accepts the recovery shares', async () => {
    const keyId = (config.seal as { keyId: string }).keyId.split('/').pop() as string;
    kms.setKeyState(keyId, 'Disabled');
    try {
      const core = await restart();
      await recoverWithShares(core, shares);
      assert.doesNotMatch(core.output, /auto-unseal attempt 1 failed/, 'a disabled key is not retried with backoff');
      assert.equal((await core.stop()).code, 0);
    } finally {
      kms.setKeyState(keyId, 'Enabled');
    }
    const failures = audited(dataDir, 'core.unseal.auto').filter((e) => e.outcome === 'failure');
    assert.ok(failures.length > 0);
  });

  it('audit: a provider failure names its kind, and a long outage is not audited once per background retry', () => {
    const failures = audited(dataDir, 'core.unseal.auto').filter((e) => e.outcome === 'failure');
    assert.deepEqual(
      failures.filter((e) => e.reason === 'internal_error'),
      [],
    );
  });
});

describe('e2e: auto-unseal through PKCS#11 (SoftHSM2)', { skip: softHsmSkip() }, () => {
  let token: SoftHsmToken;
  let seal: Record<string, unknown>;
  let conf = '';
  let shares: string[] = [];
  const dataDir = tempDir();

  before(async () => {
    token = createSoftHsmToken();
    conf = process.env.SOFTHSM2_CONF as string;
    seal = {
      type: 'pkcs11',
      modulePath: token.modulePath,
      tokenLabel: token.tokenLabel,
      pin: token.pin,
      keyLabel: 'kcm-seal',
    };
    await createPkcs11SealKey({
      modulePath: token.modulePath,
      tokenLabel: token.tokenLabel,
      pin: token.pin,
      keyLabel: 'kcm-seal',
    });
  });
  after(() => token?.cleanup());

  const restart = (softhsmConf = conf) =>
    CoreChild.start({ dataDir, config: { seal, autoUnseal: AUTO_UNSEAL }, env: { SOFTHSM2_CONF: softhsmConf } });

  /** A SoftHSM config whose token dir is `tokenDir` (the token is not there: the HSM lost it). */
  const confWithTokenDir = (tokenDir: string) => {
    const path = join(tempDir(), 'softhsm2.conf');
    writeFileSync(path, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    return path;
  };

  it('init → restart → active without any share', async (t) => {
    let core = await restart();
    shares = await initCore(core, 'pkcs11');
    assert.equal((await core.stop()).code, 0);
    const t0 = performance.now();
    core = await restart();
    await core.waitForStatus((x) => x.state === 'active');
    t.diagnostic(`spawn → auto-unsealed active (PKCS#11) ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal((await core.stop()).code, 0);
  });

  it('token missing at start-up (empty token dir): stays sealed and accepts the recovery shares', async () => {
    const core = await restart(confWithTokenDir(tempDir()));
    await recoverWithShares(core, shares);
    assert.equal((await core.stop()).code, 0);
  });

  it('token store unreadable at start-up (C_Initialize fails): stays sealed and accepts the recovery shares', async () => {
    const core = await restart(confWithTokenDir(join(tempDir(), 'missing')));
    await recoverWithShares(core, shares);
    assert.equal((await core.stop()).code, 0);
  });
});
