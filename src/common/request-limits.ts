/**
 * The bounds of one inference request, shared by every door that accepts one: the HTTP DTOs
 * (src/inference/inference.dto.ts, also the OpenAPI document), the bus request parser
 * (src/bus/bus.protocol.ts) and the providers that are called from code (the image request parser).
 * One table, so a request accepted at one door is never refused at another.
 */
export const REQUEST_LIMITS = {
  /** A model id or a name field. */
  nameMaxChars: 200,
  /** Characters of one message, prompt string or embeddings input string. */
  textMaxChars: 1_000_000,
  /** Messages in one chat request. */
  messagesMax: 1000,
  /** max_tokens / max_completion_tokens. */
  maxTokensMax: 1_000_000,
  temperatureMax: 2,
  /** An image prompt or negative prompt (OpenAI's images API bound). */
  imagePromptMaxChars: 4000,
  imagesMax: 4,
  imageStepsMax: 50,
  imageGuidanceMax: 20,
  /** Width and height of one image; a 2048² image is 64× the latents of SD's native 256² grid. */
  imageSideMax: 2048,
  /** Seeds are unsigned 32-bit, the range random seeds are drawn from and what SD tools print. */
  seedMax: 2 ** 32 - 1,
} as const;
