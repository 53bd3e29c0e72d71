/**
 * The one place that knows every seal backend: builds the SealProvider a
 * configuration names. The rest of the Core calls this and then uses only the
 * SealProvider interface (seal-provider.ts).
 *
 * Config comes from files, so it is checked at run time: `type` must be one of
 * the three, no unknown field is allowed (a typo such as `keyid` would
 * otherwise be ignored silently), and each provider's constructor checks its
 * fields. Errors name the bad field (`config.type`, `config.keyId`, …).
 */
import { type AwsKmsSealConfig, AwsKmsSealProvider } from './aws-kms/aws-kms-provider.ts';
import { type DevSealConfig, DevSealProvider } from './dev/dev-provider.ts';
import { type Pkcs11SealConfig, Pkcs11SealProvider } from './pkcs11/pkcs11-provider.ts';
import { type SealProvider, SealProviderError } from './seal-provider.ts';

export type SealConfig =
  | ({ type: 'awskms' } & AwsKmsSealConfig)
  | ({ type: 'pkcs11' } & Pkcs11SealConfig)
  | ({ type: 'dev' } & DevSealConfig);

export interface OpenSealOptions {
  /** Development mode: the only mode in which `type: 'dev'` is accepted. */
  devMode: boolean;
}

const FIELDS: Readonly<Record<SealConfig['type'], readonly string[]>> = {
  awskms: ['keyId', 'region', 'endpoint', 'credentials', 'timeoutMs'],
  pkcs11: ['modulePath', 'tokenLabel', 'pin', 'keyLabel'],
  dev: ['keyFile'],
};

/**
 * The provider for `config`. Throws SealProviderError `config` (with the
 * provider named by `type`) for a bad or unknown field, a dev seal outside
 * `opts.devMode`, or a provider that cannot start (PKCS#11 module, dev key
 * file); throws TypeError for an unknown `config.type` or a missing
 * `opts.devMode` (no provider to attribute those to). Performs no network
 * I/O: connectivity errors surface on first use.
 */
export function openSealProvider(config: SealConfig, opts: OpenSealOptions): SealProvider {
  if (typeof opts?.devMode !== 'boolean') {
    throw new TypeError('openSealProvider: opts.devMode must be a boolean');
  }
  const c = (config ?? {}) as unknown as Record<string, unknown>;
  const type = c.type;
  if (type !== 'awskms' && type !== 'pkcs11' && type !== 'dev') {
    const got = typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : String(type);
    throw new TypeError(`openSealProvider: config.type must be one of awskms, pkcs11, dev (got ${got})`);
  }
  const allowed = FIELDS[type];
  const { type: _type, ...fields } = c;
  for (const name of Object.keys(fields)) {
    if (!allowed.includes(name)) {
      throw new SealProviderError(
        'config',
        type,
        `config.${name} is not a field of the ${type} seal (allowed: ${allowed.join(', ')})`,
      );
    }
  }
  switch (type) {
    case 'awskms':
      return new AwsKmsSealProvider(fields as unknown as AwsKmsSealConfig);
    case 'pkcs11':
      return new Pkcs11SealProvider(fields as unknown as Pkcs11SealConfig);
    case 'dev':
      return new DevSealProvider(fields as unknown as DevSealConfig, { devMode: opts.devMode });
  }
}
