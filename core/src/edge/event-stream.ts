/**
 * GET /v1/edge/events?after=SEQ (ADR-101/602): one long-lived NDJSON response
 * per edge. It opens with a `hello` line, replays the stored events after SEQ,
 * then streams live events from the KeyEventBus as they commit, with a
 * `heartbeat` line every `heartbeatMs`. Only events of tenants the edge may
 * lease are sent (the decision is made per event, so a policy change applies
 * at once). An edge that stops reading is disconnected once its unread output
 * passes `maxBufferedBytes`; it reconnects and replays from its last seq.
 */
import type { ServerHttp2Stream } from 'node:http2';
import type { WireEvent, WireHeartbeat, WireHello } from '../../../common/src/format/edge-wire.ts';
import type { KeyEventBus } from '../events/key-event-bus.ts';
import type { KeyEventRecord } from '../store/records.ts';
import type { EdgeAccess } from './edge-access.ts';
import type { EdgeSession } from './edge-session.ts';
import type { EdgeState } from './edge-state.ts';

export interface EventStreamDeps {
  bus: KeyEventBus;
  state: EdgeState;
  access: EdgeAccess;
  heartbeatMs: number;
  maxBufferedBytes: number;
  now: () => number;
  log: (msg: string) => void;
}

const REPLAY_PAGE = 500;

/** The public form of a stored event (the MAC stays in the Core). */
export function wireEvent(e: KeyEventRecord): WireEvent {
  return {
    kind: 'event',
    seq: e.seq,
    type: e.type,
    tenant: e.tenant,
    service: e.service,
    version: e.version,
    createdAt: e.createdAt,
  };
}

/**
 * Serves one event stream until the client or the server closes it. `after`
 * is the last seq the edge applied (0 = from the start). Throws (before any
 * byte is written) when the store cannot be read, e.g. `sealed`.
 */
export async function serveEvents(
  deps: EventStreamDeps,
  session: EdgeSession,
  stream: ServerHttp2Stream,
  after: number,
): Promise<void> {
  const { edgeId } = session;
  const headSeq = await deps.state.store.latestEventSeq();
  await deps.state.touch(edgeId, deps.now());
  let last = after;
  let live = false;
  const pending: KeyEventRecord[] = [];
  const write = (line: WireEvent | WireHello | WireHeartbeat): void => {
    if (stream.destroyed || stream.closed) return;
    stream.write(`${JSON.stringify(line)}\n`);
    if (stream.writableLength > deps.maxBufferedBytes) {
      deps.log(`edge ${edgeId}: event stream not read; disconnecting (it will replay)`);
      stream.close(0x0b /* NGHTTP2_ENHANCE_YOUR_CALM */);
    }
  };
  const send = (e: KeyEventRecord): void => {
    if (e.seq <= last) return;
    last = e.seq;
    if (deps.access.mayLease(edgeId, e.tenant)) write(wireEvent(e));
  };
  // Subscribe before replaying: an event committed during the replay is held, then sent once, in order.
  const unsubscribe = deps.bus.subscribe((e) => (live ? send(e) : pending.push(e)));
  const heartbeat = setInterval(() => write({ kind: 'heartbeat', at: deps.now() }), deps.heartbeatMs);
  heartbeat.unref();
  const done = new Promise<void>((resolve) => stream.once('close', resolve));
  void done.then(() => {
    unsubscribe();
    clearInterval(heartbeat);
  });
  try {
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    write({ kind: 'hello', edgeId, headSeq, heartbeatMs: deps.heartbeatMs });
    for (;;) {
      const page = await deps.state.store.listEventsAfter(last, REPLAY_PAGE);
      for (const e of page) send(e);
      if (page.length < REPLAY_PAGE) break;
    }
    for (const e of pending.splice(0)) send(e);
    live = true;
  } catch (err) {
    deps.log(`edge ${edgeId}: event replay failed: ${err instanceof Error ? err.message : String(err)}`);
    stream.close(0x02 /* NGHTTP2_INTERNAL_ERROR */);
  }
  await done;
}
