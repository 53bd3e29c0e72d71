/**
 * A small AWS KMS stand-in for tests: node:http on 127.0.0.1:0 speaking the
 * AWS JSON 1.1 protocol of KMS (`X-Amz-Target: TrentService.<Op>`, content
 * type application/x-amz-json-1.1, blobs in base64) for GenerateDataKey,
 * Encrypt, Decrypt and DescribeKey, so the real `@aws-sdk/client-kms` runs
 * against it unchanged (endpoint = server.endpoint).
 *
 * Crypto is real AES-256-GCM (node:crypto is fine here: this file stands in
 * for AWS). Each key has one or more key materials (rotateKey adds one); the
 * ciphertext blob is
 *   0x01 ‖ u8 len ‖ key id ‖ material id (32 bytes) ‖ iv (12) ‖ ct ‖ tag (16)
 * and the AAD is the blob header ‖ the canonical (sorted) JSON of the
 * EncryptionContext, so a context mismatch or any flipped byte fails as
 * InvalidCiphertextException, like KMS.
 *
 * SigV4 signatures are not verified, but an `Authorization` header is
 * required. Errors use the AWS JSON shape `{"__type","message"}` with KMS's
 * statuses (400, 500 for KMSInternalException) so the SDK maps them to its
 * exception classes. Fault injection: throttleNext, failNext, setOutage,
 * setLatency, denyAccess; request counting in `requests` / `countOf`.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type KmsKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

interface Key {
  id: string;
  arn: string;
  state: KmsKeyState;
  denied: boolean;
  created: number;
  /** Material id (64 hex) → 32-byte AES key; the last inserted is current. */
  materials: Map<string, Buffer>;
  current: string;
}

class KmsFault extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const ACCOUNT = '111122223333';
const MAX_BODY = 64 * 1024;

export class KmsTestServer {
  readonly region: string;
  /** Every request received (faulted ones too), in order. */
  readonly requests: { target: string; body: Record<string, unknown> }[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #keys = new Map<string, Key>();
  readonly #aliases = new Map<string, string>();
  #throttle = 0;
  #fail: { n: number; status: number } = { n: 0, status: 500 };
  #outage = false;
  #latencyMs = 0;

  private constructor(region: string) {
    this.region = region;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (s) => {
      if (this.#outage) return void s.destroy();
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  /** Starts a server on 127.0.0.1 and a free port. */
  static async start(opts: { region?: string } = {}): Promise<KmsTestServer> {
    const s = new KmsTestServer(opts.region ?? 'eu-central-1');
    await new Promise<void>((resolve, reject) => {
      s.#server.once('error', reject);
      s.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return s;
  }

  get endpoint(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** A new enabled symmetric key (optionally with alias `alias/<name>`). */
  createKey(opts: { alias?: string } = {}): { keyId: string; arn: string } {
    const id = randomUUID();
    const arn = `arn:aws:kms:${this.region}:${ACCOUNT}:key/${id}`;
    const material = randomBytes(32).toString('hex');
    const materials = new Map([[material, randomBytes(32)]]);
    this.#keys.set(id, {
      id,
      arn,
      state: 'Enabled',
      denied: false,
      created: Date.now() / 1000,
      materials,
      current: material,
    });
    if (opts.alias) this.#aliases.set(`alias/${opts.alias}`, id);
    return { keyId: id, arn };
  }

  /** Adds new key material (on-demand rotation); returns its id. Old material still decrypts. */
  rotateKey(keyId: string): string {
    const key = this.#mustKey(keyId);
    key.current = randomBytes(32).toString('hex');
    key.materials.set(key.current, randomBytes(32));
    return key.current;
  }

  setKeyState(keyId: string, state: KmsKeyState): void {
    this.#mustKey(keyId).state = state;
  }

  /** While true, every use of the key answers AccessDeniedException (a key policy without our principal). */
  denyAccess(keyId: string, denied = true): void {
    this.#mustKey(keyId).denied = denied;
  }

  /** The next `n` requests answer 400 ThrottlingException. */
  throttleNext(n: number): void {
    this.#throttle = n;
  }

  /** The next `n` requests answer `status` (500 KMSInternalException, 503 ServiceUnavailableException, …). */
  failNext(n: number, status = 500): void {
    this.#fail = { n, status };
  }

  /** While on, new connections are destroyed and requests on open ones get their socket destroyed. */
  setOutage(on: boolean): void {
    this.#outage = on;
    if (on) for (const s of this.#sockets) s.destroy();
  }

  /** Delays every answer by `ms` (client timeouts). */
  setLatency(ms: number): void {
    this.#latencyMs = ms;
  }

  /** Requests received for one operation (e.g. 'Decrypt'), or all when omitted. */
  countOf(operation?: string): number {
    if (!operation) return this.requests.length;
    return this.requests.filter((r) => r.target === `TrentService.${operation}`).length;
  }

  /** Stops listening and destroys every open connection. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (this.#outage) {
      this.requests.push({ target, body: {} });
      return void req.socket.destroy();
    }
    let body: Record<string, unknown> = {};
    try {
      const raw = await readBody(req);
      try {
        body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        throw new KmsFault('SerializationException', 'request body is not JSON');
      } finally {
        this.requests.push({ target, body });
      }
      if (this.#latencyMs > 0) await new Promise((r) => setTimeout(r, this.#latencyMs));
      if (this.#outage) return void req.socket.destroy();
      if (req.method !== 'POST') throw new KmsFault('UnknownOperationException', 'POST required');
      if (!req.headers.authorization)
        throw new KmsFault('MissingAuthenticationTokenException', 'Missing Authentication Token');
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
        throw new KmsFault('SerializationException', 'content-type must be application/x-amz-json-1.1');
      }
      this.#injectFaults();
      const op = target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '';
      send(res, 200, this.#dispatch(op, body));
    } catch (err) {
      const f = err instanceof KmsFault ? err : new KmsFault('KMSInternalException', String(err), 500);
      send(res, f.status, { __type: f.type, message: f.message }, f.type);
    }
  }

  #injectFaults(): void {
    if (this.#throttle > 0) {
      this.#throttle--;
      throw new KmsFault('ThrottlingException', 'Rate exceeded');
    }
    if (this.#fail.n > 0) {
      this.#fail.n--;
      const s = this.#fail.status;
      const type = s === 500 ? 'KMSInternalException' : s === 503 ? 'ServiceUnavailableException' : 'InternalFailure';
      throw new KmsFault(type, `injected failure ${s}`, s);
    }
  }

  #dispatch(op: string, body: Record<string, unknown>): Record<string, unknown> {
    switch (op) {
      case 'GenerateDataKey':
        return this.#generateDataKey(body);
      case 'Encrypt':
        return this.#encryptOp(body);
      case 'Decrypt':
        return this.#decryptOp(body);
      case 'DescribeKey':
        return this.#describeKey(body);
      default:
        throw new KmsFault('UnknownOperationException', `unsupported operation "${op}"`);
    }
  }

  #generateDataKey(b: Record<string, unknown>): Record<string, unknown> {
    const plaintext = randomBytes(dataKeyLength(b.KeySpec, b.NumberOfBytes));
    return { ...this.#seal(b, plaintext), Plaintext: plaintext.toString('base64') };
  }

  #encryptOp(b: Record<string, unknown>): Record<string, unknown> {
    const plaintext = blobField(b.Plaintext, 'Plaintext');
    if (plaintext.length > 4096) throw new KmsFault('ValidationException', 'Plaintext: 1..4096 bytes');
    return { ...this.#seal(b, plaintext), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  }

  /** Encrypts under the current material of the request's KeyId, bound to its EncryptionContext. */
  #seal(b: Record<string, unknown>, plaintext: Buffer): Record<string, unknown> {
    const key = this.#usableKey(b.KeyId);
    const id = Buffer.from(key.id, 'ascii');
    const header = Buffer.concat([Buffer.from([1, id.length]), id, Buffer.from(key.current, 'hex')]);
    const iv = randomBytes(12);
    const material = key.materials.get(key.current) as Buffer;
    const c = createCipheriv('aes-256-gcm', material, iv).setAAD(Buffer.concat([header, context(b.EncryptionContext)]));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const blob = Buffer.concat([header, iv, ct, c.getAuthTag()]);
    return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, KeyMaterialId: key.current };
  }

  #decryptOp(b: Record<string, unknown>): Record<string, unknown> {
    const blob = blobField(b.CiphertextBlob, 'CiphertextBlob');
    const parsed = parseBlob(blob);
    if (!parsed) throw new KmsFault('InvalidCiphertextException', '');
    if (b.KeyId !== undefined) {
      const asked = this.#resolve(b.KeyId);
      if (asked.id !== parsed.keyId) {
        throw new KmsFault(
          'IncorrectKeyException',
          'The key ID in the request does not identify a CMK that can perform this operation.',
        );
      }
    }
    const key = this.#usableKey(parsed.keyId);
    const material = key.materials.get(parsed.materialId);
    if (!material) throw new KmsFault('InvalidCiphertextException', '');
    const aad = Buffer.concat([parsed.header, context(b.EncryptionContext)]);
    let plaintext: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', material, parsed.iv).setAAD(aad).setAuthTag(parsed.tag);
      plaintext = Buffer.concat([d.update(parsed.ct), d.final()]);
    } catch {
      throw new KmsFault('InvalidCiphertextException', '');
    }
    return {
      KeyId: key.arn,
      Plaintext: plaintext.toString('base64'),
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      KeyMaterialId: parsed.materialId,
    };
  }

  #describeKey(b: Record<string, unknown>): Record<string, unknown> {
    const key = this.#resolve(b.KeyId);
    return {
      KeyMetadata: {
        AWSAccountId: ACCOUNT,
        KeyId: key.id,
        Arn: key.arn,
        CreationDate: key.created,
        Enabled: key.state === 'Enabled',
        KeyState: key.state,
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeySpec: 'SYMMETRIC_DEFAULT',
        Origin: 'AWS_KMS',
        KeyManager: 'CUSTOMER',
        EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
        CurrentKeyMaterialId: key.current,
      },
    };
  }

  /** The key named by an id, ARN, alias or alias ARN; NotFoundException otherwise. */
  #resolve(keyId: unknown): Key {
    if (typeof keyId !== 'string' || keyId === '') throw new KmsFault('ValidationException', 'KeyId is required');
    let name = keyId;
    const arn = /^arn:aws:kms:([^:]+):(\d+):(key\/.+|alias\/.+)$/.exec(keyId);
    if (arn) {
      if (arn[1] !== this.region) throw new KmsFault('NotFoundException', `Invalid arn ${arn[1]}`);
      name = arn[3] as string;
      if (name.startsWith('key/')) name = name.slice(4);
    }
    const id = name.startsWith('alias/') ? this.#aliases.get(name) : name;
    const key = id === undefined ? undefined : this.#keys.get(id);
    if (!key)
      throw new KmsFault(
        'NotFoundException',
        name.startsWith('alias/') ? `Alias ${keyId} is not found.` : `Key '${keyId}' does not exist`,
      );
    return key;
  }

  /** The key, if the caller may use it for cryptography now. */
  #usableKey(keyId: unknown): Key {
    const key = this.#resolve(keyId);
    if (key.denied) {
      throw new KmsFault('AccessDeniedException', `User is not authorized to perform kms operations on ${key.arn}`);
    }
    if (key.state === 'Disabled') throw new KmsFault('DisabledException', `${key.arn} is disabled.`);
    if (key.state === 'PendingDeletion')
      throw new KmsFault('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    return key;
  }

  #mustKey(keyId: string): Key {
    const key = this.#keys.get(keyId) ?? this.#keys.get(this.#aliases.get(keyId) ?? '');
    if (!key) throw new Error(`KmsTestServer: no key ${keyId}`);
    return key;
  }
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': randomUUID(),
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new KmsFault('ValidationException', 'request too large', 413);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Canonical bytes of an EncryptionContext: JSON of its entries sorted by key ('' when absent). */
function context(ec: unknown): Buffer {
  if (ec === undefined || ec === null) return Buffer.alloc(0);
  if (typeof ec !== 'object' || Array.isArray(ec))
    throw new KmsFault('ValidationException', 'EncryptionContext must be a map');
  const entries = Object.entries(ec as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [, v] of entries)
    if (typeof v !== 'string') throw new KmsFault('ValidationException', 'EncryptionContext values are strings');
  return entries.length ? Buffer.from(JSON.stringify(entries), 'utf8') : Buffer.alloc(0);
}

function dataKeyLength(spec: unknown, n: unknown): number {
  if ((spec === undefined) === (n === undefined)) {
    throw new KmsFault('ValidationException', 'Specify exactly one of KeySpec and NumberOfBytes');
  }
  if (spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  if (Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1024) return n as number;
  throw new KmsFault('ValidationException', 'invalid KeySpec or NumberOfBytes');
}

function blobField(v: unknown, name: string): Buffer {
  if (typeof v !== 'string' || v === '') throw new KmsFault('ValidationException', `${name} is required`);
  return Buffer.from(v, 'base64');
}

function parseBlob(b: Buffer) {
  if (b.length < 2 || b[0] !== 1) return undefined;
  const idLen = b[1] as number;
  const headerLen = 2 + idLen + 32;
  if (b.length < headerLen + 12 + 16) return undefined;
  return {
    header: b.subarray(0, headerLen),
    keyId: b.subarray(2, 2 + idLen).toString('ascii'),
    materialId: b.subarray(2 + idLen, headerLen).toString('hex'),
    iv: b.subarray(headerLen, headerLen + 12),
    ct: b.subarray(headerLen + 12, b.length - 16),
    tag: b.subarray(b.length - 16),
  };
}
