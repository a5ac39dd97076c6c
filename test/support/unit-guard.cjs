// The unit tier is pure: no sockets, no servers, no brokers. A spec that opens one belongs in the medium
// tier (MEDIUM in jest.config.mjs); this makes the mistake fail loudly instead of slowing the tier down.
const net = require('node:net');

function refuse(what) {
  return function () {
    throw new Error(
      `unit tests open no sockets (${what}): move this spec to the medium tier (MEDIUM in jest.config.mjs)`,
    );
  };
}

net.Server.prototype.listen = refuse('listen');
net.Socket.prototype.connect = refuse('connect');
