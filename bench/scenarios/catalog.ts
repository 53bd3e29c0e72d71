/**
 * The scenario list. Each scenario names the system measured (endpoint 0),
 * its bare baseline (endpoint 1: same front, same body, no crypto) and any
 * peers measured beside them in the same run. A scenario that cannot run here
 * is kept with a visible `skip` reason, so the report shows what is missing.
 *
 * Servers (started once per run by bench/harness/run.ts, all on the server CPU):
 *  gw-native  gateway, native backend: uWS (`uws`) and h2 mTLS (`h2Tls`) fronts
 *  gw-node    gateway, node:crypto fallback backend: uWS
 *  gw-pkcs11  gateway, key `bench` on the pkcs11 backend (SoftHSM2 token, serve.ts --hsm): uWS
 *  gw-pkcs11-inline  the same with hsm.inline (token calls on the event loop, no worker threads)
 *  bare-uws   bare uWS JSON echo          bare-h2  bare node:http2 mTLS JSON echo
 *  node-crypto  peer: node:http + node:crypto encrypt service
 *  sample-app   the app behind the proxy  nginx   nginx reverse proxy → sample-app
 *  proxy        the gateway's policy proxy → sample-app (see ./proxy.ts)
 *  node-proxy   peer: the hand-written node:http + node:crypto + undici encrypting proxy (./node-proxy.ts)
 *  bare-forward floor: uWS front + net.Socket to sample-app, no pipeline, no crypto (./bare-forward.ts)
 */
import type { RequestSpec } from '../harness/clients.ts';
import { STORED_NODE_ORDER } from './node-proxy.ts';
import { batchEncryptBody, DATAKEY_BODY, decryptBody, encryptBody, ORDER_FIELDS, sampleOrder } from './payloads.ts';
import { CALLER_HEADER, READER, STORED_ORDER } from './proxy.ts';

export type Front = 'http1' | 'h2-mtls';

export interface Endpoint {
  label: string;
  role: 'gateway' | 'baseline' | 'peer';
  front: Front;
  /** Key of the server in the run's server set, and which of its ports. */
  server: string;
  port: string;
  request: RequestSpec;
}

export interface Scenario {
  id: string;
  title: string;
  group: 'direct' | 'backend' | 'h2' | 'proxy' | 'peers';
  /** [0] the system measured, [1] its bare baseline, then peers. */
  endpoints: Endpoint[];
  /** ADR-604 L4-operation targets apply to endpoint 0. */
  adr604: boolean;
  /** Part of `npm run bench:ci` (gated). */
  ci: boolean;
  /** Why it did not run, when it cannot run here. */
  skip?: string;
}

/** What a scenario factory may use: the running servers and a helper to call them once. */
export interface ScenarioEnv {
  has(server: string): boolean;
  /** Why a server is not running (for skip reasons). */
  missing(server: string): string;
  /** One request to an endpoint's server, returning the JSON body (for set-up such as fetching a ciphertext). */
  call(server: string, port: string, front: Front, spec: RequestSpec): Promise<unknown>;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const TENANT_HEADERS = { ...JSON_HEADERS, 'x-okcm-tenant': 'bench' };
const KEY = 'bench';

const post = (path: string, body: string, headers: Record<string, string> = TENANT_HEADERS): RequestSpec => ({
  method: 'POST',
  path,
  headers,
  body,
});

function uwsPair(label: string, gwServer: string, spec: RequestSpec): Endpoint[] {
  return [
    { label, role: 'gateway', front: 'http1', server: gwServer, port: 'uws', request: spec },
    {
      label: 'bare uWS echo (baseline)',
      role: 'baseline',
      front: 'http1',
      server: 'bare-uws',
      port: 'uws',
      request: spec,
    },
  ];
}

function h2Pair(label: string, spec: RequestSpec): Endpoint[] {
  return [
    { label, role: 'gateway', front: 'h2-mtls', server: 'gw-native', port: 'h2Tls', request: spec },
    {
      label: 'bare h2 mTLS echo (baseline)',
      role: 'baseline',
      front: 'h2-mtls',
      server: 'bare-h2',
      port: 'h2Tls',
      request: spec,
    },
  ];
}

const SIZES = [
  [64, '64 B'],
  [1024, '1 KB'],
  [16384, '16 KB'],
] as const;

type Factory = (env: ScenarioEnv) => Promise<Scenario>;

/** Skips a scenario whose system or baseline is not running; drops peers that are not (they are extras). */
function skipIfMissing(env: ScenarioEnv, s: Scenario): Scenario {
  if (s.skip) return s;
  const gone = s.endpoints.slice(0, 2).find((e) => !env.has(e.server));
  if (gone) return { ...s, skip: env.missing(gone.server) };
  return { ...s, endpoints: s.endpoints.filter((e, i) => i < 2 || env.has(e.server)) };
}

async function ciphertextFrom(env: ScenarioEnv, server: string, port: string, front: Front, size: number) {
  const headers = front === 'http1' ? TENANT_HEADERS : JSON_HEADERS;
  const r = (await env.call(server, port, front, post(`/v1/encrypt/${KEY}`, encryptBody(size), headers))) as {
    data?: { ciphertext?: string };
  };
  const ct = r.data?.ciphertext;
  if (typeof ct !== 'string') throw new Error(`set-up: encrypt on ${server} returned no ciphertext`);
  return ct;
}

const direct: Factory[] = [
  ...SIZES.map(
    ([n, name]): Factory =>
      async (env) =>
        skipIfMissing(env, {
          id: `direct-encrypt-${name.replace(' ', '')}`,
          title: `direct encrypt ${name} (uWS, HTTP/1.1, native)`,
          group: 'direct',
          adr604: true,
          ci: n === 1024,
          endpoints: [
            ...uwsPair(`gateway encrypt ${name}`, 'gw-native', post(`/v1/encrypt/${KEY}`, encryptBody(n))),
            ...(n === 1024
              ? [
                  {
                    label: 'node:http + node:crypto encrypt (peer)',
                    role: 'peer',
                    front: 'http1',
                    server: 'node-crypto',
                    port: 'http',
                    request: post(`/v1/encrypt/${KEY}`, encryptBody(n)),
                  } satisfies Endpoint,
                ]
              : []),
          ],
        }),
  ),
  ...SIZES.map(
    ([n, name]): Factory =>
      async (env) => {
        const base: Scenario = {
          id: `direct-decrypt-${name.replace(' ', '')}`,
          title: `direct decrypt ${name} (uWS, HTTP/1.1, native)`,
          group: 'direct',
          adr604: true,
          ci: n === 1024,
          endpoints: [],
        };
        if (!env.has('gw-native')) return { ...base, skip: env.missing('gw-native') };
        const ct = await ciphertextFrom(env, 'gw-native', 'uws', 'http1', n);
        return skipIfMissing(env, {
          ...base,
          endpoints: uwsPair(`gateway decrypt ${name}`, 'gw-native', post(`/v1/decrypt/${KEY}`, decryptBody(ct))),
        });
      },
  ),
  async (env) =>
    skipIfMissing(env, {
      id: 'direct-batch16-encrypt',
      title: 'direct encrypt, batch of 16 fields × 64 B (uWS, native)',
      group: 'direct',
      adr604: true,
      ci: false,
      endpoints: uwsPair(
        'gateway batch encrypt 16 × 64 B',
        'gw-native',
        post(`/v1/encrypt/${KEY}`, batchEncryptBody(16, 64)),
      ),
    }),
  async (env) =>
    skipIfMissing(env, {
      id: 'direct-datakey',
      title: 'data-key creation, 256-bit, plaintext + wrapped (uWS, native)',
      group: 'direct',
      adr604: true,
      ci: false,
      endpoints: uwsPair('gateway datakey', 'gw-native', post(`/v1/datakey/plaintext/${KEY}`, DATAKEY_BODY)),
    }),
];

const backends: Factory[] = [
  async (env) =>
    skipIfMissing(env, {
      id: 'backend-node-encrypt-1KB',
      title: 'direct encrypt 1 KB, node:crypto fallback backend (uWS)',
      group: 'backend',
      adr604: true,
      ci: false,
      endpoints: uwsPair(
        'gateway (node:crypto backend) encrypt 1 KB',
        'gw-node',
        post(`/v1/encrypt/${KEY}`, encryptBody(1024)),
      ),
    }),
  async (env) =>
    skipIfMissing(env, {
      id: 'backend-pkcs11-encrypt-1KB',
      title: 'direct encrypt 1 KB, pkcs11 backend (HSM offload, SoftHSM2 token; uWS)',
      group: 'backend',
      adr604: true,
      ci: false,
      endpoints: [
        ...uwsPair('gateway (pkcs11 backend) encrypt 1 KB', 'gw-pkcs11', post(`/v1/encrypt/${KEY}`, encryptBody(1024))),
        {
          label: 'gateway (pkcs11 backend, hsm.inline) encrypt 1 KB (peer)',
          role: 'peer',
          front: 'http1',
          server: 'gw-pkcs11-inline',
          port: 'uws',
          request: post(`/v1/encrypt/${KEY}`, encryptBody(1024)),
        },
        {
          label: 'gateway (native backend) encrypt 1 KB (peer)',
          role: 'peer',
          front: 'http1',
          server: 'gw-native',
          port: 'uws',
          request: post(`/v1/encrypt/${KEY}`, encryptBody(1024)),
        },
      ],
    }),
];

const h2: Factory[] = [
  async (env) =>
    skipIfMissing(env, {
      id: 'h2-mtls-encrypt-1KB',
      title: 'direct encrypt 1 KB over h2 with mTLS (node:http2, native)',
      group: 'h2',
      adr604: true,
      ci: false,
      endpoints: h2Pair('gateway h2 mTLS encrypt 1 KB', post(`/v1/encrypt/${KEY}`, encryptBody(1024), JSON_HEADERS)),
    }),
  async (env) => {
    const base: Scenario = {
      id: 'h2-mtls-decrypt-1KB',
      title: 'direct decrypt 1 KB over h2 with mTLS (node:http2, native)',
      group: 'h2',
      adr604: true,
      ci: false,
      endpoints: [],
    };
    if (!env.has('gw-native') || !env.has('bare-h2'))
      return skipIfMissing(env, { ...base, endpoints: h2Pair('', post('/', '')) });
    const ct = await ciphertextFrom(env, 'gw-native', 'h2Tls', 'h2-mtls', 1024);
    return {
      ...base,
      endpoints: h2Pair('gateway h2 mTLS decrypt 1 KB', post(`/v1/decrypt/${KEY}`, decryptBody(ct), JSON_HEADERS)),
    };
  },
];

/**
 * The proxy's scenarios: endpoint 0 the gateway proxy (on `port`: `native`,
 * its native front, for the routes that front serves; `http`, its uWS front,
 * for the others), 1 the sample app called
 * directly, 2 nginx, 3 the hand-written node:http encrypting proxy (`nodeSpec`:
 * its request, when it differs from the gateway's), 4 the bare uWS forwarder
 * (./bare-forward.ts: the floor of a JavaScript proxy on the gateway's front,
 * no crypto, the same bytes forwarded), 5 the native floor (bench/native-floor:
 * a Rust epoll forwarder; on POST it scans and seals the five fields with the
 * native module's code, on GET it only forwards).
 */
function proxyTrio(
  label: string,
  spec: RequestSpec,
  nodeSpec: RequestSpec = spec,
  port: 'native' | 'http' = 'native',
): Endpoint[] {
  const uwsFront: Endpoint[] =
    port === 'native'
      ? [
          {
            label: 'the same gateway through its uWS front (JavaScript plane, peer)',
            role: 'peer',
            front: 'http1',
            server: 'proxy',
            port: 'http',
            request: spec,
          },
        ]
      : [];
  return [
    { label, role: 'gateway', front: 'http1', server: 'proxy', port, request: spec },
    {
      label: 'sample app direct (baseline)',
      role: 'baseline',
      front: 'http1',
      server: 'sample-app',
      port: 'http',
      request: spec,
    },
    {
      label: 'nginx reverse proxy → app (peer)',
      role: 'peer',
      front: 'http1',
      server: 'nginx',
      port: 'http',
      request: spec,
    },
    {
      label: 'hand-written node:http encrypting proxy (peer)',
      role: 'peer',
      front: 'http1',
      server: 'node-proxy',
      port: 'http',
      request: nodeSpec,
    },
    {
      label: 'bare uWS forwarder, no crypto (floor)',
      role: 'peer',
      front: 'http1',
      server: 'bare-forward',
      port: 'http',
      request: spec,
    },
    {
      label:
        spec.method === 'POST'
          ? 'native epoll forwarder + native scan and seal (floor of a native data plane)'
          : 'native epoll forwarder, forwards only (floor of a native data plane)',
      role: 'peer',
      front: 'http1',
      server: 'native-floor',
      port: 'http',
      request: spec,
    },
    ...uwsFront,
  ];
}

const ORDER_HEADERS = { ...JSON_HEADERS, 'x-tenant-id': 'bench' };

/** `endpoints` plus the same gateway proxy writing its audit log (fsync on): one record per request. */
function withAuditPeer(endpoints: Endpoint[]): Endpoint[] {
  const gateway = endpoints[0] as Endpoint;
  return [
    ...endpoints,
    // Through the uWS front: the native front serves no route an audit log records.
    {
      ...gateway,
      label: 'gateway proxy with its audit log, fsync (peer)',
      role: 'peer',
      server: 'proxy-audit',
      port: 'http',
    },
  ];
}

const proxy: Factory[] = [
  async (env) =>
    skipIfMissing(env, {
      id: 'proxy-request-encrypt',
      title: `proxy POST /orders, 2 KB JSON, ${ORDER_FIELDS.length} fields encrypted on the way in`,
      group: 'proxy',
      adr604: false,
      ci: false,
      endpoints: withAuditPeer(
        proxyTrio('gateway proxy (encrypt request)', {
          method: 'POST',
          path: '/orders',
          headers: ORDER_HEADERS,
          body: JSON.stringify(sampleOrder('bench-post')),
          status: 201,
        }),
      ),
    }),
  async (env) =>
    skipIfMissing(env, {
      id: 'proxy-response-decrypt',
      title: `proxy GET /orders/:id, 2 KB JSON, ${ORDER_FIELDS.length} fields decrypted on the way out`,
      group: 'proxy',
      adr604: false,
      ci: false,
      endpoints: proxyTrio(
        'gateway proxy (decrypt response)',
        {
          method: 'GET',
          path: `/orders/${STORED_ORDER}`,
          headers: { 'x-tenant-id': 'bench', [CALLER_HEADER]: READER },
        },
        { method: 'GET', path: `/orders/${STORED_NODE_ORDER}`, headers: {} },
        // Response decryption is the pipeline's (decision 0001, step 4): the uWS front serves it.
        'http',
      ),
    }),
  async (env) =>
    skipIfMissing(env, {
      id: 'proxy-passthrough',
      title: 'proxy pass-through route (no field rules), GET 2 KB JSON',
      group: 'proxy',
      adr604: false,
      ci: false,
      endpoints: proxyTrio('gateway proxy (pass-through)', {
        method: 'GET',
        path: '/static/1',
        headers: { 'x-tenant-id': 'bench' },
      }),
    }),
];

const peers: Factory[] = [
  async (env) =>
    skipIfMissing(env, {
      id: 'nginx-passthrough',
      title: 'nginx reverse proxy → sample app, GET 2 KB JSON (the proxy baseline on its own)',
      group: 'peers',
      adr604: false,
      ci: false,
      endpoints: [
        {
          label: 'nginx reverse proxy → app',
          role: 'gateway',
          front: 'http1',
          server: 'nginx',
          port: 'http',
          request: { method: 'GET', path: '/static/1', headers: {} },
        },
        {
          label: 'sample app direct (baseline)',
          role: 'baseline',
          front: 'http1',
          server: 'sample-app',
          port: 'http',
          request: { method: 'GET', path: '/static/1', headers: {} },
        },
      ],
    }),
];

/** Every scenario factory, in report order. */
export const SCENARIOS: readonly Factory[] = [...direct, ...backends, ...h2, ...proxy, ...peers];

/** Servers the scenarios use (for start-up; `proxy` is started only when ./proxy.ts finds it). */
export const CI_SERVERS = ['gw-native', 'bare-uws'] as const;
