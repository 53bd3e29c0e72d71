/** The test-only key export stays test-only: no product code imports it. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true })
    .map(String)
    .filter((f) => /\.(ts|mjs|js)$/.test(f))
    .map((f) => join(dir, f));
}

it('no file outside test/ imports native/ts/insecure-export.ts', () => {
  const product = ['native', 'common', 'core', 'gateway', 'cli', 'bench', 'bin', 'scripts'].flatMap(sources);
  assert.ok(product.length > 50, `only ${product.length} source files found`);
  const importers = product.filter(
    (f) =>
      !f.endsWith(join('native', 'ts', 'insecure-export.ts')) &&
      /(from|import\()\s*['"][^'"]*insecure-export/.test(readFileSync(join(ROOT, f), 'utf8')),
  );
  assert.deepEqual(
    importers.map((f) => relative(ROOT, join(ROOT, f))),
    [],
  );
});
