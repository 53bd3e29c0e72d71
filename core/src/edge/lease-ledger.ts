/**
 * What the Core has leased to whom (operator's lease inspection): the last
 * lease of each (edge, tenant, service) with its versions and expiry. Held
 * in memory only — leases live at most an hour (ADR-602) and a restarted
 * Core has issued none — and bounded: the oldest entries go first past
 * `max`. Expired entries are dropped when read. Never holds key material.
 */
export interface LeaseEntry {
  edgeId: string;
  tenant: string;
  service: string;
  activeVersion: number | null;
  decryptOnlyVersions: number[];
  issuedAt: number;
  expiresAt: number;
}

export class LeaseLedger {
  readonly #entries = new Map<string, LeaseEntry>();

  constructor(
    private readonly now: () => number,
    private readonly max = 100_000,
  ) {}

  record(e: LeaseEntry): void {
    const key = `${e.edgeId}\0${e.tenant}\0${e.service}`;
    this.#entries.delete(key);
    this.#entries.set(key, e);
    if (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** Live leases, optionally of one tenant, ordered by tenant, service, edge. */
  list(tenant?: string): LeaseEntry[] {
    const now = this.now();
    const out: LeaseEntry[] = [];
    for (const [k, e] of this.#entries) {
      if (e.expiresAt <= now) this.#entries.delete(k);
      else if (tenant === undefined || e.tenant === tenant) out.push(e);
    }
    const key = (e: LeaseEntry) => `${e.tenant}\0${e.service}\0${e.edgeId}`;
    return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  }

  /** Drops the tenant's entries (revocation: nothing of it is leased any more). */
  dropTenant(tenant: string): void {
    for (const [k, e] of this.#entries) if (e.tenant === tenant) this.#entries.delete(k);
  }
}
