import { AppError } from '../common/errors.js';

/**
 * A request another node already forwarded, for a model this node would only hand on to a peer. It is
 * refused rather than forwarded a second time, so no request ever travels node to node in a loop. 503 with
 * Retry-After: the sender's view of this node was out of date, and its next probe corrects it.
 */
export class NotServedHereError extends AppError {
  constructor(model: string, node: string, forwardedBy: string) {
    super({
      status: 503,
      code: 'not_served_here',
      message: `Node '${node}' does not serve '${model}' itself, and a request forwarded by '${forwardedBy}' is never forwarded again`,
      details: { model, node, forwarded_by: forwardedBy },
      type: 'unavailable_error',
      headers: { 'retry-after': '1' },
    });
  }
}
