/**
 * Versioned schema migrations, one ordered list for both dialects. A database
 * records the versions applied to it in `schema_migrations`; `migrate()` of
 * each store applies the pending ones in one transaction and refuses
 * (`store_schema`) a database whose version is newer than this build knows,
 * since an older build could misread or corrupt rows it does not understand.
 *
 * Rules: a released migration's SQL never changes; schema changes are new
 * entries with the next version. Each entry carries literal SQL per dialect
 * (no shared type templates, so editing a helper cannot rewrite history).
 * Integers are 64-bit (SQLite INTEGER, PostgreSQL BIGINT): versions up to
 * 2^32−1 and millisecond times up to 2^53−1 fit. Buffers are BLOB / BYTEA.
 * PostgreSQL text keys use COLLATE "C" so both dialects order tenants by
 * bytes (SQLite's BINARY collation).
 */
import { storeError } from './store-error.ts';

export interface Migration {
  /** 1, 2, 3, … without gaps. */
  version: number;
  description: string;
  /** SQLite statements (run with exec, inside the migration transaction). */
  sqlite: string;
  /** PostgreSQL statements; `schema` is the quoted schema identifier. */
  postgres: (schema: string) => string;
}

/** Bookkeeping table, created before the migrations run. */
export const SQLITE_SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT`;

export const postgresSchemaMigrations = (s: string): string => `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

const SEAL_ALL_OR_NONE = `CHECK (
    (seal_provider IS NULL AND seal_key_id IS NULL AND seal_key_version IS NULL AND seal_encrypted_data_key IS NULL
      AND seal_wrapped_master_key IS NULL AND seal_created_at IS NULL)
    OR (seal_provider IS NOT NULL AND seal_key_id IS NOT NULL AND seal_key_version IS NOT NULL
      AND seal_encrypted_data_key IS NOT NULL AND seal_wrapped_master_key IS NOT NULL AND seal_created_at IS NOT NULL))`;

const L1_ALL_OR_NONE = `CHECK (
    (l1_provider IS NULL AND l1_key_id IS NULL AND l1_region IS NULL)
    OR (l1_provider IS NOT NULL AND l1_key_id IS NOT NULL AND l1_region IS NOT NULL))`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'cluster, ivk_versions, l2_keys',
    sqlite: `
CREATE TABLE cluster (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  cluster_id TEXT NOT NULL,
  region TEXT NOT NULL,
  seal_type TEXT NOT NULL CHECK (seal_type IN ('shamir', 'awskms', 'pkcs11', 'dev')),
  threshold INTEGER NOT NULL,
  share_count INTEGER NOT NULL,
  split_id BLOB NOT NULL,
  kcv BLOB NOT NULL,
  ceremony_public_key BLOB NOT NULL,
  manifest TEXT NOT NULL,
  seal_provider TEXT CHECK (seal_provider IN ('awskms', 'pkcs11', 'dev')),
  seal_key_id TEXT,
  seal_key_version TEXT,
  seal_encrypted_data_key BLOB,
  seal_wrapped_master_key BLOB,
  seal_created_at INTEGER,
  created_at INTEGER NOT NULL,
  mac BLOB NOT NULL,
  ${SEAL_ALL_OR_NONE}
) STRICT;
CREATE TABLE ivk_versions (
  version INTEGER PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'GRACE', 'DEPRECATED', 'REVOKED')),
  created_at INTEGER NOT NULL,
  retired_at INTEGER,
  hard_expiry INTEGER NOT NULL,
  wraps INTEGER NOT NULL,
  wrapped BLOB NOT NULL,
  mac BLOB NOT NULL
) STRICT;
CREATE TABLE l2_keys (
  tenant TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'SUSPENDED', 'REVOKED')),
  ivk_version INTEGER NOT NULL,
  wrapped_active BLOB NOT NULL,
  wrapped_sovereign BLOB,
  created_at INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (tenant, version)
) STRICT, WITHOUT ROWID;
CREATE INDEX l2_keys_ivk ON l2_keys (ivk_version, created_at, tenant, version);
`,
    postgres: (s) => `
CREATE TABLE ${s}.cluster (
  id SMALLINT PRIMARY KEY CHECK (id = 1),
  cluster_id TEXT NOT NULL,
  region TEXT NOT NULL,
  seal_type TEXT NOT NULL CHECK (seal_type IN ('shamir', 'awskms', 'pkcs11', 'dev')),
  threshold BIGINT NOT NULL,
  share_count BIGINT NOT NULL,
  split_id BYTEA NOT NULL,
  kcv BYTEA NOT NULL,
  ceremony_public_key BYTEA NOT NULL,
  manifest TEXT NOT NULL,
  seal_provider TEXT CHECK (seal_provider IN ('awskms', 'pkcs11', 'dev')),
  seal_key_id TEXT,
  seal_key_version TEXT,
  seal_encrypted_data_key BYTEA,
  seal_wrapped_master_key BYTEA,
  seal_created_at BIGINT,
  created_at BIGINT NOT NULL,
  mac BYTEA NOT NULL,
  ${SEAL_ALL_OR_NONE}
);
CREATE TABLE ${s}.ivk_versions (
  version BIGINT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'GRACE', 'DEPRECATED', 'REVOKED')),
  created_at BIGINT NOT NULL,
  retired_at BIGINT,
  hard_expiry BIGINT NOT NULL,
  wraps BIGINT NOT NULL,
  wrapped BYTEA NOT NULL,
  mac BYTEA NOT NULL
);
CREATE TABLE ${s}.l2_keys (
  tenant TEXT COLLATE "C" NOT NULL,
  version BIGINT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'SUSPENDED', 'REVOKED')),
  ivk_version BIGINT NOT NULL,
  wrapped_active BYTEA NOT NULL,
  wrapped_sovereign BYTEA,
  created_at BIGINT NOT NULL,
  mac BYTEA NOT NULL,
  PRIMARY KEY (tenant, version)
);
CREATE INDEX l2_keys_ivk ON ${s}.l2_keys (ivk_version, created_at, tenant, version);
`,
  },
  {
    version: 2,
    description: 'cluster: two-phase init state, IVK head digest',
    sqlite: `
ALTER TABLE cluster ADD COLUMN init_state TEXT NOT NULL DEFAULT 'confirmed' CHECK (init_state IN ('pending', 'confirmed'));
ALTER TABLE cluster ADD COLUMN ivk_digest BLOB NOT NULL DEFAULT x'';
`,
    postgres: (s) => `
ALTER TABLE ${s}.cluster ADD COLUMN init_state TEXT NOT NULL DEFAULT 'confirmed' CHECK (init_state IN ('pending', 'confirmed'));
ALTER TABLE ${s}.cluster ADD COLUMN ivk_digest BYTEA NOT NULL DEFAULT '\\x';
`,
  },
  {
    version: 3,
    description: 'tenants, l3_services, l3_keys, key_events, edges, approvals',
    sqlite: `
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'SUSPENDED', 'REVOKED')),
  key_mode TEXT NOT NULL CHECK (key_mode IN ('managed', 'byok', 'hyok')),
  l1_provider TEXT,
  l1_key_id TEXT,
  l1_region TEXT,
  suspended_at INTEGER,
  grace_days INTEGER CHECK (grace_days IN (30, 60, 90)),
  reason TEXT,
  revoked_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  mac BLOB NOT NULL,
  ${L1_ALL_OR_NONE},
  CHECK (key_mode = 'managed' OR l1_provider IS NOT NULL)
) STRICT, WITHOUT ROWID;
CREATE TABLE l3_services (
  tenant TEXT NOT NULL,
  service TEXT NOT NULL,
  rotate_period_ms INTEGER NOT NULL,
  encryption_budget INTEGER NOT NULL,
  min_decrypt_version INTEGER NOT NULL,
  expired_retention_ms INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (tenant, service)
) STRICT, WITHOUT ROWID;
CREATE TABLE l3_keys (
  tenant TEXT NOT NULL,
  service TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'ACTIVE', 'EXPIRED', 'REVOKED')),
  l2_version INTEGER NOT NULL,
  wrapped BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  activated_at INTEGER,
  rotate_after INTEGER,
  expired_at INTEGER,
  revoked_at INTEGER,
  encryptions INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (tenant, service, version)
) STRICT, WITHOUT ROWID;
CREATE INDEX l3_keys_due ON l3_keys (state, rotate_after, tenant, service, version);
CREATE TABLE key_events (
  seq INTEGER PRIMARY KEY CHECK (seq > 0),
  type TEXT NOT NULL CHECK (type IN ('tenant.revoked', 'tenant.suspended', 'tenant.resumed', 'l3.rotated', 'l3.revoked', 'l3.min_decrypt')),
  tenant TEXT NOT NULL,
  service TEXT,
  version INTEGER,
  created_at INTEGER NOT NULL,
  mac BLOB NOT NULL
) STRICT;
CREATE TABLE edges (
  edge_id TEXT PRIMARY KEY,
  acked_seq INTEGER NOT NULL,
  acked_at INTEGER,
  last_seen_at INTEGER NOT NULL,
  mac BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE approvals (
  id TEXT PRIMARY KEY,
  operation TEXT NOT NULL,
  params TEXT NOT NULL,
  proposer TEXT NOT NULL,
  required INTEGER NOT NULL,
  approvals TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'EXECUTED', 'FAILED', 'REJECTED', 'CANCELLED', 'EXPIRED')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  decided_by TEXT,
  decided_at INTEGER,
  executed_at INTEGER,
  result TEXT,
  mac BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX approvals_state ON approvals (state, created_at, id);
CREATE INDEX approvals_created ON approvals (created_at, id);
`,
    postgres: (s) => `
CREATE TABLE ${s}.tenants (
  id TEXT COLLATE "C" PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'SUSPENDED', 'REVOKED')),
  key_mode TEXT NOT NULL CHECK (key_mode IN ('managed', 'byok', 'hyok')),
  l1_provider TEXT,
  l1_key_id TEXT,
  l1_region TEXT,
  suspended_at BIGINT,
  grace_days BIGINT CHECK (grace_days IN (30, 60, 90)),
  reason TEXT,
  revoked_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  mac BYTEA NOT NULL,
  ${L1_ALL_OR_NONE},
  CHECK (key_mode = 'managed' OR l1_provider IS NOT NULL)
);
CREATE TABLE ${s}.l3_services (
  tenant TEXT COLLATE "C" NOT NULL,
  service TEXT COLLATE "C" NOT NULL,
  rotate_period_ms BIGINT NOT NULL,
  encryption_budget BIGINT NOT NULL,
  min_decrypt_version BIGINT NOT NULL,
  expired_retention_ms BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  mac BYTEA NOT NULL,
  PRIMARY KEY (tenant, service)
);
CREATE TABLE ${s}.l3_keys (
  tenant TEXT COLLATE "C" NOT NULL,
  service TEXT COLLATE "C" NOT NULL,
  version BIGINT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'ACTIVE', 'EXPIRED', 'REVOKED')),
  l2_version BIGINT NOT NULL,
  wrapped BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  activated_at BIGINT,
  rotate_after BIGINT,
  expired_at BIGINT,
  revoked_at BIGINT,
  encryptions BIGINT NOT NULL,
  mac BYTEA NOT NULL,
  PRIMARY KEY (tenant, service, version)
);
CREATE INDEX l3_keys_due ON ${s}.l3_keys (state, rotate_after, tenant, service, version);
CREATE TABLE ${s}.key_events (
  seq BIGINT PRIMARY KEY CHECK (seq > 0),
  type TEXT NOT NULL CHECK (type IN ('tenant.revoked', 'tenant.suspended', 'tenant.resumed', 'l3.rotated', 'l3.revoked', 'l3.min_decrypt')),
  tenant TEXT COLLATE "C" NOT NULL,
  service TEXT COLLATE "C",
  version BIGINT,
  created_at BIGINT NOT NULL,
  mac BYTEA NOT NULL
);
CREATE TABLE ${s}.edges (
  edge_id TEXT COLLATE "C" PRIMARY KEY,
  acked_seq BIGINT NOT NULL,
  acked_at BIGINT,
  last_seen_at BIGINT NOT NULL,
  mac BYTEA NOT NULL
);
CREATE TABLE ${s}.approvals (
  id TEXT COLLATE "C" PRIMARY KEY,
  operation TEXT NOT NULL,
  params TEXT NOT NULL,
  proposer TEXT NOT NULL,
  required BIGINT NOT NULL,
  approvals TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'EXECUTED', 'FAILED', 'REJECTED', 'CANCELLED', 'EXPIRED')),
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  decided_by TEXT,
  decided_at BIGINT,
  executed_at BIGINT,
  result TEXT,
  mac BYTEA NOT NULL
);
CREATE INDEX approvals_state ON ${s}.approvals (state, created_at, id);
CREATE INDEX approvals_created ON ${s}.approvals (created_at, id);
`,
  },
];

/** Throws `invalid_config` unless versions run 1, 2, 3, … (checked when a store is constructed). */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw storeError('invalid_config', `migrations: entry ${i} has version ${m.version}, expected ${i + 1}`);
    }
  });
}

/**
 * The migrations still to apply to a database at version `applied` (0 = empty).
 * Throws `store_schema` when the database is newer than `list` knows.
 */
export function pendingMigrations(applied: number, list: readonly Migration[]): readonly Migration[] {
  if (applied > list.length) {
    throw storeError('store_schema', `database schema version ${applied}, this build knows up to ${list.length}`);
  }
  return list.slice(applied);
}
