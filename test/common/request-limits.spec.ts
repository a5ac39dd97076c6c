import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { parseBusRequest } from '../../src/bus/bus.protocol.js';
import { ValidationFailedError } from '../../src/common/errors.js';
import { REQUEST_LIMITS } from '../../src/common/request-limits.js';
import { ChatCompletionDto, ImageGenerationDto } from '../../src/inference/inference.dto.js';
import { parseImageRequest } from '../../src/providers/onnx-image/image-request.js';

/** Fields the HTTP door refuses for this body (class-validator, as the ValidationPipe runs it). */
function httpRefuses(cls: new () => object, body: object): string[] {
  return validateSync(plainToInstance(cls, body), { whitelist: true }).map((e) => e.property);
}

function imageParserRefuses(body: object): string[] {
  try {
    parseImageRequest(body);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationFailedError);
    return (err as ValidationFailedError).issues.map((i) => i.field);
  }
}

describe('one limits table for every door', () => {
  const image = { model: 'sd', prompt: 'a cat' };

  it.each([
    ['prompt', { prompt: 'p'.repeat(REQUEST_LIMITS.imagePromptMaxChars) }, { prompt: 'p'.repeat(4001) }],
    ['negative_prompt', { negative_prompt: 'n'.repeat(4000) }, { negative_prompt: 'n'.repeat(4001) }],
    ['seed', { seed: 2 ** 32 - 1 }, { seed: 2 ** 32 }],
    ['n', { n: 4 }, { n: 5 }],
    ['steps', { steps: 50 }, { steps: 51 }],
    ['guidance_scale', { guidance_scale: 20 }, { guidance_scale: 20.5 }],
    ['size', { size: '2048x8' }, { size: '2056x8' }],
  ])('HTTP and the image parser agree on the bound of %s', (field, atBound, overBound) => {
    expect(httpRefuses(ImageGenerationDto, { ...image, ...atBound })).toEqual([]);
    expect(imageParserRefuses({ ...image, ...atBound })).toEqual([]);
    expect(httpRefuses(ImageGenerationDto, { ...image, ...overBound })).toEqual([field]);
    expect(imageParserRefuses({ ...image, ...overBound })).toEqual([field]);
  });

  const chat = { model: 'qwen', messages: [{ role: 'user', content: 'hi' }] };
  const busAccepts = (body: object): boolean =>
    parseBusRequest(Buffer.from(JSON.stringify({ request_id: 1, ...body }))).ok;

  it.each([
    ['max_tokens', { max_tokens: 1_000_000 }, { max_tokens: 1_000_001 }],
    ['temperature', { temperature: 2 }, { temperature: 2.01 }],
    ['model', { model: 'm'.repeat(200) }, { model: 'm'.repeat(201) }],
    [
      'messages',
      { messages: Array.from({ length: 1000 }, () => chat.messages[0]) },
      { messages: Array.from({ length: 1001 }, () => chat.messages[0]) },
    ],
  ])('HTTP and the bus agree on the bound of %s', (field, atBound, overBound) => {
    expect(httpRefuses(ChatCompletionDto, { ...chat, ...atBound })).toEqual([]);
    expect(busAccepts({ ...chat, ...atBound })).toBe(true);
    expect(httpRefuses(ChatCompletionDto, { ...chat, ...overBound })).toEqual([field]);
    expect(busAccepts({ ...chat, ...overBound })).toBe(false);
  });
});
