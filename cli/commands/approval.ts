/**
 * `kcm approval …`: four-eyes approval requests (ADR-404) over the Core's
 * admin API. The caller's identity is the client certificate (--cert/--key or
 * KCM_CLIENT_CERT/KCM_CLIENT_KEY): proposing and approving as two people
 * means two certificates. Prints the request as JSON; exits 1 when an
 * approval completed the quorum but the operation FAILED.
 */
import { readFileSync } from 'node:fs';
import { ADMIN_FLAGS, ADMIN_USAGE, adminCall, adminTarget } from '../admin-client.ts';
import { flag, type ParsedArgs, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

const USAGE = `kcm approval <subcommand> ${ADMIN_USAGE}
  propose OPERATION [--params JSON | --params-file F] [--ttl-days D]
                                  ask for OPERATION (e.g. tenant.revoke --params '{"tenant":"acme"}')
  approve ID                      approve; the operation runs when the quorum is met
  reject ID --reason TEXT         veto the request
  cancel ID [--reason TEXT]       withdraw your own request (or any, with the permission)
  list [--state STATE]            pending requests and the operations (or all in STATE)
  show ID                         one request`;

const DAY_MS = 86_400_000;

function paramsOf(p: ParsedArgs): unknown {
  const file = flag(p, 'params-file');
  const text = file ? readFileSync(file, 'utf8') : flag(p, 'params');
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('--params must be JSON');
  }
}

function ttlOf(p: ParsedArgs): { ttlMs?: number } {
  const days = flag(p, 'ttl-days');
  if (days === undefined) return {};
  const n = Number(days);
  if (!Number.isFinite(n) || n <= 0) throw new Error('--ttl-days must be a positive number');
  return { ttlMs: Math.round(n * DAY_MS) };
}

function need(id: string | undefined, sub: string): string {
  if (!id) throw new Error(`usage: kcm approval ${sub} ID`);
  return encodeURIComponent(id);
}

export const approvalCommand: Command = {
  name: 'approval',
  summary: 'Four-eyes approvals: propose, approve, reject, cancel, list, show high-risk operations',
  usage: USAGE,
  async run(args) {
    const p = parseArgs(args, {
      ...ADMIN_FLAGS,
      params: true,
      'params-file': true,
      'ttl-days': true,
      reason: true,
      state: true,
    });
    const t = adminTarget(p);
    const [sub, arg] = p.positional;
    const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));
    const reason = flag(p, 'reason');
    switch (sub) {
      case 'propose':
        if (!arg) throw new Error('usage: kcm approval propose OPERATION [--params JSON]');
        print(await adminCall(t, 'POST', '/v1/approvals', { operation: arg, params: paramsOf(p), ...ttlOf(p) }));
        return 0;
      case 'approve': {
        const out = (await adminCall(t, 'POST', `/v1/approvals/${need(arg, sub)}/approve`, {})) as { state?: string };
        print(out);
        return out.state === 'FAILED' ? 1 : 0;
      }
      case 'reject':
        if (!reason) throw new Error('usage: kcm approval reject ID --reason TEXT');
        print(await adminCall(t, 'POST', `/v1/approvals/${need(arg, sub)}/reject`, { reason }));
        return 0;
      case 'cancel':
        print(await adminCall(t, 'POST', `/v1/approvals/${need(arg, sub)}/cancel`, reason ? { reason } : {}));
        return 0;
      case 'list': {
        const state = flag(p, 'state');
        print(await adminCall(t, 'GET', state ? `/v1/approvals/state/${encodeURIComponent(state)}` : '/v1/approvals'));
        return 0;
      }
      case 'show':
        print(await adminCall(t, 'GET', `/v1/approvals/${need(arg, sub)}`));
        return 0;
      default:
        console.error(USAGE);
        return 2;
    }
  },
};
