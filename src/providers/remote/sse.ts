/**
 * Server-sent events, parsed incrementally: each event's `data:` payload is yielded as soon as its
 * blank-line terminator arrives, so a proxied stream reaches the client chunk by chunk.
 */
export async function* sseData(
  source: AsyncIterable<Uint8Array | string>,
  maxLineChars = Number.POSITIVE_INFINITY,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  // Where the search for the next line end resumes: rescanning the whole buffer per chunk made a 100 MB line quadratic.
  let scanned = 0;
  let data: string[] = [];
  let dataChars = 0;
  /** One line of the stream; returns an event's data when the line ends the event (a plain function: a
   * generator per line cost two extra objects and a `yield*` hop for every line of every stream). */
  const flushLine = (line: string): string | null => {
    if (line === '') {
      const event = data.length === 0 ? null : data.length === 1 ? data[0]! : data.join('\n');
      data = [];
      dataChars = 0;
      return event;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    // llama.cpp reports a failure mid-stream as an `error:` line; surface it as data so the caller sees it.
    if (field === 'data' || field === 'error') {
      dataChars += value.length;
      // One event split over many `data:` lines is bounded like one line.
      if (dataChars > maxLineChars) throw new SseLineTooLongError(maxLineChars);
      data.push(field === 'error' ? JSON.stringify({ error: value }) : value);
    }
    return null;
  };
  for await (const part of source) {
    buffer += typeof part === 'string' ? part : decoder.decode(part, { stream: true });
    let nl: number;
    while ((nl = lineEnd(buffer, scanned)) !== -1) {
      // A lone trailing CR may be the first half of a CRLF split across chunks: wait for the rest.
      if (buffer[nl] === '\r' && nl === buffer.length - 1) break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      scanned = 0;
      const event = flushLine(line);
      if (event !== null) yield event;
    }
    scanned = Math.max(0, buffer.length - 1);
    if (buffer.length > maxLineChars) throw new SseLineTooLongError(maxLineChars);
  }
  buffer += decoder.decode();
  if (buffer.length > 0) {
    const event = flushLine(buffer);
    if (event !== null) yield event;
  }
  const last = flushLine('');
  if (last !== null) yield last;
}

/**
 * The JSON text a relayed chunk arrived as (already renamed), so writing it out again needs no
 * JSON.stringify. Keyed by the chunk object: a copy or a rebuilt chunk is not found and is encoded anew.
 */
export const rawSseJson = new WeakMap<object, string>();

/** A stream line (or one event's data) longer than the backend's max_line_bytes. */
export class SseLineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`a stream line exceeds max_line_bytes (${limit})`);
  }
}

function lineEnd(buffer: string, from: number): number {
  for (let i = from; i < buffer.length; i++) {
    const c = buffer.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return -1;
}
