// The unit tier is pure: no sockets, no servers, no brokers. A spec that opens one belongs in the medium
// tier (MEDIUM in jest.config.mjs); this makes the mistake fail loudly instead of slowing the tier down.
// Node's core modules are shared by every test file a jest worker runs, so the guard is put in place for
// this file only and taken away after it: later files of other tiers in the same worker keep real sockets.
const net = require('node:net');

const original = { listen: net.Server.prototype.listen, connect: net.Socket.prototype.connect };

function refuse(what) {
  return function () {
    throw new Error(
      `unit tests open no sockets (${what}): move this spec to the medium tier (MEDIUM in jest.config.mjs)`,
    );
  };
}

beforeAll(() => {
  net.Server.prototype.listen = refuse('listen');
  net.Socket.prototype.connect = refuse('connect');
});

afterAll(() => {
  net.Server.prototype.listen = original.listen;
  net.Socket.prototype.connect = original.connect;
});
