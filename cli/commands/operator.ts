/**
 * `kcm operator …`: the operator's side of the root of trust, over the Core's
 * admin API (see cli/admin-client.ts for --addr/--cert/--key/--ca), plus the
 * share holder's local tools (holder-keygen, share-open) that never talk to
 * the Core: a holder opens a sealed share on their own machine.
 */
import { accessSync, chmodSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  generateHolderKeypair,
  holderKeyFromBase64,
  holderKeyToBase64,
  openSealedShare,
} from '../../core/src/seal/shamir/open-share.ts';
import { ADMIN_FLAGS, ADMIN_USAGE, type AdminTarget, adminTarget, adminCall as call } from '../admin-client.ts';
import { flag, type ParsedArgs, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

const USAGE = `kcm operator <subcommand> ${ADMIN_USAGE}
  status                                    state, cluster, unseal progress, IVK version
  init [--threshold M] [--shares N] [--holder-key PUBFILE]… [--out DIR] [--abandon-pending]
                                            initialise; shares are shown (or written to DIR) once
  init-confirm                              confirm the init once every holder has their share
  unseal SHARE | --share-file F | --sealed-file F --holder-secret-key F | --reset
  seal                                      wipe every key from the Core's memory
  rekey --threshold M --shares N --holder-key PUBFILE…
                                            new sealed shares for the same MasterKey (four eyes: creates
                                            an approval request; the result holds the sealed shares)
  ivk [list | rotate | revoke N | delete N]
  holder-keygen --out PREFIX                X25519 key pair for a share holder (PREFIX.pub, PREFIX.key)
  share-open --sealed-file F --holder-secret-key F
                                            print the signed share inside a sealed share (local only)`;

function readTrimmed(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

function shareFrom(p: ParsedArgs): string {
  const sealed = flag(p, 'sealed-file');
  if (sealed) {
    const keyFile = flag(p, 'holder-secret-key');
    if (!keyFile) throw new Error('--sealed-file needs --holder-secret-key');
    return openSealedShare(readTrimmed(sealed), holderKeyFromBase64(readTrimmed(keyFile), 'holder secret key'));
  }
  const file = flag(p, 'share-file');
  const share = file ? readTrimmed(file) : p.positional[1];
  if (!share) throw new Error('give a share, --share-file or --sealed-file');
  return share;
}

async function init(addr: AdminTarget, p: ParsedArgs): Promise<void> {
  const holderPublicKeys = (p.flags.get('holder-key') ?? []).map(readTrimmed);
  const outDir = flag(p, 'out');
  // Shares are shown once: make sure they can be written before the Core makes them.
  if (outDir) accessSync(outDir, constants.W_OK);
  const threshold = flag(p, 'threshold');
  const shares = flag(p, 'shares');
  const result = (await call(addr, 'POST', '/v1/sys/init', {
    ...(threshold ? { threshold: Number(threshold) } : {}),
    ...(shares ? { shares: Number(shares) } : {}),
    ...(holderPublicKeys.length > 0 ? { holderPublicKeys } : {}),
    ...(p.flags.has('abandon-pending') ? { abandonPending: true } : {}),
  })) as { clusterId: string; shares: { index: number; payload: string }[]; manifest: unknown };
  if (outDir) {
    try {
      for (const s of result.shares) {
        const file = join(outDir, `share-${s.index}.${holderPublicKeys.length > 0 ? 'json' : 'txt'}`);
        writeFileSync(file, `${s.payload}\n`, { mode: 0o600 });
      }
      writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(result.manifest, null, 2)}\n`);
      console.log(
        `initialised ${result.clusterId}: ${result.shares.length} shares and manifest.json written to ${outDir}`,
      );
      return;
    } catch (err) {
      console.error(
        `could not write to ${outDir} (${err instanceof Error ? err.message : String(err)}): printing the shares instead`,
      );
    }
  }
  console.log(`initialised ${result.clusterId}. Shares (shown once; give each to its holder):`);
  for (const s of result.shares) console.log(`  share ${s.index}: ${s.payload}`);
}

export const operatorCommand: Command = {
  name: 'operator',
  summary: 'Operate the Core: init, unseal, seal, status, IVK rotation; share-holder tools',
  usage: USAGE,
  async run(args) {
    const p = parseArgs(args, {
      ...ADMIN_FLAGS,
      threshold: true,
      shares: true,
      'holder-key': true,
      out: true,
      'share-file': true,
      'sealed-file': true,
      'holder-secret-key': true,
      reset: false,
      'abandon-pending': false,
    });
    const addr = adminTarget(p);
    const [sub, arg] = p.positional;
    const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));
    switch (sub) {
      case 'status':
        print(await call(addr, 'GET', '/v1/sys/status'));
        return 0;
      case 'init':
        await init(addr, p);
        return 0;
      case 'init-confirm':
        print(await call(addr, 'POST', '/v1/sys/init/confirm', {}));
        return 0;
      case 'unseal':
        print(
          await call(addr, 'POST', '/v1/sys/unseal', p.flags.has('reset') ? { reset: true } : { share: shareFrom(p) }),
        );
        return 0;
      case 'seal':
        print(await call(addr, 'POST', '/v1/sys/seal', {}));
        return 0;
      case 'rekey': {
        const holderPublicKeys = (p.flags.get('holder-key') ?? []).map(readTrimmed);
        print(
          await call(addr, 'POST', '/v1/sys/shares/rekey', {
            threshold: Number(flag(p, 'threshold')),
            shares: Number(flag(p, 'shares')),
            holderPublicKeys,
          }),
        );
        return 0;
      }
      case 'ivk': {
        const action = arg ?? 'list';
        const n = p.positional[2];
        if (action === 'list') print(await call(addr, 'GET', '/v1/ivk'));
        else if (action === 'rotate') print(await call(addr, 'POST', '/v1/ivk/rotate', {}));
        else if (action === 'revoke' && n)
          print(await call(addr, 'POST', `/v1/ivk/${encodeURIComponent(n)}/revoke`, {}));
        else if (action === 'delete' && n) print(await call(addr, 'DELETE', `/v1/ivk/${encodeURIComponent(n)}`, {}));
        else throw new Error(`usage: kcm operator ivk [list | rotate | revoke N | delete N]`);
        return 0;
      }
      case 'holder-keygen': {
        const out = flag(p, 'out');
        if (!out) throw new Error('--out PREFIX is required');
        const kp = generateHolderKeypair();
        writeFileSync(`${out}.pub`, `${holderKeyToBase64(kp.publicKey)}\n`);
        writeFileSync(`${out}.key`, `${holderKeyToBase64(kp.secretKey)}\n`, { mode: 0o600 });
        chmodSync(`${out}.key`, 0o600);
        kp.secretKey.fill(0);
        console.log(`wrote ${out}.pub (give it to the operator) and ${out}.key (keep it secret)`);
        return 0;
      }
      case 'share-open':
        console.log(shareFrom(p));
        return 0;
      default:
        console.error(USAGE);
        return 2;
    }
  },
};
