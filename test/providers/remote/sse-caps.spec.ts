/** The SSE parser's line cap (issue 16 item 3) and its incremental line search, on any chunking. */
import { SseLineTooLongError, sseData } from '../../../src/providers/remote/sse.js';

async function collect(chunks: string[], maxLine?: number): Promise<string[]> {
  async function* source(): AsyncGenerator<Uint8Array> {
    for (const c of chunks) yield new TextEncoder().encode(c);
  }
  const out: string[] = [];
  for await (const data of sseData(source(), maxLine)) out.push(data);
  return out;
}

/** Seeded splits of `text` into 1–7-character chunks. */
function split(text: string, seed: number): string[] {
  let s = seed;
  const chunks: string[] = [];
  for (let i = 0; i < text.length;) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (s % 7);
    chunks.push(text.slice(i, i + n));
    i += n;
  }
  return chunks;
}

const STREAM =
  'data: {"a":1}\r\n\r\n: comment\n\ndata: two\ndata: lines\r\rdata: {"b":2}\n\nerror: boom\n\ndata: [DONE]\n\n';

describe('sseData', () => {
  it('yields the same events whatever the chunking (CRLF, CR and LF line ends)', async () => {
    const whole = await collect([STREAM]);
    expect(whole).toEqual(['{"a":1}', 'two\nlines', '{"b":2}', '{"error":"boom"}', '[DONE]']);
    for (let seed = 1; seed <= 200; seed++) expect(await collect(split(STREAM, seed))).toEqual(whole);
  });

  it('refuses a line longer than the cap, whether or not it ever ends', async () => {
    const long = `data: ${'x'.repeat(5000)}`;
    await expect(collect([long], 1024)).rejects.toBeInstanceOf(SseLineTooLongError);
    await expect(collect([`${long}\n\n`], 1024)).rejects.toThrow('max_line_bytes (1024)');
  });

  it('refuses one event split over many data lines past the cap', async () => {
    const lines = Array.from({ length: 20 }, () => `data: ${'y'.repeat(100)}\n`).join('');
    await expect(collect([lines, '\n'], 1024)).rejects.toBeInstanceOf(SseLineTooLongError);
    await expect(collect([lines, '\n'], 4096)).resolves.toHaveLength(1);
  });

  it('parses a 5 MB line fed in 64 KB chunks whole, below its cap', async () => {
    // The parser resumes its search for a line end where the last chunk ended (`scanned`), so the cost is
    // linear; a wall-clock bound here failed on a busy machine, and speed belongs in the benchmarks.
    const chunk = 'z'.repeat(64 * 1024);
    const chunks = ['data: ', ...Array.from({ length: 80 }, () => chunk), '\n\n'];
    const out = await collect(chunks, 8 * 1024 * 1024);
    expect(out).toHaveLength(1);
    expect(out[0]).toHaveLength(80 * 64 * 1024);
  });
});
