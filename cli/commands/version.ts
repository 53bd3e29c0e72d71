import { readFileSync } from 'node:fs';
import type { Command } from '../main.ts';

/** The version in package.json: the one source of the product version. */
export function productVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the OpenKCM version',
  usage: 'kcm version',
  run() {
    console.log(`openkcm ${productVersion()} (node ${process.versions.node}, openssl ${process.versions.openssl})`);
    return 0;
  },
};
