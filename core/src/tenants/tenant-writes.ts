/**
 * One tenant state change in one transaction: the tenant row, the mirrored
 * state of its L2 rows (REVOKED also erases their IVK-wrapped binding), on
 * revocation every L3 version, and the key event — then, after the commit,
 * the event goes to the bus.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { Unsigned } from '../store/integrity-store.ts';
import type { KeyEventType, L2State, TenantRecord } from '../store/records.ts';
import type { HierarchyContext } from './hierarchy-context.ts';
import { type TenantInfo, tenantInfo } from './tenant-state.ts';

/**
 * Applies `mutate` to the stored tenant `id` (null = nothing to change) and
 * writes what follows from it. The tenant's cached metadata (its record and
 * every service entry) is dropped after the transaction, whatever its
 * outcome, before the bus is told or the result returned. Returns the
 * tenant as stored afterwards. Throws `tenant_not_found`, whatever `mutate`
 * throws, store errors.
 */
export async function writeTenant(
  c: HierarchyContext,
  id: string,
  event: KeyEventType,
  mutate: (t: Unsigned<TenantRecord>) => Unsigned<TenantRecord> | null,
): Promise<TenantInfo> {
  const now = c.d.now();
  const [stored, events] = await writeTx(c, id, event, mutate, now).finally(() => c.meta.invalidateTenant(id));
  c.notify(events);
  return tenantInfo(stored);
}

function writeTx(
  c: HierarchyContext,
  id: string,
  event: KeyEventType,
  mutate: (t: Unsigned<TenantRecord>) => Unsigned<TenantRecord> | null,
  now: number,
) {
  return c.d.store.transaction(async (tx) => {
    const cur = await tx.getTenant(id);
    if (!cur) throw new KcmError('tenant_not_found', id);
    const { mac: _m, ...rest } = cur;
    const next = mutate(rest);
    if (next === null) return [cur, []] as const;
    await tx.updateTenant(next);
    const l2State: L2State = next.state;
    for (const l2 of await tx.listL2(id)) {
      const { mac: _l, ...row } = l2;
      const erase = l2State === 'REVOKED' ? { ivkVersion: 0, wrappedActive: Buffer.alloc(0) } : {};
      if (row.state !== l2State || l2State === 'REVOKED') await tx.updateL2({ ...row, state: l2State, ...erase });
    }
    if (next.state === 'REVOKED') {
      for (const l3 of await tx.listL3ByTenant(id)) {
        if (l3.state === 'REVOKED') continue;
        const { mac: _k, ...row } = l3;
        await tx.updateL3({ ...row, state: 'REVOKED', revokedAt: now, rotateAfter: null });
      }
    }
    const e = await tx.appendEvent({ type: event, tenant: id, service: null, version: null, createdAt: now });
    return [{ ...next, mac: Buffer.alloc(0) }, [e]] as const;
  });
}
