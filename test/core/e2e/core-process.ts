/**
 * End-to-end helpers: the Crypto Core as a real child process (`node
 * bin/kcm.mjs core`, or clock-core.ts for a shifted clock), spoken to over
 * real HTTP on a loopback port the kernel picks (KCM_LISTEN=127.0.0.1:0; the
 * URL is read from the child's stdout). Every child and temp dir is tracked
 * and removed by {@link cleanupAll}, which each test file runs in `after`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KCM = fileURLToPath(new URL('../../../bin/kcm.mjs', import.meta.url));
export const CLOCK_CORE = fileURLToPath(new URL('./clock-core.ts', import.meta.url));
/** tsx's loader by URL: the children run with a temp dir as cwd, where a bare `tsx` would not resolve. */
const TSX = import.meta.resolve('tsx');

const children = new Set<CoreChild>();
const dirs: string[] = [];

export function tempDir(prefix = 'okcm-e2e-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** SIGKILLs every child still running and removes every temp dir. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.kill()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The environment without any KCM_* variable of the test runner's, plus `env` (undefined deletes). */
export function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KCM_')) out[k] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

export interface StartOptions {
  dataDir: string;
  /** Written to dataDir/config.json and passed as KCM_CONFIG. */
  config?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  /** Run clock-core.ts (startCore with `now` shifted by KCM_TEST_CLOCK_OFFSET_MS) instead of `kcm core`. */
  clock?: boolean;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the tests
  body: any;
}

export class CoreChild {
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  url = '';
  /** Milliseconds from spawn to the admin API listening. */
  startMs = 0;
  #out = '';
  #done: Exit | undefined;

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => (this.#out += d));
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (this.#out += d));
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        this.#done = { code, signal };
        children.delete(this);
        resolve(this.#done);
      }),
    );
  }

  static async start(o: StartOptions): Promise<CoreChild> {
    const env: Record<string, string | undefined> = {
      KCM_DATA_DIR: o.dataDir,
      KCM_LISTEN: '127.0.0.1:0',
      KCM_TEST_HOOKS: '1',
      // Plain HTTP on loopback: development mode only (mTLS otherwise).
      KCM_DEV: '1',
      ...o.env,
    };
    if (o.config) {
      const file = join(o.dataDir, 'config.json');
      writeFileSync(file, JSON.stringify(o.config));
      env.KCM_CONFIG = file;
    }
    const args = o.clock ? ['--import', TSX, CLOCK_CORE] : [KCM, 'core'];
    const t0 = performance.now();
    const child = new CoreChild(
      spawn(process.execPath, args, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], cwd: o.dataDir }),
    );
    children.add(child);
    const deadline = Date.now() + 30_000;
    while (!child.url) {
      const m = /admin API (https?:\/\/\S+)/.exec(child.#out);
      if (m) child.url = m[1] as string;
      else if (child.#done)
        throw new Error(`the Core exited (${JSON.stringify(child.#done)}) before listening:\n${child.#out}`);
      else if (Date.now() > deadline) {
        await child.kill();
        throw new Error(`the Core did not listen within 30 s:\n${child.#out}`);
      } else await sleep(10);
    }
    child.startMs = performance.now() - t0;
    return child;
  }

  /** Everything the child wrote to stdout and stderr so far. */
  get output(): string {
    return this.#out;
  }

  get running(): boolean {
    return this.#done === undefined;
  }

  api(method: string, path: string, body?: unknown): Promise<Reply> {
    return httpJson(`${this.url}${path}`, method, body);
  }

  async status(): Promise<Reply['body']> {
    const r = await this.api('GET', '/v1/sys/status');
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    return r.body;
  }

  /** Polls the status until `pred` holds; throws (with the child's output) after `timeoutMs`. */
  async waitForStatus(pred: (s: Reply['body']) => boolean, timeoutMs = 10_000): Promise<Reply['body']> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`status never matched; last ${JSON.stringify(s)}\n${this.#out}`);
      await sleep(20);
    }
  }

  /** SIGTERM; resolves with the exit and how long it took (SIGKILL and throw after `timeoutMs`). */
  async stop(timeoutMs = 5_000): Promise<Exit & { ms: number }> {
    const t0 = performance.now();
    this.proc.kill('SIGTERM');
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const r = await Promise.race([this.exited, timer]);
    if (r === 'timeout') {
      await this.kill();
      throw new Error(`the Core did not exit within ${timeoutMs} ms of SIGTERM:\n${this.#out}`);
    }
    return { ...r, ms: performance.now() - t0 };
  }

  async kill(): Promise<Exit> {
    if (this.#done) return this.#done;
    this.proc.kill('SIGKILL');
    return this.exited;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One JSON request without keep-alive (no pooled socket outlives a child). */
export function httpJson(url: string, method: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method,
        agent: false,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
          } catch {
            reject(new Error(`${method} ${url}: not JSON (${res.statusCode}): ${text.slice(0, 200)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Runs `node bin/kcm.mjs …args`; resolves with exit code and output (never rejects). */
export function kcm(args: string[], env: Record<string, string | undefined> = {}) {
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, [KCM, ...args], { env: childEnv(env), timeout: 30_000 }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, out, err });
    });
  });
}

/** A copy of `items` in a random order that differs from the original (Fisher-Yates, retried). */
export function shuffled<T>(items: readonly T[]): T[] {
  for (;;) {
    const a = [...items];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [a[i], a[j]] = [a[j] as T, a[i] as T];
    }
    if (items.length < 2 || a.some((x, i) => x !== items[i])) return a;
  }
}

/** Submits shares one by one; returns the last reply and the ms the last (M-th) submission took. */
export async function submitShares(
  core: CoreChild,
  shares: readonly string[],
): Promise<{ last: Reply; lastMs: number }> {
  let last: Reply = { status: 0, body: null };
  let lastMs = 0;
  for (const share of shares) {
    const t0 = performance.now();
    last = await core.api('POST', '/v1/sys/unseal', { share });
    lastMs = performance.now() - t0;
    if (last.status !== 200) throw new Error(`unseal share refused: ${last.status} ${JSON.stringify(last.body)}`);
  }
  return { last, lastMs };
}
