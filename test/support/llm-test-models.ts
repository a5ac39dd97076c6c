/** Writes the tiny GGUF models into TEST_MODELS_DIR (idempotent, atomic: safe from parallel workers). */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TINY_CHAT, TINY_EMBED, writeTinyLlamaGguf, type TinyLlamaOptions } from '../../src/demo/tiny-llama.js';
import { TEST_MODELS_DIR } from './test-paths.js';

export const TINY_CHAT_GGUF = join(TEST_MODELS_DIR, 'tiny-chat.gguf');
export const TINY_EMBED_GGUF = join(TEST_MODELS_DIR, 'tiny-embed.gguf');
/** Valid GGUF except for `llama.feed_forward_length`: loading it unguarded would abort the process. */
export const BAD_GGUF = join(TEST_MODELS_DIR, 'bad-missing-ffn.gguf');
/** 4 KiB of random bytes with a .gguf name. */
export const RANDOM_BYTES_GGUF = join(TEST_MODELS_DIR, 'random-bytes.gguf');

export const TINY_CHAT_OPTIONS: TinyLlamaOptions = TINY_CHAT;
export const TINY_EMBED_OPTIONS: TinyLlamaOptions = TINY_EMBED;
export const BAD_GGUF_OPTIONS: TinyLlamaOptions = {
  ...TINY_CHAT,
  name: 'bad-missing-ffn',
  omitKeys: ['llama.feed_forward_length'],
};

export interface LlmTestModels {
  chat: string;
  embed: string;
}

export async function ensureLlmTestModels(): Promise<LlmTestModels> {
  mkdirSync(TEST_MODELS_DIR, { recursive: true });
  writeTinyLlamaGguf(TINY_CHAT_GGUF, TINY_CHAT_OPTIONS);
  writeTinyLlamaGguf(TINY_EMBED_GGUF, TINY_EMBED_OPTIONS);
  return { chat: TINY_CHAT_GGUF, embed: TINY_EMBED_GGUF };
}

/** Writes BAD_GGUF (missing llama.feed_forward_length) and returns its path. */
export function writeBadGguf(path = BAD_GGUF): string {
  writeTinyLlamaGguf(path, BAD_GGUF_OPTIONS);
  return path;
}

/** Writes RANDOM_BYTES_GGUF (not GGUF at all) and returns its path. */
export function writeRandomBytesGguf(path = RANDOM_BYTES_GGUF): string {
  const size = 4096;
  if (existsSync(path) && statSync(path).size === size) return path;
  mkdirSync(TEST_MODELS_DIR, { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, randomBytes(size));
  renameSync(tmp, path);
  return path;
}
