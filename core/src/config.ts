/**
 * Core configuration: a JSON file (KCM_CONFIG or --config) with environment
 * overrides, validated once with errors (`invalid_config`) that name the field.
 *
 *   {
 *     "devMode": false,
 *     "region": "eu-1",
 *     "dataDir": "./data",
 *     "store": { "kind": "sqlite", "path": "./data/core.db" }
 *            | { "kind": "postgres", "connectionString": "postgres://…", "schema": "kcm" },
 *     "seal": { "type": "shamir" } | { "type": "awskms", … } | { "type": "pkcs11", … } | { "type": "dev", "keyFile": … },
 *     "listen": { "host": "127.0.0.1", "port": 8200, "tls": { "certFile", "keyFile", "caFile" } },
 *     "authzPolicy": "./policies/authz.json",
 *     "ivk": { "rotationPeriodMs", "graceMs", "maxWraps", "hardExpiryMs" },
 *     "autoUnseal": { "attempts": 5, "baseMs": 200, "maxMs": 5000 },
 *     "tickMs": 60000,
 *     "l1Providers": { "<name>": { "type": "awskms" | "pkcs11" | "dev", … } },
 *     "keys": { "l2CacheMax", "l3CacheMax", "service": { "rotatePeriodMs", "encryptionBudget", "expiredRetentionMs" }, "rotationBatch", "l1ProbeMs", "l1ProbeBatch", "metadataCacheMs" },
 *     "auditLog": "./data/audit.jsonl",
 *     "audit": { "keyFile", "checkpointEvery", "checkpointIntervalMs", "fsync", "otlpUrl" },
 *     "alerts": { "webhookUrl", "perMinute" },
 *     "quorum": { "required": 2, "defaultTtlDays": 7, "maxTtlDays": 30 },
 *     "edge": { … }  (core/src/edge/edge-config.ts)
 *   }
 *
 * Environment: KCM_DEV=1, KCM_REGION, KCM_DATA_DIR, KCM_LISTEN=host:port,
 * KCM_STORE_URL (postgres://… or a SQLite file path), KCM_AUTHZ_POLICY (identity policy file).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KcmError } from '../../common/src/errors.ts';
import { isKeyId } from '../../common/src/format/ids.ts';
import type { AdminListenConfig } from './api/admin-server.ts';
import { type AuditSettings, auditSettings } from './audit/audit-settings.ts';
import { type EdgeConfig, edgeConfig } from './edge/edge-config.ts';
import { type IvkPolicy, ivkPolicy } from './ivk/ivk-policy.ts';
import { type KeyHierarchyConfig, keyHierarchyConfig } from './keys/l3/key-settings.ts';
import { l1ProvidersConfig } from './l1/l1-registry.ts';
import { type ApprovalPolicy, approvalPolicy } from './quorum/approval-policy.ts';
import type { SealConfig } from './seal/open-seal-provider.ts';
import type { StoreConfig } from './store/open-store.ts';

export interface CoreConfig {
  devMode: boolean;
  region: string;
  dataDir: string;
  store: StoreConfig;
  seal: { type: 'shamir' } | SealConfig;
  listen: AdminListenConfig;
  ivk: IvkPolicy;
  autoUnseal: { attempts: number; baseMs: number; maxMs: number };
  /** How often IVK triggers, L3 rotations and L1 probes are checked. */
  tickMs: number;
  /** Tenants' L1 provider instances by name (core/src/l1/l1-registry.ts). */
  l1Providers?: Record<string, SealConfig>;
  /** Key hierarchy settings (core/src/keys/l3/key-settings.ts). */
  keys?: KeyHierarchyConfig;
  auditLog: string;
  /** Audit signing key, checkpoints, OTLP export and alert webhook (core/src/audit/audit-settings.ts). */
  audit?: AuditSettings;
  /** Identity → role/tenant policy (policies/README.md); required when the admin API uses TLS. */
  authzPolicy?: string;
  /** The edge API (core/src/edge/edge-config.ts); absent = not served. */
  edge?: EdgeConfig;
  /** Four-eyes approvals (ADR-404, core/src/quorum/approval-policy.ts). */
  quorum: ApprovalPolicy;
}

type Json = Record<string, unknown>;

function fail(field: string, rule: string): never {
  throw new KcmError('invalid_config', `${field} ${rule}`);
}

function obj(v: unknown, field: string): Json {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  return v as Json;
}

function int(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    fail(field, `must be an integer from ${min} to ${max}`);
  return v;
}

function parseListen(v: unknown, env: NodeJS.ProcessEnv): AdminListenConfig {
  const l = obj(v, 'listen');
  let host = typeof l.host === 'string' ? l.host : '127.0.0.1';
  let port = int(l.port, 'listen.port', 0, 65535, 8200);
  if (env.KCM_LISTEN) {
    const m = /^(.+):(\d+)$/.exec(env.KCM_LISTEN);
    if (!m) fail('KCM_LISTEN', 'must be host:port');
    host = (m[1] as string).replace(/^\[|\]$/g, '');
    port = int(Number(m[2]), 'KCM_LISTEN port', 0, 65535, 8200);
  }
  const tls = l.tls === undefined ? undefined : obj(l.tls, 'listen.tls');
  if (tls && (typeof tls.certFile !== 'string' || typeof tls.keyFile !== 'string'))
    fail('listen.tls', 'needs certFile and keyFile');
  if (tls && tls.caFile !== undefined && typeof tls.caFile !== 'string') fail('listen.tls.caFile', 'must be a path');
  return { host, port, ...(tls ? { tls: tls as unknown as NonNullable<AdminListenConfig['tls']> } : {}) };
}

function parseStore(v: unknown, env: NodeJS.ProcessEnv, dataDir: string): StoreConfig {
  const url = env.KCM_STORE_URL;
  if (url) {
    return /^postgres(ql)?:\/\//.test(url)
      ? { kind: 'postgres', connectionString: url }
      : { kind: 'sqlite', path: resolve(url) };
  }
  const s = obj(v, 'store');
  if (s.kind === undefined || s.kind === 'sqlite') {
    return { kind: 'sqlite', path: resolve(typeof s.path === 'string' ? s.path : join(dataDir, 'core.db')) };
  }
  if (s.kind === 'postgres') {
    if (typeof s.connectionString !== 'string') fail('store.connectionString', 'is required for postgres');
    return {
      kind: 'postgres',
      connectionString: s.connectionString,
      ...(typeof s.schema === 'string' ? { schema: s.schema } : {}),
    };
  }
  fail('store.kind', 'must be "sqlite" or "postgres"');
}

function authzPolicy(v: unknown, env: NodeJS.ProcessEnv): { authzPolicy?: string } {
  const p = env.KCM_AUTHZ_POLICY ?? v;
  if (p === undefined) return {};
  if (typeof p !== 'string' || p.length === 0) fail('authzPolicy', 'must be a path to a policy file');
  return { authzPolicy: resolve(p) };
}

/** Builds and validates the configuration from a parsed file object and the environment. */
export function coreConfig(file: Json = {}, env: NodeJS.ProcessEnv = process.env): CoreConfig {
  const devMode = env.KCM_DEV === '1' || file.devMode === true;
  const region = env.KCM_REGION ?? (typeof file.region === 'string' ? file.region : 'local');
  if (!isKeyId(region)) fail('region', 'must be 1-64 characters of A-Z a-z 0-9 - . _ ~');
  const dataDir = resolve(env.KCM_DATA_DIR ?? (typeof file.dataDir === 'string' ? file.dataDir : './data'));
  const seal = obj(file.seal, 'seal');
  if (seal.type !== undefined && !['shamir', 'awskms', 'pkcs11', 'dev'].includes(seal.type as string)) {
    fail('seal.type', 'must be shamir, awskms, pkcs11 or dev');
  }
  if (seal.type === 'dev' && !devMode) fail('seal.type', '"dev" is refused outside development mode (KCM_DEV=1)');
  const au = obj(file.autoUnseal, 'autoUnseal');
  const baseMs = int(au.baseMs, 'autoUnseal.baseMs', 0, 60_000, 200);
  const maxMs = int(au.maxMs, 'autoUnseal.maxMs', 50, 600_000, 5_000);
  if (maxMs < baseMs) fail('autoUnseal.maxMs', `must be at least autoUnseal.baseMs (${baseMs})`);
  return {
    devMode,
    region,
    dataDir,
    store: parseStore(file.store, env, dataDir),
    seal: seal.type === undefined ? { type: 'shamir' } : (seal as CoreConfig['seal']),
    listen: parseListen(file.listen, env),
    ivk: ivkPolicy(obj(file.ivk, 'ivk') as Partial<IvkPolicy>),
    autoUnseal: {
      attempts: int(au.attempts, 'autoUnseal.attempts', 1, 100, 5),
      baseMs,
      maxMs,
    },
    tickMs: int(file.tickMs, 'tickMs', 10, 86_400_000, 60_000),
    l1Providers: l1ProvidersConfig(file.l1Providers, devMode),
    keys: keyHierarchyConfig(file.keys),
    auditLog: resolve(typeof file.auditLog === 'string' ? file.auditLog : join(dataDir, 'audit.jsonl')),
    audit: auditSettings(file.audit, file.alerts, env),
    ...authzPolicy(file.authzPolicy, env),
    ...(file.edge === undefined ? {} : { edge: edgeConfig(file.edge) as EdgeConfig }),
    quorum: parseQuorum(file.quorum),
  };
}

const DAY_MS = 86_400_000;

/** `quorum`: M distinct people (proposer included, 2–16), default and maximum request lifetime in days (max 30). */
function parseQuorum(v: unknown): ApprovalPolicy {
  const q = obj(v, 'quorum');
  for (const k of Object.keys(q)) {
    if (!['required', 'defaultTtlDays', 'maxTtlDays'].includes(k)) fail(`quorum.${k}`, 'is not a field');
  }
  const maxTtlDays = int(q.maxTtlDays, 'quorum.maxTtlDays', 1, 30, 30);
  return approvalPolicy({
    required: int(q.required, 'quorum.required', 2, 16, 2),
    maxTtlMs: maxTtlDays * DAY_MS,
    defaultTtlMs: int(q.defaultTtlDays, 'quorum.defaultTtlDays', 1, maxTtlDays, Math.min(7, maxTtlDays)) * DAY_MS,
  });
}

/** Reads a JSON config file (or none) and applies the environment. */
export function loadCoreConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): CoreConfig {
  const file = path ?? env.KCM_CONFIG;
  if (!file) return coreConfig({}, env);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new KcmError('invalid_config', `${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return coreConfig(obj(parsed, file), env);
}
