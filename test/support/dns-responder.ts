/**
 * A tiny authoritative DNS server on loopback UDP (RFC 1035 wire format): answers A and AAAA questions for
 * the names it holds, NXDOMAIN for the others. What a Kubernetes headless Service looks like to a pod: one
 * record per ready pod. node:dns's Resolver (setServers) talks to it over the real protocol.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

export interface DnsResponder {
  address: string;
  /** Replace the records of `name` (IPv4 and IPv6 addresses mixed); an empty list makes it NXDOMAIN. */
  set(name: string, addresses: string[]): void;
  /** While on, every question is answered SERVFAIL (a DNS server in trouble, not an empty Service). */
  failing(on: boolean): void;
  /** Questions answered so far. */
  readonly queries: number;
  close(): Promise<void>;
}

export async function startDnsResponder(): Promise<DnsResponder> {
  const records = new Map<string, string[]>();
  const socket: Socket = createSocket('udp4');
  let queries = 0;
  let servfail = false;
  socket.on('message', (msg, rinfo) => {
    const answer = respond(msg, records, servfail);
    if (answer === null) return;
    queries++;
    socket.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  return {
    address: `127.0.0.1:${port}`,
    set: (name, addresses) => records.set(name.toLowerCase(), addresses),
    failing: (on) => {
      servfail = on;
    },
    get queries() {
      return queries;
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

const TYPE_A = 1;
const TYPE_AAAA = 28;

function respond(msg: Buffer, records: Map<string, string[]>, servfail: boolean): Buffer | null {
  if (msg.length < 12) return null;
  const id = msg.readUInt16BE(0);
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at]!;
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('ascii'));
    at += 1 + len;
  }
  const questionEnd = at + 5;
  if (questionEnd > msg.length) return null;
  const qtype = msg.readUInt16BE(at + 1);
  const name = labels.join('.').toLowerCase();
  const question = msg.subarray(12, questionEnd);
  const known = records.get(name);
  const family = qtype === TYPE_A ? 4 : qtype === TYPE_AAAA ? 6 : 0;
  const matching = servfail ? [] : (known ?? []).filter((a) => isIP(a) === family);
  const answers = matching.map((address) => {
    const rdata = family === 4 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the name in the question
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(5, 6); // TTL: as short as the cluster DNS gives headless records
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  // QR=1, AA=1, RD copied, RA=1; RCODE 2 (SERVFAIL) when failing, 3 (NXDOMAIN) for a name with no records.
  const rd = msg[2]! & 0x01;
  const rcode = servfail ? 2 : known && known.length > 0 ? 0 : 3;
  header.writeUInt16BE(0x8400 | (rd << 8) | 0x80 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}
