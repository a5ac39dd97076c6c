import { Controller, Get, Header, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { NotFoundRouteError } from '../common/errors.js';
import { dashboardAsset } from './dashboard.assets.js';

/** The people-facing page at `/`: static files read from the package, no build step, no CDN. */
@ApiExcludeController()
@Controller()
export class DashboardController {
  @Get()
  @Header('cache-control', 'no-cache')
  index(@Res({ passthrough: true }) reply: FastifyReply): Buffer {
    return this.send(reply, 'index.html');
  }

  @Get('dashboard/:file')
  @Header('cache-control', 'no-cache')
  asset(@Param('file') file: string, @Res({ passthrough: true }) reply: FastifyReply): Buffer {
    if (!dashboardAsset(file)) throw new NotFoundRouteError('GET', `/dashboard/${file}`);
    return this.send(reply, file);
  }

  private send(reply: FastifyReply, file: string): Buffer {
    // Only called with names dashboardAsset knows.
    const asset = dashboardAsset(file)!;
    void reply.header('content-type', asset.contentType);
    // The page runs only its own scripts and talks only to this origin.
    void reply.header(
      'content-security-policy',
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
    );
    return asset.body;
  }
}
