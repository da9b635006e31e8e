import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the GitHub REST API on localhost: it records every request (method, path, query,
 * JSON body) and answers from a table of canned responses, so tests check exactly what pgshift
 * sends without a network.
 */
export interface Recorded {
  method: string;
  path: string;
  query: string;
  body: unknown;
}

export type Responder = (r: Recorded) => { status: number; body: unknown } | undefined;

export async function startRecorder(respond: Responder): Promise<{ url: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      const rec: Recorded = { method: req.method ?? 'GET', path: u.pathname, query: u.search, body: data ? JSON.parse(data) : undefined };
      requests.push(rec);
      const answer = respond(rec) ?? { status: 404, body: { message: 'Not Found' } };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}
