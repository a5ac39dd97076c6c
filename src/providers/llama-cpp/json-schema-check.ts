/**
 * node-llama-cpp turns any JSON schema into a grammar without complaint: an unknown `type`
 * becomes `null`, an unsupported keyword (`pattern`, `allOf`…) is dropped, so the answer would
 * not satisfy what the client asked for. This check finds the first such problem, so the request
 * is refused naming it (llama-server answers an invalid schema with 400 too).
 */

const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

/** Keywords that constrain values in ways the grammar does not enforce. */
const UNENFORCED = [
  'pattern',
  'patternProperties',
  'allOf',
  'not',
  'if',
  'then',
  'else',
  'dependentSchemas',
  'dependentRequired',
  'multipleOf',
  'uniqueItems',
  'contains',
  'propertyNames',
];

const SUBSCHEMA_MAPS = ['properties', '$defs', 'definitions'];
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'prefixItems'];

/** The first problem as "<path>: <what>", or null when the schema can be enforced as written. */
export function jsonSchemaProblem(schema: unknown, path = 'schema', depth = 0): string | null {
  if (depth > 64) return `${path}: nested too deeply`;
  if (typeof schema === 'boolean') return null;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return `${path}: must be an object`;
  const s = schema as Record<string, unknown>;
  for (const key of UNENFORCED) {
    if (key in s) return `${path}.${key}: not supported by the in-process grammar`;
  }
  if ('type' in s) {
    const types = Array.isArray(s.type) ? (s.type as unknown[]) : [s.type];
    const bad = types.find((t) => typeof t !== 'string' || !TYPES.has(t));
    if (types.length === 0 || bad !== undefined) return `${path}.type: '${String(bad)}' is not a JSON Schema type`;
  }
  if ('enum' in s && (!Array.isArray(s.enum) || s.enum.length === 0)) return `${path}.enum: must be a non-empty array`;
  if ('$ref' in s && (typeof s.$ref !== 'string' || !s.$ref.startsWith('#/$defs/'))) {
    return `${path}.$ref: only local '#/$defs/…' references are supported`;
  }
  if ('required' in s && (!Array.isArray(s.required) || s.required.some((r) => typeof r !== 'string'))) {
    return `${path}.required: must be an array of property names`;
  }
  for (const key of SUBSCHEMA_MAPS) {
    if (!(key in s)) continue;
    const map = s[key];
    if (typeof map !== 'object' || map === null || Array.isArray(map)) return `${path}.${key}: must be an object`;
    for (const [name, sub] of Object.entries(map)) {
      const problem = jsonSchemaProblem(sub, `${path}.${key}.${name}`, depth + 1);
      if (problem) return problem;
    }
  }
  for (const key of SUBSCHEMA_LISTS) {
    if (!(key in s)) continue;
    const list = s[key];
    if (!Array.isArray(list) || list.length === 0) return `${path}.${key}: must be a non-empty array`;
    for (const [i, sub] of list.entries()) {
      const problem = jsonSchemaProblem(sub, `${path}.${key}[${i}]`, depth + 1);
      if (problem) return problem;
    }
  }
  for (const key of ['items', 'additionalProperties']) {
    if (key in s && typeof s[key] !== 'boolean') {
      const problem = jsonSchemaProblem(s[key], `${path}.${key}`, depth + 1);
      if (problem) return problem;
    }
  }
  return null;
}
