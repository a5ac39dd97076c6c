/** Reading upstream bodies: JSON that may not be JSON, and error messages in every dialect. */
/** Parses a body as JSON; null when it is not JSON (an HTML error page, an empty 200). */
export function parseJson(text: string): unknown {
  if (text.length === 0) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The human message inside an upstream error body, whatever its dialect: OpenAI/llama.cpp
 * `{error:{message}}`, Ollama `{error:"..."}`, FastAPI `{detail}`, vLLM `{message}`, or an HTML page.
 */
export function upstreamMessage(status: number, text: string): string {
  const json = parseJson(text);
  let message: string | null = null;
  if (isRecord(json)) {
    const err = json.error;
    if (isRecord(err) && typeof err.message === 'string') message = err.message;
    // sd-server: {"error": "server_error", "message": "…"}: the code alone says nothing.
    else if (typeof err === 'string') message = typeof json.message === 'string' ? `${err}: ${json.message}` : err;
    else if (typeof json.message === 'string') message = json.message;
    else if (typeof json.detail === 'string') message = json.detail;
    else if (json.detail !== undefined) message = JSON.stringify(json.detail);
  }
  if (message === null && text.length > 0) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1];
    message = (title ?? text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  }
  const trimmed = message && message.length > 300 ? `${message.slice(0, 300)}…` : message;
  return trimmed ? `HTTP ${status}: ${trimmed}` : `HTTP ${status}`;
}
