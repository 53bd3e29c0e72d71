/**
 * Starts the edge API from the Core configuration: the listener's certificate
 * reloads without a restart (ReloadableTls, SIGHUP included), and edge
 * authorization comes from the Core's policy file through the shared engine
 * (ReloadableAuthz, role `edge`, action `lease`). Throws `invalid_config`
 * when no `authzPolicy` is configured (deny-by-default would refuse every
 * edge), `invalid_certificate` / `invalid_policy` for bad files.
 */

import type { AuditSink } from '../../../common/src/audit/audit-event.ts';
import { ReloadableAuthz } from '../../../common/src/authz/reloadable-authz.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { ReloadableTls } from '../../../common/src/tls/reloadable-tls.ts';
import type { Crypto } from '../../../native/index.ts';
import type { KeyEventBus } from '../events/key-event-bus.ts';
import type { L3LeaseSource } from '../keys/l3-lease-source.ts';
import { authzEdgeAccess } from './edge-access.ts';
import type { EdgeConfig } from './edge-config.ts';
import { type EdgeServer, startEdgeServer } from './edge-server.ts';
import type { EdgeStateSource } from './edge-state.ts';

export interface EdgeDeps {
  crypto: Crypto;
  source: L3LeaseSource;
  bus: KeyEventBus;
  store: EdgeStateSource;
  audit: AuditSink;
  log: (msg: string) => void;
}

export async function startConfiguredEdge(
  config: EdgeConfig,
  authzPolicy: string | undefined,
  d: EdgeDeps,
): Promise<EdgeServer> {
  if (!authzPolicy)
    throw new KcmError('invalid_config', 'edge: the edge API needs authzPolicy (edges and their tenants)');
  const log = (m: string) => d.log(`edge API: ${m}`);
  const tls = new ReloadableTls(config.tls, { role: 'server', sighup: true, log });
  let authz: ReloadableAuthz | undefined;
  try {
    authz = new ReloadableAuthz(authzPolicy, { sighup: true, log });
    const server = await startEdgeServer({
      host: config.host,
      port: config.port,
      tls,
      crypto: d.crypto,
      source: d.source,
      bus: d.bus,
      store: d.store,
      access: authzEdgeAccess(authz),
      leaseTtl: config.leaseTtl,
      heartbeatMs: config.heartbeatMs,
      audit: d.audit,
      log,
    });
    const ownAuthz = authz;
    return {
      ...server,
      close: async () => {
        await server.close();
        ownAuthz.close();
        tls.close();
      },
    };
  } catch (err) {
    authz?.close();
    tls.close();
    throw err;
  }
}
