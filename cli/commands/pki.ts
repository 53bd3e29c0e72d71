/**
 * `kcm pki …`: a development CA and its certificates (common/src/pki/, the
 * openssl CLI). `init` makes the CA, the Core's server certificate, one
 * gateway certificate (server + client) and two operator certificates, plus
 * an identity policy naming them; `issue` adds one more certificate. For
 * development and tests: production uses certificates from its own CA.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isTenantId } from '../../common/src/format/ids.ts';
import { type CertKind, createCa, type IssuedCert, issueCert, loadCa } from '../../common/src/pki/index.ts';
import { flag, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

const USAGE = `kcm pki <subcommand> --dir DIR
  init [--force] [--tenant T] [--days N]     CA, core (server), gateway-1 (server+client), operator-1 and
                                            operator-2 (client) certificates, and DIR/authz.json
  issue --kind client|server|both --cn NAME [--san DNS:x|IP:x|URI:x|email:x]… [--days N] [--name FILE]
                                            one more certificate from DIR's CA`;

function days(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 36_500) throw new Error('--days must be an integer from 1 to 36500');
  return n;
}

function describe(c: IssuedCert): string {
  const sans = c.cert.subjectAltName ? `, ${c.cert.subjectAltName}` : '';
  return `  ${c.name.padEnd(10)} ${c.kind.padEnd(6)} ${c.certFile} (key ${c.keyFile}) CN=${c.cert.subject.replace(/^CN=/, '')}${sans}, until ${new Date(c.cert.validTo).toISOString().slice(0, 10)}`;
}

function init(dir: string, force: boolean, tenant: string, d: number | undefined): number {
  if (existsSync(join(dir, 'ca.crt')) && !force) {
    console.error(`kcm pki init: ${join(dir, 'ca.crt')} exists; pass --force to replace the CA and every certificate`);
    return 1;
  }
  if (!isTenantId(tenant)) throw new Error('--tenant must be 1-40 of A-Z a-z 0-9 - . _ ~');
  const ca = createCa(dir);
  const life = d === undefined ? {} : { days: d };
  const made = [
    issueCert(ca, { kind: 'server', cn: 'core', name: 'core', ...life }),
    issueCert(ca, {
      kind: 'both',
      cn: 'gateway-1',
      name: 'gateway-1',
      sans: ['DNS:localhost', 'IP:127.0.0.1', 'URI:spiffe://openkcm.local/edge/gateway-1'],
      ...life,
    }),
    issueCert(ca, { kind: 'client', cn: 'operator-1', name: 'operator-1', ...life }),
    issueCert(ca, { kind: 'client', cn: 'operator-2', name: 'operator-2', ...life }),
  ];
  const policy = {
    version: 1,
    description: `made by kcm pki init for the CA in ${dir}`,
    identities: [
      { name: 'operator-1', match: { cn: 'operator-1' }, roles: ['operator'], tenants: '*' },
      { name: 'operator-2', match: { cn: 'operator-2' }, roles: ['operator'], tenants: '*' },
      {
        name: 'gateway-1',
        match: { uri: 'spiffe://openkcm.local/edge/gateway-1' },
        roles: ['edge'],
        tenants: [tenant],
      },
    ],
  };
  const policyFile = join(dir, 'authz.json');
  writeFileSync(policyFile, `${JSON.stringify(policy, null, 2)}\n`);
  console.log(`CA        ${ca.certFile} (key ${ca.keyFile}, keep it private)`);
  for (const c of made) console.log(describe(c));
  console.log(`policy    ${policyFile} (operators: all tenants; gateway-1: tenant ${tenant})`);
  console.log('');
  console.log('Core config: "listen": { "tls": { "certFile": core.crt, "keyFile": core.key, "caFile": ca.crt } },');
  console.log(`             "authzPolicy": "${policyFile}"`);
  console.log(
    'Operators:   kcm operator status --cert operator-1.crt --key operator-1.key --ca ca.crt --addr https://localhost:8200',
  );
  return 0;
}

export const pkiCommand: Command = {
  name: 'pki',
  summary: 'Development CA and certificates for Core, gateways and operators (openssl)',
  usage: USAGE,
  run(args) {
    const p = parseArgs(args, {
      dir: true,
      force: false,
      tenant: true,
      days: true,
      kind: true,
      cn: true,
      san: true,
      name: true,
    });
    const sub = p.positional[0];
    const dirFlag = flag(p, 'dir');
    if (!sub || !dirFlag) {
      console.error(`Usage: ${USAGE}`);
      return 2;
    }
    const dir = resolve(dirFlag);
    if (sub === 'init')
      return init(dir, flag(p, 'force') === 'true', flag(p, 'tenant') ?? 'dev', days(flag(p, 'days')));
    if (sub === 'issue') {
      const kind = flag(p, 'kind');
      const cn = flag(p, 'cn');
      if (kind !== 'client' && kind !== 'server' && kind !== 'both')
        throw new Error('--kind must be client, server or both');
      if (!cn) throw new Error('--cn is required');
      const d = days(flag(p, 'days'));
      const name = flag(p, 'name');
      const sans = p.flags.get('san');
      const c = issueCert(loadCa(dir), {
        kind: kind as CertKind,
        cn,
        ...(sans ? { sans } : {}),
        ...(d === undefined ? {} : { days: d }),
        ...(name ? { name } : {}),
      });
      console.log(describe(c));
      console.log(`  sha256 ${c.fingerprint256}`);
      return 0;
    }
    console.error(`kcm pki: unknown subcommand "${sub}"\n\nUsage: ${USAGE}`);
    return 2;
  },
};
