import { Body, Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiDefaultResponse, ApiExtraModels, ApiOkResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../auth/auth.guards.js';
import type { ChatCompletionRequest, CompletionRequest } from '../providers/openai-types.js';
import {
  ChatCompletionChunkSchema,
  ChatCompletionSchema,
  CompletionSchema,
  EmbeddingsSchema,
  ErrorEnvelopeSchema,
  ImagesSchema,
  ModelListSchema,
} from '../openapi/openai.schemas.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ChatCompletionDto, CompletionDto, EmbeddingsDto, ImageGenerationDto } from './inference.dto.js';
import { InferenceService } from './inference.service.js';
import { chatWire, imagesBody, imagesWire } from './openai-wire.js';
import { abortOnDisconnect, writeSse } from './sse.js';

interface ModelList {
  object: 'list';
  data: { id: string; object: 'model'; created: number; owned_by: string; purpose: string }[];
}

/** OpenAI-compatible routes. Thin: admission, leases and lazy load live in InferenceService. */
@Controller('v1')
@UseGuards(ApiKeyGuard)
@ApiTags('inference (OpenAI-compatible)')
@ApiExtraModels(ChatCompletionSchema, ChatCompletionChunkSchema, CompletionSchema)
@ApiDefaultResponse({ type: ErrorEnvelopeSchema, description: 'Any error, in the one envelope' })
export class InferenceController {
  private readonly startedS = Math.floor(Date.now() / 1000);

  constructor(
    private readonly inference: InferenceService,
    private readonly registry: ProviderRegistry,
  ) {}

  /** What can be served (OpenAI semantics), not what is loaded: that is GET /api/models/loaded. */
  @Get('models')
  @ApiOkResponse({ type: ModelListSchema })
  models(): ModelList {
    return {
      object: 'list',
      data: this.registry.catalog().map((m) => ({
        id: m.id,
        object: 'model',
        created: this.startedS,
        owned_by: m.backend.name,
        purpose: m.descriptor.purpose,
      })),
    };
  }

  @Post('chat/completions')
  @HttpCode(200)
  @ApiOkResponse(jsonOrStream(ChatCompletionSchema, ChatCompletionChunkSchema))
  async chat(
    @Body() dto: ChatCompletionDto,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const raw = request.body as { messages?: unknown } | null;
    const req: ChatCompletionRequest = withPassthrough(request.body, {
      ...dto,
      max_tokens: dto.max_tokens ?? dto.max_completion_tokens,
      client_messages: Array.isArray(raw?.messages) ? (raw.messages as unknown[]) : undefined,
    });
    const abort = abortOnDisconnect(reply);
    if (req.stream) {
      await writeSse(request, reply, await this.inference.chatCompletionStream(req, abort.signal), abort);
      return;
    }
    await reply.send(chatWire(await this.inference.chatCompletion(req, abort.signal)));
  }

  @Post('completions')
  @HttpCode(200)
  @ApiOkResponse(jsonOrStream(CompletionSchema, CompletionSchema))
  async completions(
    @Body() dto: CompletionDto,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const req: CompletionRequest = withPassthrough(request.body, {
      ...dto,
      max_tokens: dto.max_tokens ?? dto.max_completion_tokens,
    });
    const abort = abortOnDisconnect(reply);
    if (req.stream) {
      await writeSse(request, reply, await this.inference.completionStream(req, abort.signal), abort);
      return;
    }
    await reply.send(await this.inference.completion(req, abort.signal));
  }

  @Post('embeddings')
  @HttpCode(200)
  @ApiOkResponse({ type: EmbeddingsSchema })
  async embeddings(@Body() dto: EmbeddingsDto, @Res() reply: FastifyReply): Promise<void> {
    const abort = abortOnDisconnect(reply);
    await reply.send(await this.inference.embeddings(dto, abort.signal));
  }

  @Post('images/generations')
  @HttpCode(200)
  @ApiOkResponse({ type: ImagesSchema })
  async images(@Body() dto: ImageGenerationDto, @Res() reply: FastifyReply): Promise<void> {
    const abort = abortOnDisconnect(reply);
    const wire = imagesWire(await this.inference.generateImages(dto, abort.signal));
    const body = imagesBody(wire);
    if (body) await reply.type('application/json; charset=utf-8').send(body);
    else await reply.send(wire);
  }
}

/** JSON when `stream` is false; with `stream: true`, SSE `data:` events of `chunk`, then `data: [DONE]`. */
function jsonOrStream(body: new () => object, chunk: new () => object): Parameters<typeof ApiOkResponse>[0] {
  return {
    description: `JSON; with stream: true, text/event-stream of data: {${chunk.name}} events ending in data: [DONE]`,
    content: {
      'application/json': { schema: { $ref: getSchemaPath(body) } },
      'text/event-stream': { schema: { type: 'string', description: `data: <${chunk.name} JSON> lines` } },
    },
  };
}

/**
 * The validated request plus every top-level field the client sent that the DTO does not declare
 * (stripped by validation), so a remote backend sees what the client asked for, not our subset.
 */
function withPassthrough<T extends object>(raw: unknown, validated: T): T & { passthrough?: Record<string, unknown> } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return validated;
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in validated) && key !== 'passthrough') extra[key] = value;
  }
  return Object.keys(extra).length > 0 ? { ...validated, passthrough: extra } : validated;
}
