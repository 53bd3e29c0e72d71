/**
 * What an alert is (ADR-903), shared by the alerter and the services that
 * raise alerts (the audit log, the Core, the gateway). Alerts carry no
 * secrets: a summary names what happened and its error code, never key
 * bytes, plaintext or share values.
 */

/**
 * Known kinds: unauthorized attempts, revocations, quorum events, audit
 * failures and seal/unseal. Any other kind must match `[a-z][a-z0-9._-]{0,63}`.
 */
export type AlertKind =
  | 'auth.unauthorized'
  | 'key.revoked'
  | 'tenant.revoked'
  | 'quorum.event'
  | 'audit.failure'
  | 'audit.redacted'
  | 'core.seal'
  | 'core.unseal'
  | (string & {});

export type AlertSeverity = 'info' | 'warning' | 'critical';

export interface AlertInput {
  kind: AlertKind;
  severity: AlertSeverity;
  /** One line, at most 500 characters, no secrets. */
  summary: string;
  tenant?: string;
  actor?: string;
}

/** Anything that takes alerts; `alert` never throws and never blocks on the network. */
export interface AlertSink {
  alert(a: AlertInput): void;
}
