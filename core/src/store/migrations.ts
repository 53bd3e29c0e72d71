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
