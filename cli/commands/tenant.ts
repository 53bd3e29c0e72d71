/**
 * `kcm tenant …` and `kcm key …`: tenants, their L1 links and their L3
 * service keys over the Core's admin API (see cli/admin-client.ts for the
 * connection flags). Revoke and L1 unlink create an approval request (ADR-404):
 * the command prints it, and `kcm approval approve ID` by a second operator
 * executes it. Output is the API's JSON.
 */
import { ADMIN_FLAGS, ADMIN_USAGE, adminCall, adminTarget } from '../admin-client.ts';
import { flag, type ParsedArgs, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

const TENANT_USAGE = `kcm tenant <subcommand> ${ADMIN_USAGE}
  list
  create ID [--mode managed|byok|hyok] [--l1-provider NAME --l1-key KEYID [--l1-region R]]
  show ID
  suspend ID [--grace-days 30|60|90] [--reason TEXT]
  resume ID
  revoke ID [--reason TEXT]        kill switch; creates an approval request (four eyes)
  l1-link ID --l1-provider NAME --l1-key KEYID [--l1-region R] [--mode byok|hyok]
  l1-unlink ID                     creates an approval request (four eyes)
  l1-probe ID
  prewarm ID [--service NAME]…`;

const KEY_USAGE = `kcm key <subcommand> ${ADMIN_USAGE}
  list TENANT
  create TENANT SERVICE [--rotate-days D] [--budget N] [--retention-days D]
  show TENANT SERVICE
  rotate TENANT SERVICE
  min-decrypt TENANT SERVICE VERSION   versions below VERSION stop decrypting
  revoke TENANT SERVICE VERSION        revoke one (non-active) version`;

const DAY_MS = 86_400_000;
const enc = encodeURIComponent;

function need(v: string | undefined, usage: string): string {
  if (!v) throw new Error(`usage: ${usage}`);
  return v;
}

function l1Of(p: ParsedArgs): { provider: string; keyId: string; region?: string } | undefined {
  const provider = flag(p, 'l1-provider');
  const keyId = flag(p, 'l1-key');
  if (!provider && !keyId) return undefined;
  if (!provider || !keyId) throw new Error('--l1-provider and --l1-key go together');
  const region = flag(p, 'l1-region');
  return { provider, keyId, ...(region ? { region } : {}) };
}

function numberFlag(p: ParsedArgs, name: string, scale = 1): number | undefined {
  const v = flag(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return Math.round(n * scale);
}

async function tenant(p: ParsedArgs): Promise<unknown> {
  const t = adminTarget(p);
  const [sub, id] = p.positional;
  const path = (rest = '') => `/v1/tenants/${enc(need(id, `kcm tenant ${sub} ID`))}${rest}`;
  const reason = flag(p, 'reason');
  switch (sub) {
    case 'list':
      return adminCall(t, 'GET', '/v1/tenants');
    case 'create': {
      const l1 = l1Of(p);
      const mode = flag(p, 'mode');
      return adminCall(t, 'POST', '/v1/tenants', {
        id: need(id, 'kcm tenant create ID'),
        ...(mode ? { keyMode: mode } : {}),
        ...(l1 ? { l1 } : {}),
      });
    }
    case 'show':
      return adminCall(t, 'GET', path());
    case 'suspend': {
      const grace = numberFlag(p, 'grace-days');
      return adminCall(t, 'POST', path('/suspend'), {
        ...(grace ? { graceDays: grace } : {}),
        ...(reason ? { reason } : {}),
      });
    }
    case 'resume':
      return adminCall(t, 'POST', path('/resume'), {});
    case 'revoke':
      return adminCall(t, 'POST', path('/revoke'), reason ? { reason } : {});
    case 'l1-link': {
      const l1 = l1Of(p);
      if (!l1) throw new Error('usage: kcm tenant l1-link ID --l1-provider NAME --l1-key KEYID [--mode byok|hyok]');
      return adminCall(t, 'POST', path('/l1'), { l1, keyMode: flag(p, 'mode') ?? 'byok' });
    }
    case 'l1-unlink':
      return adminCall(t, 'POST', path('/l1/unlink'), {});
    case 'l1-probe':
      return adminCall(t, 'POST', path('/l1/probe'), {});
    case 'prewarm': {
      const services = p.flags.get('service');
      return adminCall(t, 'POST', path('/prewarm'), services ? { services } : {});
    }
    default:
      throw new Error(TENANT_USAGE);
  }
}

async function key(p: ParsedArgs): Promise<unknown> {
  const t = adminTarget(p);
  const [sub, tenantId, service, version] = p.positional;
  const base = () => `/v1/tenants/${enc(need(tenantId, `kcm key ${sub} TENANT …`))}/keys`;
  const svc = () => `${base()}/${enc(need(service, `kcm key ${sub} TENANT SERVICE`))}`;
  const ver = () => Number(need(version, `kcm key ${sub} TENANT SERVICE VERSION`));
  switch (sub) {
    case 'list':
      return adminCall(t, 'GET', base());
    case 'create': {
      const rotatePeriodMs = numberFlag(p, 'rotate-days', DAY_MS);
      const encryptionBudget = numberFlag(p, 'budget');
      const expiredRetentionMs = numberFlag(p, 'retention-days', DAY_MS);
      const settings = {
        ...(rotatePeriodMs ? { rotatePeriodMs } : {}),
        ...(encryptionBudget ? { encryptionBudget } : {}),
        ...(expiredRetentionMs ? { expiredRetentionMs } : {}),
      };
      return adminCall(t, 'POST', base(), {
        service: need(service, 'kcm key create TENANT SERVICE'),
        ...(Object.keys(settings).length > 0 ? { settings } : {}),
      });
    }
    case 'show':
      return adminCall(t, 'GET', svc());
    case 'rotate':
      return adminCall(t, 'POST', `${svc()}/rotate`, {});
    case 'min-decrypt':
      return adminCall(t, 'POST', `${svc()}/min-decrypt`, { version: ver() });
    case 'revoke':
      return adminCall(t, 'POST', `${svc()}/versions/${ver()}/revoke`, {});
    default:
      throw new Error(KEY_USAGE);
  }
}

const TENANT_FLAGS = {
  ...ADMIN_FLAGS,
  mode: true,
  'l1-provider': true,
  'l1-key': true,
  'l1-region': true,
  'grace-days': true,
  reason: true,
  service: true,
} as const;

export const tenantCommand: Command = {
  name: 'tenant',
  summary: 'Tenants: create, suspend, resume, revoke (kill switch, four eyes), L1 links, prewarm',
  usage: TENANT_USAGE,
  async run(args) {
    console.log(JSON.stringify(await tenant(parseArgs(args, TENANT_FLAGS)), null, 2));
    return 0;
  },
};

export const keyCommand: Command = {
  name: 'key',
  summary: 'L3 service keys: create, rotate, raise the minimum decryption version, revoke a version',
  usage: KEY_USAGE,
  async run(args) {
    const p = parseArgs(args, { ...ADMIN_FLAGS, 'rotate-days': true, budget: true, 'retention-days': true });
    console.log(JSON.stringify(await key(p), null, 2));
    return 0;
  },
};
