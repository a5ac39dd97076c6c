/**
 * An image of an OpenAI images answer whose base64 text already exists as ASCII bytes (made on the image
 * worker). `b64_json` reads as the usual string for anyone who asks (the bus, a test, JSON.stringify), but the
 * HTTP edge writes the bytes as they are: a ~1 MB string per 512² image, measured, encoded and copied on the
 * event loop, held /health/live up for 25-42 ms per answer.
 */
const ASCII = Symbol('modelplane.base64Ascii');

export interface ImageDatum {
  b64_json: string;
  revised_prompt: string;
}

type WithAscii = ImageDatum & { [ASCII]?: Buffer };

export function base64ImageDatum(ascii: Buffer, revisedPrompt: string): ImageDatum {
  const datum = { revised_prompt: revisedPrompt } as WithAscii;
  let text: string | undefined;
  Object.defineProperty(datum, 'b64_json', {
    enumerable: true,
    get: () => (text ??= ascii.toString('latin1')),
  });
  Object.defineProperty(datum, ASCII, { value: ascii });
  return datum;
}

/** The base64 bytes behind a datum made by base64ImageDatum; undefined for a plain one. */
export function base64Bytes(datum: ImageDatum): Buffer | undefined {
  return (datum as WithAscii)[ASCII];
}

/** Base64 text of some bytes as ASCII bytes in a buffer of its own (transferable to another thread). */
export function toBase64Ascii(bytes: Uint8Array): Buffer {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const out = Buffer.from(new ArrayBuffer(text.length));
  out.write(text, 'latin1');
  return out;
}
