/**
 * The gateway's audit stages (ADR-901/902, ARCHITECTURE.md "Audit"): every
 * request to a route that uses keys (the direct crypto API; proxy routes with
 * field rules) appends a record to the tamper-evident audit log
 * (common/src/audit/audit-log.ts) BEFORE the result of the key use is
 * released:
 * - `forward-audit`, after the request transform: on a proxy route whose
 *   request fields were just encrypted, the record of that key use is
 *   durable before the ciphertext goes upstream. If it cannot be written the
 *   request is refused (503) without reaching the upstream, so a client may
 *   retry it safely.
 * - `audit`, after the response transform and before `respond`: every other
 *   request's record (the direct API, response fields decrypted, refusals),
 *   and a second record for a forwarded request when something after the
 *   forward used keys or failed (its outcome and reasons); nothing more for
 *   a forwarded request that then went well.
 *
 * Contract:
 * - A route is audited when it names an action (`Route.audit`, e.g.
 *   `gateway.decrypt`); health, metrics, readiness, 404 / 405 and
 *   pass-through proxy routes (no key used) are not.
 * - Refusals are audited too (401, 403, 413, 422, …): outcome `failure`,
 *   reason = the error code, then the precise reasons the stages kept
 *   (ctx.auditReasons, e.g. `$.card.number: wrong_tenant`), which the client
 *   never sees. A request the client abandoned is audited too, as a
 *   `failure` (`client went away`).
 * - The record holds who (the caller's certificate CN, `peer <address>` for
 *   a trusted peer, `peer <address> for <identity> (roles …)` when a trusted
 *   peer names the reader of a decrypting proxy route through the caller
 *   headers, `unidentified <address>` when there is no caller), what
 *   (action; resource = the L3 versions the request used, `keys <id> v<n>,
 *   …` (what an encrypt sealed with, what a decrypt opened, both for a
 *   rewrap), else `key <id>` when the request named one, else the route
 *   name; a proxy route's is its name `proxy <policy> <method> <pattern>`,
 *   followed by `: keys …`: what its request fields were sealed with (the
 *   forward record) or its response fields opened with), the tenant, the
 *   correlation id (left out, and said so in the reason, when the record
 *   format cannot hold it or the log's redaction guard would replace it), the
 *   outcome and the reason: never a body, a value, a header or a key.
 * - Fail closed: when the record cannot be written (the log answers
 *   `audit_unavailable`), the answer is replaced by 503 `audit_unavailable`:
 *   no plaintext, ciphertext or data key leaves without its record.
 * - Without an audit log the stage does nothing (no promise, no allocation).
 */
import type { AuditEvent } from '../../../common/src/audit/audit-event.ts';
import { isRecordableCorrelationId } from '../../../common/src/audit/record-format.ts';
import { looksLikeSecret } from '../../../common/src/audit/redaction-guard.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { isTenantId } from '../../../common/src/format/ids.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { errorResponse } from '../pipeline/responses.ts';
import type { Stage } from '../pipeline/stages.ts';

/** The action of proxy routes with field rules. */
export const PROXY_ACTION = 'gateway.proxy';

/** Notes that `ctx` used these L3 versions (the record's resource names them, each once, as `<key id> v<version>`). */
export function noteKeys(ctx: RequestContext, refs: readonly { keyId: string; keyVersion: number }[]): void {
  if (refs.length === 0) return;
  const list = ctx.auditKeys ?? [];
  ctx.auditKeys = list;
  for (const r of refs) {
    const k = `${r.keyId} v${r.keyVersion}`;
    if (!list.includes(k)) list.push(k);
  }
}

/** Where audit records go: AuditLog's group-commit append (durable when the promise resolves). */
export interface AuditAppender {
  append(e: AuditEvent): Promise<void>;
}

/** The caller as the record names it (the forms of the file comment: CN, `peer …`, `peer … for …`, `unidentified …`). */
function actorOf(ctx: RequestContext): string | undefined {
  const c = ctx.caller;
  if (!c) return ctx.peer.address ? `unidentified ${ctx.peer.address}` : undefined;
  if (c.kind === 'certificate') return c.id;
  const r = ctx.auditReader;
  if (!r || (r.identity === undefined && r.roles.length === 0)) return `peer ${c.id}`;
  const roles = r.roles.length > 0 ? ` (roles ${r.roles.join(', ')})` : '';
  return `peer ${c.id} for ${r.identity ?? 'no identity'}${roles}`;
}

/** The record of `ctx` for `action` (see the file comment); exported for tests. */
export function auditEventOf(ctx: RequestContext, action: string): AuditEvent {
  const failed = ctx.error !== undefined;
  // An answer that did not reach its client is a failure too, whatever the stages did.
  const e: AuditEvent = { action, outcome: failed || ctx.aborted ? 'failure' : 'success' };
  const reasons = failed ? [ctx.error?.code ?? 'error'] : [];
  if (ctx.auditReasons) reasons.push(...ctx.auditReasons);
  if (ctx.aborted) reasons.push('client went away');
  // The gateway accepts a few more correlation ids than the record format (`~`, up to 128 chars): those are named in the reason.
  // (or one the log's redaction guard would replace and alert on: a client could make every record alert).
  if (isRecordableCorrelationId(ctx.correlationId) && !looksLikeSecret(ctx.correlationId)) {
    e.correlationId = ctx.correlationId;
  } else reasons.push('correlation id not recordable');
  const actor = actorOf(ctx);
  if (actor) e.actor = actor;
  const keys = ctx.auditKeys && ctx.auditKeys.length > 0 ? `keys ${ctx.auditKeys.join(', ')}` : undefined;
  const resource =
    action === PROXY_ACTION
      ? keys
        ? `${ctx.routeName}: ${keys}`
        : ctx.routeName
      : (keys ?? (ctx.keyId !== undefined ? `key ${ctx.keyId}` : ctx.routeName));
  if (resource) e.resource = resource;
  if (ctx.tenant !== undefined && isTenantId(ctx.tenant)) e.tenant = ctx.tenant;
  // Printable text, cut to the format's lengths, by the log itself (record-format.ts).
  if (reasons.length > 0) e.reason = reasons.join('; ');
  return e;
}

/**
 * The `forward-audit` stage over `log` (see the file comment): runs only on
 * a proxy route whose request transform noted keys. Never throws: a record
 * that cannot be written answers 503 `audit_unavailable` (the upstream stage
 * is then skipped). Once written, the keys and reasons it holds are cleared,
 * so the `audit` stage records only what comes after.
 */
export function forwardAuditStage(log: AuditAppender | undefined): Stage {
  return {
    name: 'forward-audit',
    run(ctx) {
      if (!log || ctx.route?.audit !== PROXY_ACTION || !ctx.auditKeys?.length) return;
      return append(log, ctx, PROXY_ACTION, () => {
        ctx.auditForwarded = true;
        if (ctx.auditKeys) ctx.auditKeys.length = 0;
        if (ctx.auditReasons) ctx.auditReasons.length = 0;
      });
    },
  };
}

/**
 * The `audit` stage over `log` (see the file comment). Never throws: a
 * record that cannot be written turns the answer into 503 `audit_unavailable`.
 */
export function auditStage(log: AuditAppender | undefined): Stage {
  return {
    name: 'audit',
    run(ctx) {
      const action = ctx.route?.audit;
      if (!log || action === undefined) return;
      // A forwarded request's record is written; a second one only says what came after.
      if (ctx.auditForwarded && !ctx.auditKeys?.length && !ctx.auditReasons?.length && !ctx.error && !ctx.aborted)
        return;
      return append(log, ctx, action);
    },
  };
}

function append(
  log: AuditAppender,
  ctx: RequestContext,
  action: string,
  written?: () => void,
): Promise<void> | undefined {
  let event: AuditEvent;
  try {
    event = auditEventOf(ctx, action);
  } catch {
    return refuse(ctx);
  }
  return log.append(event).then(written, () => refuse(ctx));
}

/**
 * The answer becomes 503 `audit_unavailable` (whatever it was: nothing leaves
 * unrecorded). After a forward the message says the upstream already had the
 * request, so a client can tell it from the refusal before the forward,
 * which is safe to retry.
 */
function refuse(ctx: RequestContext): undefined {
  const err = new KcmError(
    'audit_unavailable',
    ctx.forwarded ? 'the request reached the upstream; its answer is withheld' : undefined,
  );
  ctx.error = err;
  ctx.response = errorResponse(err);
  return undefined;
}
