import { imagesBody, imagesWire } from '../../src/inference/openai-wire.js';
import { base64Bytes, base64ImageDatum, toBase64Ascii } from '../../src/providers/image-data.js';
import type { ImageGenerationResponse } from '../../src/providers/openai-types.js';

const PNG_A = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 250, 251, 252]);
const PNG_B = Buffer.from('a second image, any bytes at all \u00ff', 'latin1');

function response(data: ImageGenerationResponse['data']): ImageGenerationResponse {
  return { created: 1_764_000_000, data, model: 'tiny-lcm', usage: { elapsed_seconds: 0.25, seed: 42 } };
}

describe('images answer on the wire', () => {
  it('reads as the usual base64 string to anyone who asks, and keeps the bytes for the HTTP edge', () => {
    const datum = base64ImageDatum(toBase64Ascii(PNG_A), 'a fox');
    expect(datum.b64_json).toBe(PNG_A.toString('base64'));
    expect(JSON.parse(JSON.stringify(datum))).toEqual({ revised_prompt: 'a fox', b64_json: PNG_A.toString('base64') });
    expect(base64Bytes(datum)?.toString('latin1')).toBe(PNG_A.toString('base64'));
    expect(base64Bytes({ b64_json: 'AAAA', revised_prompt: '' })).toBeUndefined();
  });

  it('assembles the same JSON a client would get from the string form, with prompts that need escaping', () => {
    const prompts = ['a "quoted" fox\\ on a\nnew line', 'überall 🦊 </script>'];
    const wire = imagesWire(
      response([
        base64ImageDatum(toBase64Ascii(PNG_A), prompts[0]!),
        base64ImageDatum(toBase64Ascii(PNG_B), prompts[1]!),
      ]),
    );
    const body = imagesBody(wire);
    expect(body).not.toBeNull();
    const parsed = JSON.parse(body!.toString('utf8')) as typeof wire;
    expect(parsed).toEqual(JSON.parse(JSON.stringify(wire)));
    expect(parsed.data.map((d) => Buffer.from(d.b64_json, 'base64'))).toEqual([PNG_A, PNG_B]);
    expect(parsed.data.map((d) => d.revised_prompt)).toEqual(prompts);
  });

  it('leaves answers whose images are plain strings (remote backends) to the ordinary serializer', () => {
    const wire = imagesWire(response([{ b64_json: PNG_A.toString('base64'), revised_prompt: 'x' }]));
    expect(imagesBody(wire)).toBeNull();
    expect(imagesBody(imagesWire(response([])))).toBeNull();
  });

  it('gives every image its own transferable buffer, never a slice of a shared pool', () => {
    const ascii = toBase64Ascii(PNG_A.subarray(2, 7));
    expect(ascii.byteOffset).toBe(0);
    expect(ascii.buffer.byteLength).toBe(ascii.length);
    expect(ascii.toString('latin1')).toBe(PNG_A.subarray(2, 7).toString('base64'));
  });
});
