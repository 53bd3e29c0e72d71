/**
 * The native front (`fronts.native`; docs/decisions/0001-native-data-plane.md):
 * a plaintext HTTP/1.1 listener run by the native module's own event loop
 * on its own thread (native/src/front/). It serves the policy routes its
 * table marks (front-table.ts) and tunnels every other connection, from
 * the first request it does not serve, to the pipeline: a uWS listener on
 * a Unix socket in a fresh directory only this process's user can open
 * (mode 0700), whose requests take their peer from the PROXY v2 header
 * each tunnel starts with. So the clients of this port get the pipeline's
 * answers whenever the front does not answer itself.
 *
 * The requests it serves are counted in the gateway's metrics like any
 * other (route, status, latency; aborts): their records are drained every
 * {@link DRAIN_MS} and before each scrape. The keys it seals under are
 * copies fed from the gateway's key cache (front-keys.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KcmError } from '../../../common/src/errors.ts';
import {
  loadNative,
  type NativeFrontFns,
  type NativeFrontHandle,
  type NativeFrontStats,
} from '../../../native/ts/load.ts';
import type { GatewayKeys } from '../gateway-keys.ts';
import { startUwsUnixAdapter } from '../http/uws-adapter.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import { FrontKeys } from './front-keys.ts';
import type { FrontTable } from './front-table.ts';

export interface NativeFrontOptions {
  /** An IP address (the front binds no names). */
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface NativeFrontListener {
  readonly port: number;
  /** Serve from `table` from the next request on (a policy reload, or draining). */
  setTable(table: FrontTable): void;
  /** Resolves when no request it serves is in flight, or after `timeoutMs` (true when idle). */
  whenIdle(timeoutMs: number): Promise<boolean>;
  /** Moves the records of requests it served into the metrics (done on a timer and before each scrape). */
  drainRecords(): void;
  stats(): NativeFrontStats;
  /** Stops the loop (its connections close), then the internal listener. Idempotent. */
  close(): void;
}

/** How often request records move into the metrics, and keys the front asked for are copied in. */
export const DRAIN_MS = 25;

/** The native module's front functions, or `native_unavailable` naming why they cannot be had. */
function frontFns(): NativeFrontFns {
  const n = loadNative();
  const b = n.backend;
  if (!b?.frontStart || !b.frontTable || !b.frontDrain || !b.frontStats || !b.frontStop) {
    throw new KcmError('native_unavailable', `fronts.native needs the native module: ${n.error ?? 'it has no front'}`);
  }
  return b as NativeFrontFns;
}

/**
 * The metrics names of a front's routes by id (front-table.ts `nameId`):
 * records name their route by id, so one that finishes after a policy reload
 * still counts under its own route.
 */
export class RouteNames {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [];

  id = (name: string): number => {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#names.length;
      this.#names.push(name);
      this.#ids.set(name, id);
    }
    return id;
  };

  name(id: number): string {
    return this.#names[id] ?? 'unmatched';
  }
}

/**
 * Starts the internal listener, then the front serving from `table`.
 * Throws `native_unavailable` (no native module), `invalid_config` (the
 * host is not an IP address, the port cannot be bound).
 */
export async function startNativeFront(
  pipeline: Pipeline,
  o: NativeFrontOptions,
  table: FrontTable,
  metrics: GatewayMetrics,
  keys: GatewayKeys,
  names: RouteNames,
  log: (message: string) => void,
): Promise<NativeFrontListener> {
  const fns = frontFns();
  const dir = mkdtempSync(join(tmpdir(), 'kcm-front-'));
  const socketPath = join(dir, 'pipeline.sock');
  let internal: { close(): void } | undefined;
  let handle: NativeFrontHandle;
  try {
    internal = await startUwsUnixAdapter(pipeline, socketPath);
    handle = fns.frontStart(Buffer.from(o.host), o.port, Buffer.from(socketPath), table.bytes);
  } catch (err) {
    internal?.close();
    rmSync(dir, { recursive: true, force: true });
    if (err instanceof KcmError) throw err;
    // The module's messages name the address and the OS reason, never request data.
    throw new KcmError('invalid_config', `fronts.native: ${(err as Error).message}`);
  }
  const frontKeys = new FrontKeys(fns, handle, keys);
  const drainRecords = (): void => {
    const b = fns.frontDrain(handle);
    // name id (24 bits) << 40 | status (10) << 30 | µs (30)
    for (let at = 0; at + 8 <= b.length; at += 8) {
      const low = b.readUInt32LE(at);
      const high = b.readUInt32LE(at + 4);
      const route = names.name(high >>> 8);
      const status = ((high & 0xff) << 2) | (low >>> 30);
      metrics.recordServed(route, status, (low & 0x3fffffff) / 1e6);
    }
  };
  let reported = false;
  const checkFailure = (): void => {
    const why = fns.frontStats(handle).failure;
    if (why && !reported) {
      reported = true;
      log(`native front: ${why}; its port no longer answers`);
    }
  };
  const timer = setInterval(() => {
    drainRecords();
    frontKeys.tick();
    checkFailure();
  }, DRAIN_MS);
  timer.unref();
  const unhook = metrics.beforeRender(drainRecords);
  const { port } = fns.frontStats(handle);
  let open = true;
  return {
    port,
    setTable(t) {
      fns.frontTable(handle, t.bytes);
    },
    async whenIdle(timeoutMs) {
      const end = Date.now() + timeoutMs;
      while (fns.frontStats(handle).inFlight > 0) {
        if (Date.now() >= end) return false;
        await new Promise((r) => setTimeout(r, 10));
      }
      return true;
    },
    drainRecords,
    stats: () => fns.frontStats(handle),
    close() {
      if (!open) return;
      open = false;
      clearInterval(timer);
      frontKeys.close();
      fns.frontStop(handle);
      drainRecords();
      unhook();
      internal?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
