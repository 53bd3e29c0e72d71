/**
 * The scripted Shamir ceremony against a real `kcm core` process (issue 3,
 * "Must show" 1): init 5/3 with shares sealed to five holders → SIGTERM →
 * restart sealed (503 on key APIs) → three shares opened by their holders,
 * submitted in a shuffled order → active; restart → two shares → still
 * unsealing, 503; foreign, duplicate and corrupted shares refused and not
 * counted; reset; and the operator CLI path (holder-keygen, unseal
 * --sealed-file --holder-secret-key).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  generateHolderKeypair,
  type HolderKeypair,
  holderKeyFromBase64,
  holderKeyToBase64,
  openSealedShare,
} from '../../../core/src/seal/shamir/open-share.ts';
import { CoreChild, cleanupAll, kcm, shuffled, submitShares, tempDir } from './core-process.ts';

after(cleanupAll);

describe('e2e: Shamir ceremony through `kcm core`', () => {
  const work = tempDir();
  const dataDir = tempDir();
  const holders: HolderKeypair[] = [];
  let payloads: string[] = [];
  let clusterId = '';
  let core: CoreChild;

  /** The signed share text holder `i` (0-based) opens on their own machine. */
  const opened = (i: number) => openSealedShare(payloads[i] as string, (holders[i] as HolderKeypair).secretKey);

  before(async () => {
    // Holder 1 uses the operator CLI, the others the library call it wraps.
    const r = await kcm(['operator', 'holder-keygen', '--out', join(work, 'holder1')]);
    assert.equal(r.code, 0, r.err);
    holders.push({
      publicKey: holderKeyFromBase64(readFileSync(join(work, 'holder1.pub'), 'utf8')),
      secretKey: holderKeyFromBase64(readFileSync(join(work, 'holder1.key'), 'utf8')),
    });
    for (let i = 1; i < 5; i++) holders.push(generateHolderKeypair());
    core = await CoreChild.start({ dataDir });
  });

  it('init 5/3 with holder keys returns five sealed payloads and a manifest whose hashes match them', async () => {
    assert.equal((await core.status()).state, 'uninitialized');
    const res = await core.api('POST', '/v1/sys/init', {
      threshold: 3,
      shares: 5,
      holderPublicKeys: holders.map((h) => holderKeyToBase64(h.publicKey)),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const { shares, manifest } = res.body;
    clusterId = res.body.clusterId;
    assert.match(clusterId, /^kcm-[0-9a-f]{16}$/);
    assert.deepEqual(
      shares.map((s: { index: number }) => s.index),
      [1, 2, 3, 4, 5],
    );
    payloads = shares.map((s: { payload: string }) => s.payload);
    assert.equal(manifest.clusterId, clusterId);
    assert.equal(manifest.threshold, 3);
    assert.equal(manifest.shareCount, 5);
    assert.match(manifest.distribution, /^sealed/);
    for (const [i, p] of payloads.entries()) {
      const entry = manifest.shares[i];
      assert.equal(entry.index, i + 1);
      assert.equal(entry.payloadSha256, createHash('sha256').update(p, 'utf8').digest('hex'), `share ${i + 1} hash`);
      assert.equal(entry.holderPublicKey, holderKeyToBase64((holders[i] as HolderKeypair).publicKey));
      const doc = JSON.parse(p);
      assert.equal(doc.clusterId, clusterId);
      assert.equal(doc.index, i + 1);
      assert.doesNotMatch(p, /okcm-signed-share/, 'the signed share is inside the sealed box only');
    }
    const s = await core.status();
    assert.equal(s.state, 'active');
    assert.equal(s.ivkVersion, 1);
    assert.equal((await core.api('POST', '/v1/sys/init', {})).body.error.code, 'already_initialized');
    // A holder cannot open another holder's payload.
    assert.throws(
      () => openSealedShare(payloads[0] as string, (holders[1] as HolderKeypair).secretKey),
      /another holder/,
    );
  });

  it('SIGTERM exits 0 promptly; after restart the Core is sealed and key APIs answer 503 sealed', async (t) => {
    const exit = await core.stop();
    assert.deepEqual([exit.code, exit.signal], [0, null], core.output);
    assert.ok(exit.ms < 3_000, `SIGTERM → exit took ${exit.ms.toFixed(0)} ms`);
    t.diagnostic(`SIGTERM → exit 0 in ${exit.ms.toFixed(0)} ms`);
    core = await CoreChild.start({ dataDir });
    const s = await core.status();
    assert.equal(s.state, 'sealed');
    assert.equal(s.clusterId, clusterId);
    assert.deepEqual(s.progress, { received: 0, threshold: 3 });
    assert.equal(s.ivkVersion, null);
    for (const [method, path] of [
      ['GET', '/v1/ivk'],
      ['POST', '/v1/ivk/rotate'],
      ['POST', '/v1/ivk/1/revoke'],
      ['DELETE', '/v1/ivk/1'],
    ] as const) {
      const r = await core.api(method, path, method === 'GET' ? undefined : {});
      assert.equal(r.status, 503, `${method} ${path}`);
      assert.equal(r.body.error.code, 'sealed', `${method} ${path}`);
    }
    assert.equal((await core.api('GET', '/readyz')).status, 503);
  });

  it('three shares opened by their holders, in a shuffled order, make it active; the IVK list works', async (t) => {
    const order = shuffled([0, 2, 3]);
    const texts = order.map(opened);
    const r1 = await core.api('POST', '/v1/sys/unseal', { share: texts[0] });
    assert.equal(r1.status, 200);
    assert.deepEqual([r1.body.state, r1.body.progress], ['unsealing', { received: 1, threshold: 3 }]);
    const r2 = await core.api('POST', '/v1/sys/unseal', { share: texts[1] });
    assert.deepEqual([r2.body.state, r2.body.progress], ['unsealing', { received: 2, threshold: 3 }]);
    const { last, lastMs } = await submitShares(core, [texts[2] as string]);
    assert.equal(last.body.state, 'active');
    assert.equal(last.body.progress, null);
    assert.equal(last.body.ivkVersion, 1);
    const list = await core.api('GET', '/v1/ivk');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.versions.map((v: { version: number; state: string; inMemory: boolean }) => [
        v.version,
        v.state,
        v.inMemory,
      ]),
      [[1, 'ACTIVE', true]],
    );
    assert.equal((await core.api('GET', '/readyz')).status, 200);
    t.diagnostic(`shuffled order ${order.map((i) => i + 1).join(',')}; M-th share → active in ${lastMs.toFixed(1)} ms`);
  });

  it('restart, two shares: unsealing 2/3 and still 503; foreign, duplicate, corrupted shares are refused uncounted; reset', async () => {
    assert.equal((await core.stop()).code, 0);
    core = await CoreChild.start({ dataDir });
    await submitShares(core, [opened(4), opened(1)]);
    let s = await core.status();
    assert.deepEqual([s.state, s.progress], ['unsealing', { received: 2, threshold: 3 }]);
    const sealedApi = await core.api('GET', '/v1/ivk');
    assert.deepEqual([sealedApi.status, sealedApi.body.error.code], [503, 'sealed']);

    // Another cluster, same holders and parameters: its shares verify nowhere but there.
    const other = await CoreChild.start({ dataDir: tempDir() });
    const foreignInit = await other.api('POST', '/v1/sys/init', {
      threshold: 3,
      shares: 5,
      holderPublicKeys: holders.map((h) => holderKeyToBase64(h.publicKey)),
    });
    assert.equal(foreignInit.status, 200);
    await other.stop();
    const foreign = openSealedShare(foreignInit.body.shares[2].payload, (holders[2] as HolderKeypair).secretKey);
    const refusals: [string, unknown, string][] = [
      ['foreign', foreign, 'foreign_share'],
      ['duplicate', opened(4), 'duplicate_share'],
      [
        'corrupted',
        `${opened(0).slice(0, 100)}${opened(0)[100] === 'A' ? 'B' : 'A'}${opened(0).slice(101)}`,
        'invalid_share',
      ],
      ['sealed payload instead of the opened share', payloads[0], 'invalid_share'],
      ['garbage', 'okcm-signed-share:1:AAAA', 'invalid_share'],
      ['not a string', 42, 'bad_request'],
    ];
    for (const [what, share, code] of refusals) {
      const r = await core.api('POST', '/v1/sys/unseal', { share });
      assert.equal(r.status, 400, what);
      assert.equal(r.body.error.code, code, what);
      assert.doesNotMatch(JSON.stringify(r.body), /okcm-signed-share:1:[A-Za-z0-9_-]{40}/, `${what}: no share echoed`);
    }
    s = await core.status();
    assert.deepEqual([s.state, s.progress], ['unsealing', { received: 2, threshold: 3 }], 'refused shares not counted');
    assert.ok(core.running, 'bad shares never crash the Core');

    const reset = await core.api('POST', '/v1/sys/unseal', { reset: true });
    assert.deepEqual([reset.body.state, reset.body.progress], ['sealed', { received: 0, threshold: 3 }]);
    assert.equal((await core.api('GET', '/v1/ivk')).status, 503);
  });

  it('operator CLI: unseal --sealed-file --holder-secret-key, status, seal', async () => {
    const addr = ['--addr', core.url];
    const sealedFile = join(work, 'share-1.json');
    writeFileSync(sealedFile, `${payloads[0]}\n`);
    const r = await kcm([
      'operator',
      'unseal',
      '--sealed-file',
      sealedFile,
      '--holder-secret-key',
      join(work, 'holder1.key'),
      ...addr,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).progress, { received: 1, threshold: 3 });
    const again = await kcm([
      'operator',
      'unseal',
      '--sealed-file',
      sealedFile,
      '--holder-secret-key',
      join(work, 'holder1.key'),
      ...addr,
    ]);
    assert.equal(again.code, 1);
    assert.match(again.err, /400 duplicate_share/);
    const wrongKey = join(work, 'wrong.key');
    writeFileSync(wrongKey, `${holderKeyToBase64((holders[1] as HolderKeypair).secretKey)}\n`);
    const wrong = await kcm([
      'operator',
      'unseal',
      '--sealed-file',
      sealedFile,
      '--holder-secret-key',
      wrongKey,
      ...addr,
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /another holder key/);
    await submitShares(core, [opened(3), opened(2)]);
    const status = await kcm(['operator', 'status', ...addr]);
    assert.equal(JSON.parse(status.out).state, 'active');
    const seal = await kcm(['operator', 'seal', ...addr]);
    assert.equal(JSON.parse(seal.out).state, 'sealed');
    assert.equal((await core.api('GET', '/v1/ivk')).body.error.code, 'sealed');
    assert.equal((await core.stop()).code, 0);
  });
});
