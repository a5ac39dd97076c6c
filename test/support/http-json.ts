/**
 * Plain HTTP helpers for tests: a free loopback port and JSON requests. No app code is imported here, so specs
 * that drive other processes (fleet processes, the real llama-server) use them without loading Nest.
 */
import { createServer } from 'node:net';

/** A port free on 127.0.0.1 a moment ago (loopback is one interface, so in practice on other 127.x too). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Status, parsed body (the text when it is not JSON, so an assertion shows it) and headers. */
export async function getJson(
  url: string,
  init?: RequestInit,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert on arbitrary JSON shapes
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body, headers: res.headers };
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): ReturnType<typeof getJson> {
  return getJson(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}
