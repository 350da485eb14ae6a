// gRPC-web's text mode (`application/grpc-web-text`, the default of Google's
// grpc-web runtime) on top of Connect's router, which speaks only the binary
// mode: the request body is base64-decoded and handed on as
// `application/grpc-web+proto`, and every chunk of the response (messages and
// the trailer frame) is base64-encoded on its own, as the grpc-web spec allows
// and envoy does: a padded chunk goes out at once, so a live stream's message
// is never held back waiting for the bytes of the next one.
import { Code, ConnectError } from '@connectrpc/connect';
import type { UniversalServerRequest, UniversalServerResponse } from '@connectrpc/connect/protocol';

const TEXT_TYPE = /^application\/grpc-web-text(?:\+proto)?(?:;|$)/i;

/** Whether a request speaks gRPC-web's text mode. */
export const isGrpcWebText = (contentType: string | undefined): boolean => TEXT_TYPE.test(contentType ?? '');

const BASE64_CHARS = /^[A-Za-z0-9+/=]*$/;

/**
 * Decodes a base64 stream that may be split anywhere and may carry padding in
 * the middle (a client's chunks encoded separately): whole 4-character groups
 * are decoded as they arrive, a padded group ends one segment.
 */
async function* decodeBase64Stream(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let rest = '';
  for await (const chunk of body) {
    const text = rest + Buffer.from(chunk).toString('latin1').replace(/\s+/g, '');
    if (!BASE64_CHARS.test(text)) throw new ConnectError('gRPC-web-text request body is not base64', Code.InvalidArgument);
    const whole = text.length - (text.length % 4);
    rest = text.slice(whole);
    if (whole > 0) yield decodeGroups(text.slice(0, whole));
  }
  if (rest.length > 0) throw new ConnectError('gRPC-web-text request body ends in the middle of a base64 group', Code.InvalidArgument);
}

/** Base64 with padding possibly inside (each padded group closes a segment). */
function decodeGroups(text: string): Buffer {
  if (!text.slice(0, -4).includes('=')) return Buffer.from(text, 'base64');
  const parts: Buffer[] = [];
  for (let at = 0; at < text.length; ) {
    const pad = text.indexOf('=', at);
    const end = pad < 0 ? text.length : Math.min(text.length, pad + 4 - ((pad - at) % 4));
    parts.push(Buffer.from(text.slice(at, end), 'base64'));
    at = end;
  }
  return Buffer.concat(parts);
}

/** The text-mode request as the binary one Connect's router serves. */
export function textRequestAsBinary(uReq: UniversalServerRequest): UniversalServerRequest {
  const header = new Headers(uReq.header);
  header.set('content-type', 'application/grpc-web+proto');
  header.delete('content-length');
  const body = uReq.body;
  if (body instanceof Uint8Array || !(Symbol.asyncIterator in Object(body))) return { ...uReq, header };
  return { ...uReq, header, body: decodeBase64Stream(body as AsyncIterable<Uint8Array>) };
}

/** The binary response as text mode: the same frames, each chunk base64 on its own. */
export function binaryResponseAsText(uRes: UniversalServerResponse): UniversalServerResponse {
  const header = new Headers(uRes.header);
  const type = header.get('content-type');
  // Errors before the call started (no gRPC-web body) pass as they are.
  if (!type?.startsWith('application/grpc-web')) return uRes;
  header.set('content-type', 'application/grpc-web-text+proto');
  header.delete('content-length');
  const body = uRes.body;
  if (!body) return { ...uRes, header };
  async function* encode(): AsyncGenerator<Uint8Array> {
    for await (const chunk of body as AsyncIterable<Uint8Array>) if (chunk.length > 0) yield Buffer.from(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString('base64'), 'latin1');
  }
  return { ...uRes, header, body: encode() };
}
