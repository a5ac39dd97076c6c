import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { STATE_EXTRA_MODELS } from './state.schemas.js';

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
  return SwaggerModule.createDocument(app, config, {
    extraModels: STATE_EXTRA_MODELS,
    operationIdFactory: (controller, method) => `${controller.replace(/Controller$/, '')}_${method}`,
  });
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
