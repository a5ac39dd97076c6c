/**
 * OpenAI request fields beyond plain sampling, as the in-process backend honours them:
 * `response_format` (json_object / json_schema) through node-llama-cpp's grammars, `logit_bias`
 * through its token biases. What node-llama-cpp cannot do here is refused with a 400 naming the
 * field, never silently ignored: a client asking for log-probabilities or a vendor extension must
 * learn that it did not get them.
 */
import type { LlamaGrammar, Token } from 'node-llama-cpp';
import { AppError, errorText, InvalidRequestError, UnsupportedParameterError } from '../../common/errors.js';
import type { ChatCompletionRequest, CompletionRequest, ResponseFormat } from '../openai-types.js';
import { jsonSchemaProblem } from './json-schema-check.js';
import type { LlamaHandle } from './model-loader.js';
import type { NodeLlamaCpp } from './llama-runtime.js';
import type { GenerationExtras } from './sampling.js';

/** Fields OpenAI clients send that describe the caller, not the generation; accepted and ignored. */
const METADATA_FIELDS = new Set(['user', 'store', 'metadata', 'service_tier', 'parallel_tool_calls']);

/** Grammars built from one JSON schema are reused across requests to the same loaded model. */
const MAX_CACHED_GRAMMARS = 32;
const grammarCache = new WeakMap<LlamaHandle, Map<string, Promise<LlamaGrammar>>>();

type AnyRequest = Partial<ChatCompletionRequest> & Partial<Pick<CompletionRequest, 'prompt'>>;

export function unsupported(modelId: string, field: string, why: string): AppError {
  return new UnsupportedParameterError(
    modelId,
    field,
    `'${field}' is not supported by the in-process llama-cpp backend serving '${modelId}': ${why}`,
  );
}

/** Refuses what cannot be honoured. Cheap and model-independent: called before anything else. */
export function refuseUnsupported(modelId: string, req: AnyRequest): void {
  if (req.logprobs === true) throw unsupported(modelId, 'logprobs', 'token log-probabilities are not available');
  if (req.top_logprobs) throw unsupported(modelId, 'top_logprobs', 'token log-probabilities are not available');
  if (req.tools && req.tools.length > 0 && req.tool_choice !== 'none') {
    throw unsupported(modelId, 'tools', 'function calling is not available in-process; use a remote backend');
  }
  const format = req.response_format;
  const schema =
    format?.type === 'json_schema'
      ? format.json_schema?.schema
      : format?.type === 'json_object'
        ? format.schema
        : undefined;
  const problem = schema === undefined ? null : jsonSchemaProblem(schema);
  if (problem) {
    throw new InvalidRequestError(
      `The JSON schema cannot be enforced: ${problem}`,
      format?.type === 'json_schema' ? 'response_format.json_schema.schema' : 'response_format.schema',
      { model: modelId },
    );
  }
  for (const [field, value] of Object.entries(req.passthrough ?? {})) {
    if (METADATA_FIELDS.has(field) || value === undefined || value === null) continue;
    if (field === 'n' && value === 1) continue;
    throw unsupported(modelId, field, 'the field is not understood by this backend');
  }
}

/** Grammar and token biases for the request, built on the loaded model. */
export async function requestExtras(
  lib: NodeLlamaCpp,
  h: LlamaHandle,
  modelId: string,
  req: AnyRequest,
): Promise<GenerationExtras> {
  const extras: GenerationExtras = {};
  const grammar = await grammarFor(h, modelId, req.response_format);
  if (grammar) extras.grammar = grammar;
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0) {
    extras.tokenBias = tokenBias(lib, h, modelId, req.logit_bias);
  }
  return extras;
}

function grammarFor(h: LlamaHandle, modelId: string, format: ResponseFormat | undefined): Promise<LlamaGrammar | null> {
  if (!format || format.type === 'text') return Promise.resolve(null);
  let schema: Record<string, unknown> | undefined;
  let param: string;
  if (format.type === 'json_object') {
    // llama-server accepts a `schema` here too; honoured the same way.
    schema = format.schema;
    param = 'response_format.schema';
  } else if (format.type === 'json_schema') {
    schema = format.json_schema?.schema;
    param = 'response_format.json_schema.schema';
  } else {
    throw unsupported(modelId, 'response_format.type', `'${String((format as { type: unknown }).type)}' is unknown`);
  }
  const key = schema === undefined ? 'json' : JSON.stringify(schema);
  let cache = grammarCache.get(h);
  if (!cache) grammarCache.set(h, (cache = new Map<string, Promise<LlamaGrammar>>()));
  let grammar = cache.get(key);
  if (!grammar) {
    grammar = schema === undefined ? h.model.llama.getGrammarFor('json') : schemaGrammar(h, schema);
    if (cache.size >= MAX_CACHED_GRAMMARS) cache.delete(cache.keys().next().value as string);
    cache.set(key, grammar);
    grammar.catch(() => cache.delete(key));
  }
  return grammar.catch((err: unknown) => {
    throw new InvalidRequestError(`The JSON schema cannot be enforced: ${errorText(err)}`, param, { model: modelId });
  });
}

/**
 * A client's schema is arbitrary JSON, so the library's compile-time schema typing cannot apply;
 * node-llama-cpp validates it at run time and rejects what its GBNF subset cannot enforce.
 */
function schemaGrammar(h: LlamaHandle, schema: Record<string, unknown>): Promise<LlamaGrammar> {
  const llama = h.model.llama;
  const create = llama.createGrammarForJsonSchema.bind(llama) as (s: unknown) => Promise<LlamaGrammar>;
  return create(schema);
}

/**
 * OpenAI adds the bias to the token's logit, and -100 bans it; node-llama-cpp's `{ logit }` is
 * the same addition. Token ids outside the vocabulary are refused: llama.cpp indexes arrays with them.
 */
function tokenBias(lib: NodeLlamaCpp, h: LlamaHandle, modelId: string, bias: Record<string, number>) {
  const vocab = vocabularySize(h);
  const result = new lib.TokenBias(h.model.tokenizer);
  for (const [key, value] of Object.entries(bias)) {
    const token = Number(key);
    if (!/^\d+$/.test(key) || !(token < vocab)) {
      throw new InvalidRequestError(
        `logit_bias key '${key}' is not a token id of '${modelId}' (0 to ${vocab - 1})`,
        'logit_bias',
        { model: modelId },
      );
    }
    result.set(token as Token, value <= -100 ? 'never' : { logit: value });
  }
  return result;
}

function vocabularySize(h: LlamaHandle): number {
  const tokens = (h.model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer
    ?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : 0;
}
