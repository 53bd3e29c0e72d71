/** SqliteStore: the store contract on temp files, plus SQLite-specific durability and file handling. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../../core/src/store/migrations.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import { SqliteStore } from '../../../core/src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { runStoreContract } from './contract.ts';
import { ivkRecord } from './fixtures.ts';
import { rejectsWith, type StoreHarness } from './harness.ts';
import { runIntegrityContract } from './integrity-contract.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'okcm-sqlite-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function makeHarness(): Promise<StoreHarness> {
  const dir = tempDir();
  const path = join(dir, 'kcm.db');
  const handles: Store[] = [];
  const open = (migrations = MIGRATIONS): SqliteStore => {
    const st = SqliteStore.open({ path, migrations });
    handles.push(st);
    return st;
  };
  const store = open();
  await store.migrate();
  return {
    store,
    reopen: async (o) => open(o?.migrations),
    cleanup: async () => {
      for (const st of handles) await st.close();
      rmSync(dir, { recursive: true, force: true });
    },
    sql: async (statements) => {
      const db = new Database(path);
      try {
        db.exec(statements);
      } finally {
        db.close();
      }
    },
  };
}

runStoreContract('sqlite', makeHarness);
runIntegrityContract('sqlite', makeHarness);

const CHILD = fileURLToPath(new URL('./sqlite-kill-child.ts', import.meta.url));

/** Runs the child; resolves with the versions it reported committed and its exit signal. */
function runChild(
  path: string,
  n: number,
  killAfter?: number,
): Promise<{ committed: number[]; signal: string | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, String(n)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const committed: number[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const v = Number(line.replace('committed ', ''));
    committed.push(v);
    if (v === killAfter) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ committed, signal }));
  });
}

describe('SqliteStore durability and files', () => {
  it('keeps every commit of a process SIGKILLed right after its last COMMIT', async () => {
    const path = join(tempDir(), 'kill.db');
    const { committed, signal } = await runChild(path, 50);
    assert.equal(signal, 'SIGKILL');
    assert.equal(committed.length, 50);
    const store = await openStore({ kind: 'sqlite', path });
    try {
      const ivks = await store.listIvks();
      assert.deepEqual(
        ivks.map((r) => r.version),
        committed,
      );
      assert.deepEqual(ivks.at(-1), ivkRecord(50, { wraps: 50 }));
    } finally {
      await store.close();
    }
  });

  it('keeps every acknowledged commit when SIGKILLed mid-stream from outside', async () => {
    const path = join(tempDir(), 'kill-mid.db');
    const { committed, signal } = await runChild(path, 100_000, 200);
    assert.equal(signal, 'SIGKILL');
    const store = await openStore({ kind: 'sqlite', path });
    try {
      const have = new Set((await store.listIvks()).map((r) => r.version));
      for (const v of committed) assert.ok(have.has(v), `acknowledged version ${v} lost`);
      assert.ok(have.size >= 200 && have.size < 100_000);
    } finally {
      await store.close();
    }
  });

  it('creates missing parent directories and a 0600 file', async () => {
    const path = join(tempDir(), 'a', 'b', 'kcm.db');
    const store = await openStore({ kind: 'sqlite', path });
    await store.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
  });

  it('refuses a path that is not a file (invalid_config) and a file that is not SQLite (internal_error)', async () => {
    for (const path of ['', ':memory:', 'file:x.db?mode=memory']) {
      await rejectsWith(openStore({ kind: 'sqlite', path }), 'invalid_config');
    }
    const junk = join(tempDir(), 'junk.db');
    writeFileSync(junk, Buffer.alloc(4096, 0x41));
    await rejectsWith(openStore({ kind: 'sqlite', path: junk }), 'internal_error');
  });

  it('reports store_unavailable when the directory cannot be created', async () => {
    const file = join(tempDir(), 'plain-file');
    writeFileSync(file, 'x');
    await rejectsWith(openStore({ kind: 'sqlite', path: join(file, 'sub', 'kcm.db') }), 'store_unavailable');
  });
});
