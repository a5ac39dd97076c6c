/**
 * Server-sent events, parsed incrementally: each event's `data:` payload is yielded as soon as its
 * blank-line terminator arrives, so a proxied stream reaches the client chunk by chunk.
 */
export async function* sseData(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const flushLine = function* (line: string): Generator<string> {
    if (line === '') {
      if (data.length > 0) yield data.join('\n');
      data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    // llama.cpp reports a failure mid-stream as an `error:` line; surface it as data so the caller sees it.
    if (field === 'data' || field === 'error') data.push(field === 'error' ? JSON.stringify({ error: value }) : value);
  };
  for await (const part of source) {
    buffer += typeof part === 'string' ? part : decoder.decode(part, { stream: true });
    let nl: number;
    while ((nl = buffer.search(/\r\n|\r|\n/)) !== -1) {
      // A lone trailing CR may be the first half of a CRLF split across chunks: wait for the rest.
      if (buffer[nl] === '\r' && nl === buffer.length - 1) break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      yield* flushLine(line);
    }
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield* flushLine(buffer);
  yield* flushLine('');
}
