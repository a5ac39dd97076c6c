import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, getSchemaPath, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { LivenessSchema, STATE_EXTRA_MODELS } from './state.schemas.js';

/** The document is built from the controllers and DTO classes (never hand-written), once, on first request. */
export function buildOpenApi(app: NestFastifyApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('modelplane')
    .setDescription(
      'Model-orchestration control plane: OpenAI-compatible inference (/v1), model state and admin (/api), health (/health).',
    )
    .setVersion(process.env.npm_package_version ?? '0.1.0')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'Admin token (admin routes) or API key (/v1)' },
      'bearer',
    )
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key', description: 'API key for /v1 routes' }, 'x-api-key')
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    extraModels: STATE_EXTRA_MODELS,
    operationIdFactory: (controller, method) => `${controller.replace(/Controller$/, '')}_${method}`,
  });
  return withLiveness(document);
}

/**
 * `GET /health/live` is answered before routing (common/http-server.ts answerLivenessFirst), so no controller
 * declares it and the generator cannot see it; it is part of the API all the same and is added here.
 */
function withLiveness(document: OpenAPIObject): OpenAPIObject {
  document.paths['/health/live'] = {
    get: {
      operationId: 'Health_live',
      tags: ['health'],
      summary: 'Liveness: the event loop answers',
      description:
        'Always 200 while the process runs; never depends on a backend (a failing liveness restarts the pod). ' +
        'Answered before routing: no access-log line and no HTTP metric.',
      responses: {
        '200': {
          description: 'Alive',
          content: { 'application/json': { schema: { $ref: getSchemaPath(LivenessSchema) } } },
        },
      },
    },
  };
  return document;
}

/** `GET /openapi.json`: served straight by Fastify so it is not itself part of the API it describes. */
export function mountOpenApi(app: NestFastifyApplication): void {
  let document: OpenAPIObject | null = null;
  app
    .getHttpAdapter()
    .getInstance()
    .get('/openapi.json', async (_request, reply) => {
      document ??= buildOpenApi(app);
      return reply.header('cache-control', 'no-cache').send(document);
    });
}
