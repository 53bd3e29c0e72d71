/**
 * `kcm gateway --check` (gateway/src/check-gateway-config.ts): the checks a
 * start makes before opening anything, with real policy files and real
 * certificates (made by the test PKI with openssl), and the command itself:
 * it opens no port (a port already taken does not matter), exits 0 with a
 * description of what would run, or 1 naming the file, line or field.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KcmError } from '../../common/src/errors.ts';
import { makeTestPki, type TestPki } from '../../common/src/pki/test-pki.ts';
import { checkGatewayConfig } from '../../gateway/src/check-gateway-config.ts';
import { gatewayConfig } from '../../gateway/src/gateway-config.ts';
import { writeCrl } from '../support/test-crl.ts';
import { testPolicy } from './proxy/proxy-fixture.ts';

let dir: string;
let pki: TestPki;
const savedDev = process.env.KCM_DEV;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kcm-check-'));
  pki = makeTestPki(join(dir, 'pki'));
  process.env.KCM_DEV = '1';
});
after(() => {
  if (savedDev === undefined) delete process.env.KCM_DEV;
  else process.env.KCM_DEV = savedDev;
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A policy directory holding `policy` (any JSON text) as its one routes file. */
function policyDir(policy: unknown, raw?: string): string {
  const d = join(dir, `policies-${++n}`);
  mkdirSync(d);
  writeFileSync(join(d, 'test.routes.json'), raw ?? JSON.stringify(policy, null, 2));
  return d;
}

const devConfig = (extra: Record<string, unknown> = {}) => ({
  dev: true,
  fronts: { uws: { port: 0 } },
  policies: { dir: policyDir(testPolicy()) },
  ...extra,
});

const check = (doc: unknown) => checkGatewayConfig(gatewayConfig(doc, dir));

function refuses(doc: unknown, code: string, message: RegExp): void {
  assert.throws(
    () => check(doc),
    (e: unknown) => {
      assert.ok(e instanceof KcmError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('checkGatewayConfig', () => {
  it('a valid configuration: every route described, with what it encrypts, for whom and where the tenant comes from', () => {
    const lines = check(devConfig());
    assert.match(lines[0] as string, /^fronts: uws 127\.0\.0\.1:0$/);
    assert.match(lines.join('\n'), /keys: development keys/);
    assert.match(lines.join('\n'), /policies: .*1 file, 8 routes, fingerprint [0-9a-f]{16}/);
    const post = lines.find((l) => l.includes('POST /orders')) as string;
    assert.match(post, /→ app http:\/\/127\.0\.0\.1:1\/: encrypts 1 field of the request under key orders/);
    assert.match(post, /tenant from header x-tenant-id \(trusted peers: 127\.0\.0\.1, ::1\)/);
    assert.match(post, /\[.*test\.routes\.json:\d+:\d+\]$/);
    const get = lines.find((l) => l.includes('GET /orders/:id')) as string;
    assert.match(
      get,
      /decrypts 1 field of the response \(plaintext for identity billing, role support-lead, others get the mask\)/,
    );
    assert.match(lines.find((l) => l.includes('/ct/orders/:id')) as string, /others get the ciphertext/);
    assert.match(lines.find((l) => l.includes('* /raw/*')) as string, /passes through \(no field rules\)/);
    assert.match(lines.join('\n'), /audit: none/);
    assert.match(lines.at(-1) as string, /^not checked \(a start does\): the ports are free/);
  });

  it('with the native front: which routes it serves, and why the pipeline serves the others', () => {
    const lines = check(devConfig({ fronts: { uws: { port: 0 }, native: { port: 0 } } }));
    assert.match(lines[0] as string, /native 127\.0\.0\.1:0 \(its routes below; the rest via the pipeline\)/);
    const line = (text: string) => lines.find((l) => l.includes(text)) as string;
    assert.match(line('POST /orders'), /native front: serves it/);
    assert.match(line('* /raw/*'), /native front: serves it/);
    assert.match(
      line('GET /orders/:id'),
      /native front: the pipeline serves it \(response decryption is the pipeline's\)/,
    );
    const audited = check(devConfig({ fronts: { native: { port: 0 } }, audit: { file: '/tmp/never-opened.log' } }));
    assert.match(
      audited.find((l) => l.includes('POST /orders')) as string,
      /native front: the pipeline serves it \(an audit log records it\)/,
    );
    refuses(
      devConfig({ fronts: { native: { host: 'localhost', port: 0 } } }),
      'invalid_config',
      /fronts\.native\.host: must be an IP address/,
    );
  });

  it('the config upstreams.urls replaces a policy URL by name, as at start', () => {
    const lines = check(devConfig({ upstreams: { urls: { app: 'http://10.1.2.3:8080/base' } } }));
    assert.match(lines.find((l) => l.includes('POST /orders')) as string, /→ app http:\/\/10\.1\.2\.3:8080\/base:/);
  });

  it('a policy error names the file, line and field', () => {
    const bad = JSON.stringify(testPolicy(), null, 2).replace('"POST"', '"POTS"');
    refuses(
      devConfig({ policies: { dir: policyDir(null, bad) } }),
      'invalid_policy',
      /test\.routes\.json:\d+:\d+: .*method/,
    );
  });

  it('an upstream name no route uses, and a pkcs11 route without hsm, are refused', () => {
    refuses(
      devConfig({ upstreams: { urls: { nobody: 'http://127.0.0.1:9' } } }),
      'invalid_config',
      /upstreams\.urls\.nobody: no policy route uses this upstream name/,
    );
    const p = testPolicy() as { routes: Record<string, unknown>[] };
    p.routes = [{ ...p.routes[1], backend: 'pkcs11' }];
    refuses(devConfig({ policies: { dir: policyDir(p) } }), 'invalid_config', /hsm: required by .*backend "pkcs11"/);
  });

  it("the mTLS front's key must match its certificate", () => {
    const h2Tls = { port: 0, certFile: pki.edgeA.certFile, keyFile: pki.edgeB.keyFile, caFile: pki.ca.certFile };
    refuses(devConfig({ fronts: { h2Tls } }), 'invalid_certificate', /key file .*edge-b.* does not match certificate/);
    const ok = check(devConfig({ fronts: { h2Tls: { ...h2Tls, keyFile: pki.edgeA.keyFile } } }));
    assert.match(ok[0] as string, /h2Tls 127\.0\.0\.1:0 \(mTLS\)/);
  });

  it('a CRL out of date is told under the fronts (a start would refuse every client under its CA)', () => {
    const crlFile = join(dir, 'old.crl');
    const day = 24 * 3600 * 1000;
    writeCrl(pki.ca, crlFile, { lastUpdate: new Date(Date.now() - 3 * day), nextUpdate: new Date(Date.now() - day) });
    const h2Tls = {
      port: 0,
      certFile: pki.edgeA.certFile,
      keyFile: pki.edgeA.keyFile,
      caFile: pki.ca.certFile,
      crlFile,
    };
    const lines = check(devConfig({ fronts: { h2Tls } }));
    assert.match(lines[0] as string, /h2Tls 127\.0\.0\.1:0 \(mTLS, CRL\)/);
    assert.ok(
      lines.some((l) =>
        /^ {2}tls: WARNING: the CRL .*old\.crl is expired .*every client certificate under that CA is refused/.test(l),
      ),
      lines.join('\n'),
    );
  });

  it("the Core link's certificate must be a valid client certificate", () => {
    const core = (cert: { certFile: string; keyFile: string }) => ({
      fronts: { uws: { port: 0 } },
      core: { url: 'https://127.0.0.1:9', certFile: cert.certFile, keyFile: cert.keyFile, caFile: pki.ca.certFile },
    });
    refuses(core(pki.core), 'invalid_certificate', /extended key usage lacks clientAuth/);
    refuses(core(pki.expiredClient), 'invalid_certificate', /expired/);
    assert.match(check(core(pki.edgeA)).join('\n'), /keys: leased from the Core at https:\/\/127\.0\.0\.1:9/);
  });

  it('an hsm section: its PIN variable must be set and the module exist; the token is not opened', () => {
    const hsm = { module: join(dir, 'no-such-module.so'), tokenLabel: 't', pinEnv: 'KCM_CHECK_TEST_PIN' };
    refuses(devConfig({ hsm }), 'invalid_config', /hsm\.pinEnv: .*KCM_CHECK_TEST_PIN is not set/);
    process.env.KCM_CHECK_TEST_PIN = 'not-a-real-pin';
    try {
      refuses(devConfig({ hsm }), 'invalid_config', /hsm\.module: .*no-such-module\.so does not exist/);
      const module = join(dir, 'module.so');
      writeFileSync(module, ''); // not a module at all: only a start loads it
      assert.match(
        check(devConfig({ hsm: { ...hsm, module } })).join('\n'),
        /hsm: .*module\.so \(2 workers; token not opened\)/,
      );
    } finally {
      delete process.env.KCM_CHECK_TEST_PIN;
    }
  });
});

describe('kcm gateway --check', () => {
  let taken: Server;
  let port: number;
  before(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    port = (taken.address() as { port: number }).port;
  });
  after(() => taken.close());

  const run = (doc: unknown) => {
    const file = join(dir, `gateway-${++n}.json`);
    writeFileSync(file, JSON.stringify(doc));
    return spawnSync(process.execPath, ['bin/kcm.mjs', 'gateway', '--config', file, '--check'], {
      env: { ...process.env, KCM_DEV: '1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
  };

  it('exits 0 describing what would run, opening nothing (its port is taken by another server)', () => {
    const r = run(devConfig({ fronts: { uws: { port } } }));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^kcm gateway: .*gateway-\d+\.json: OK\nfronts: uws 127\.0\.0\.1:\d+/);
    assert.match(r.stdout, /POST \/orders/);
  });

  it('exits 1 naming the policy file and line', () => {
    const r = run(devConfig({ policies: { dir: policyDir(null, '{ "id": "x",\n  "routes": 7 }') } }));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /test\.routes\.json:\d+:\d+/);
    assert.equal(r.stdout, '');
  });
});
