// Engine.IO 4 / Socket.IO 5 framing, spoken directly by the load clients so
// a Socket.IO subscriber costs what any raw `ws` client costs: text frames
// `0{…}` (open), `40` (connect to namespace /), `42[event,…]` (event),
// `2`/`3` (ping/pong). Only what a subscriber of the default namespace needs.

/** The WebSocket URL of a Socket.IO server (websocket transport only, no polling upgrade). */
export function socketIoUrl(base: string): string {
  return `${base}/socket.io/?EIO=4&transport=websocket`;
}

/** The event frame asking the server to join these rooms (the peer's `subscribe` handler). */
export function subscribeFrame(topics: string[]): string {
  return `42${JSON.stringify(['subscribe', topics])}`;
}

export type EngineIoStep =
  /** Engine.IO open packet: connect to the default namespace. */
  | { kind: 'open'; send: string }
  /** Namespace connected: subscribe. */
  | { kind: 'connected'; send: string }
  | { kind: 'ping'; send: string }
  /** Namespace connection refused (`44{…}`) or engine closed (`1`). */
  | { kind: 'refused'; reason: string }
  /** An event or anything else: nothing to answer. */
  | { kind: 'data' };

/**
 * What a subscriber answers to one text frame from the server. Frames are
 * read by their first bytes only (events are the hot path).
 */
export function engineIoStep(frame: Buffer, topics: string[]): EngineIoStep {
  const c0 = frame[0];
  if (c0 === 0x34 /* 4: message */) {
    const c1 = frame[1];
    if (c1 === 0x32 /* 2: event */) return { kind: 'data' };
    if (c1 === 0x30 /* 0: connect */) return { kind: 'connected', send: subscribeFrame(topics) };
    if (c1 === 0x34 /* 4: connect_error */) return { kind: 'refused', reason: `connect_error ${frame.subarray(2, 200).toString()}` };
    return { kind: 'data' };
  }
  if (c0 === 0x32 /* 2: ping */ && frame.length === 1) return { kind: 'ping', send: '3' };
  if (c0 === 0x30 /* 0: open */) return { kind: 'open', send: '40' };
  if (c0 === 0x31 /* 1: close */) return { kind: 'refused', reason: 'engine closed' };
  return { kind: 'data' };
}
