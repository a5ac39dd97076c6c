/** Reading schemas out of the generated /openapi.json with Ajv. */

/** The document with every object schema closed: an answer carrying an undescribed field fails validation. */
export function closed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed);
  if (typeof node !== 'object' || node === null) return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, closed(v)]));
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

/** A JSON pointer (RFC 6901, URI-encoded) to the given path segments. */
export const pointer = (...parts: string[]): string =>
  parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');
